/*
 * segv: one bad memory access, chosen by name; each should kill the
 * process with SIGSEGV (the shell reports it; wait4 sees WTERMSIG 11).
 *
 *   segv MODE          (segv -l lists the modes)
 *
 *   null          read from address 0
 *   null-write    write to address 0
 *   kernel-read   read from the direct map, 0xffff888000000000 (kernel
 *                 memory: present, but supervisor-only)
 *   kernel-write  write there
 *   kernel-text   read the kernel image, 0xffffffff80000000
 *   noncanonical  read 0x8000000000000000 (#GP, not #PF: si_addr is 0)
 *   nx-exec       call into a fresh PROT_READ|PROT_WRITE page holding a
 *                 `ret` (no-execute)
 *   stack-exec    call into a `ret` written on the stack (the stack is NX)
 *   text-write    write over the first byte of main (text is read-only)
 *   rodata-write  write into a string literal (.rodata is read-only)
 *   unmapped      read a page that was mapped and then munmap'ed
 *
 * Before the access it prints "segv: MODE: ADDRESS"; if the process
 * survives the access it prints "segv: MODE: survived" and exits 1.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *modes[] = {
    "null", "null-write", "kernel-read", "kernel-write", "kernel-text",
    "noncanonical", "nx-exec", "stack-exec", "text-write", "rodata-write",
    "unmapped", NULL,
};

static void say(const char *mode, const volatile void *addr)
{
    printf("segv: %s: %p\n", mode, (const void *)addr);
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr, "usage: segv MODE   (segv -l lists the modes)\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return usage();
    const char *m = argv[1];
    if (strcmp(m, "-l") == 0) {
        for (int i = 0; modes[i]; i++)
            printf("%s\n", modes[i]);
        return 0;
    }
    volatile char sink;
    if (strcmp(m, "null") == 0) {
        volatile char *p = (volatile char *)0;
        say(m, p);
        sink = *p;
    } else if (strcmp(m, "null-write") == 0) {
        volatile char *p = (volatile char *)0;
        say(m, p);
        *p = 1;
    } else if (strcmp(m, "kernel-read") == 0) {
        volatile char *p = (volatile char *)0xffff888000000000UL;
        say(m, p);
        sink = *p;
    } else if (strcmp(m, "kernel-write") == 0) {
        volatile char *p = (volatile char *)0xffff888000000000UL;
        say(m, p);
        *p = 1;
    } else if (strcmp(m, "kernel-text") == 0) {
        volatile char *p = (volatile char *)0xffffffff80000000UL;
        say(m, p);
        sink = *p;
    } else if (strcmp(m, "noncanonical") == 0) {
        volatile char *p = (volatile char *)0x8000000000000000UL;
        say(m, p);
        sink = *p;
    } else if (strcmp(m, "nx-exec") == 0) {
        unsigned char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("segv: mmap");
            return 1;
        }
        p[0] = 0xc3;                                /* ret */
        say(m, p);
        ((void (*)(void))p)();
    } else if (strcmp(m, "stack-exec") == 0) {
        volatile unsigned char code[16];
        code[0] = 0xc3;
        say(m, code);
        ((void (*)(void))code)();
    } else if (strcmp(m, "text-write") == 0) {
        volatile unsigned char *p = (volatile unsigned char *)(uintptr_t)main;
        say(m, p);
        *p = 0xcc;
    } else if (strcmp(m, "rodata-write") == 0) {
        static const char lit[] = "read-only";
        volatile char *p = (volatile char *)lit;
        say(m, p);
        *p = 'R';
    } else if (strcmp(m, "unmapped") == 0) {
        volatile char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED || munmap((void *)p, 4096) != 0) {
            perror("segv: mmap/munmap");
            return 1;
        }
        say(m, p);
        sink = *p;
    } else {
        return usage();
    }
    (void)sink;
    printf("segv: %s: survived\n", m);
    return 1;
}
