/* MicroPython's hardware abstraction: the console is the UART. */
#include "py/mphal.h"
#include "uart.h"

int mp_hal_stdin_rx_chr(void) {
    return uart_getc();
}

mp_uint_t mp_hal_stdout_tx_strn(const char *str, size_t len) {
    uart_write(str, len);
    return len;
}

uintptr_t mp_hal_stdio_poll(uintptr_t poll_flags) {
    return 0;
}
