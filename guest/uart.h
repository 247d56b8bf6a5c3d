#ifndef KPY_UART_H
#define KPY_UART_H
void uart_init(void);
void uart_putc(char c);
void uart_write(const char *s, unsigned long n);
int uart_getc(void);
#endif
