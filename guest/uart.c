/* 16550 on COM1. Output is polled; input waits in hlt with the receive
 * interrupt (IRQ 4) enabled, so an idle console costs no host CPU. */
#include "uart.h"
#include "cpu.h"

#define COM1 0x3f8
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

void uart_init(void) {
    outb(COM1 + 1, 0x00);   /* no interrupts while programming */
    outb(COM1 + 3, 0x80);   /* DLAB */
    outb(COM1 + 0, 0x01);   /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);   /* 8N1 */
    outb(COM1 + 2, 0xC7);   /* FIFO on, cleared */
    outb(COM1 + 4, 0x0B);   /* DTR, RTS, OUT2 (gates the IRQ line on a PC) */
    outb(COM1 + 1, 0x01);   /* interrupt on received data */
}

static void put_raw(char c) {
    while (!(inb(COM1 + 5) & LSR_THR_EMPTY)) {
    }
    outb(COM1, (uint8_t)c);
}

/* The console is a terminal: "\n" goes out as "\r\n". */
void uart_putc(char c) {
    if (c == '\n') {
        put_raw('\r');
    }
    put_raw(c);
}

void uart_write(const char *s, unsigned long n) {
    for (unsigned long i = 0; i < n; i++) {
        uart_putc(s[i]);
    }
}

int uart_getc(void) {
    while (!(inb(COM1 + 5) & LSR_DATA_READY)) {
        /* sti's one-instruction shadow makes "sti; hlt" race-free (SDM STI) */
        __asm__ volatile("sti; hlt; cli" ::: "memory");
    }
    return inb(COM1);
}
