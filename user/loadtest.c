/*
 * loadtest: many processes competing for memory at once (issue 15, item 5).
 *
 *   loadtest [-p PROCS] [-t SECONDS] [-m MB] [-d DIR] [-c DROP_SECONDS]
 *
 * PROCS workers (default 32) each loop for SECONDS (default 60): mmap an
 * anonymous region of MB MiB (default 2), fill it with a pattern of its
 * own and remember its checksum; fork a child that checks the region (its
 * COW copy), writes over half of it and exits; check the region again (the
 * child's writes must not show); write the region to DIR/lt.PID (default
 * /mnt), read it back and compare; unmap it and delete the file. Meanwhile
 * the parent writes 3 to /proc/sys/vm/drop_caches every DROP_SECONDS
 * (default 3). A worker that finds a bad checksum exits 1; the OOM killer's
 * SIGKILL is counted apart. At the end, one line:
 *   loadtest: P workers, N loops, K killed, checksums ok C bad B, drops D
 * and exit 0 when B is 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void fill(unsigned char *p, size_t n, uint64_t seed)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        memcpy(p + i, &seed, 8);
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One worker's loop; the exit code says how it went; the loops and checks
 * go to the parent through a pipe (8 bytes: loops, checks). */
static int worker(int id, double end, size_t size, const char *dir, int out)
{
    char path[256];
    snprintf(path, sizeof path, "%s/lt.%d", dir, getpid());
    unsigned char *buf = malloc(size);
    uint32_t loops = 0, checks = 0;
    for (uint64_t seed = id * 7919 + 1; now() < end; seed++) {
        unsigned char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            usleep(10000);
            continue;
        }
        fill(p, size, seed);
        uint64_t sum = fnv1a(p, size);
        pid_t c = fork();
        if (c == 0) {
            if (fnv1a(p, size) != sum)
                _exit(1);
            memset(p, 0xaa, size / 2);
            _exit(0);
        }
        int st = 0;
        if (c > 0)
            waitpid(c, &st, 0);
        checks++;
        if (c > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 1) {
            fprintf(stderr, "loadtest %d: the child's COW copy is bad\n", getpid());
            return 1;
        }
        if (fnv1a(p, size) != sum) {
            fprintf(stderr, "loadtest %d: region checksum bad after the child\n", getpid());
            return 1;
        }
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, p, size);
            size_t got = 0;
            if (buf && w == (ssize_t)size && lseek(fd, 0, SEEK_SET) == 0) {
                ssize_t r;
                while (got < size && (r = read(fd, buf + got, size - got)) > 0)
                    got += r;
            }
            if (got == size) {          /* an error (ENOMEM, EIO) is no verdict */
                checks++;
                if (fnv1a(buf, size) != sum) {
                    fprintf(stderr, "loadtest %d: file checksum bad\n", getpid());
                    return 1;
                }
            }
            close(fd);
            unlink(path);
        }
        munmap(p, size);
        loops++;
    }
    uint32_t rep[2] = { loops, checks };
    if (write(out, rep, sizeof rep) != sizeof rep)
        return 2;
    return 0;
}

int main(int argc, char **argv)
{
    int procs = 32, seconds = 60, mb = 2, drop = 3, opt;
    const char *dir = "/mnt";
    while ((opt = getopt(argc, argv, "p:t:m:d:c:")) != -1) {
        switch (opt) {
        case 'p': procs = atoi(optarg); break;
        case 't': seconds = atoi(optarg); break;
        case 'm': mb = atoi(optarg); break;
        case 'd': dir = optarg; break;
        case 'c': drop = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: loadtest [-p PROCS] [-t SECONDS] [-m MB] [-d DIR] [-c DROP_SECONDS]\n");
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int pfd[2];
    if (pipe(pfd) < 0)
        return 2;
    double end = now() + seconds;
    for (int i = 0; i < procs; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(pfd[0]);
            _exit(worker(i, end, (size_t)mb << 20, dir, pfd[1]));
        }
        if (pid < 0)
            printf("loadtest: fork %d: %s\n", i, strerror(errno));
    }
    close(pfd[1]);
    int drops = 0;
    while (now() < end) {
        sleep(drop);
        int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
        if (fd >= 0) {
            drops += write(fd, "3\n", 2) == 2;
            close(fd);
        }
    }
    int st, killed = 0, bad = 0;
    pid_t pid;
    while ((pid = wait(&st)) > 0) {
        if (WIFSIGNALED(st))
            killed++;
        else if (WEXITSTATUS(st) == 1)
            bad++;
    }
    uint32_t rep[2];
    uint64_t loops = 0, checks = 0;
    while (read(pfd[0], rep, sizeof rep) == sizeof rep) {
        loops += rep[0];
        checks += rep[1];
    }
    printf("loadtest: %d workers, %llu loops, %d killed, checksums ok %llu bad %d, drops %d\n",
           procs, (unsigned long long)loops, killed, (unsigned long long)checks, bad, drops);
    return bad ? 1 : 0;
}
