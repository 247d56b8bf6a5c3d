/* hello: the smallest useful program. Prints "hello, world", then its
 * arguments one a line (argv[0] included), and exits 0. */
#include <stdio.h>

int main(int argc, char **argv)
{
    printf("hello, world\n");
    for (int i = 0; i < argc; i++)
        printf("argv[%d] = %s\n", i, argv[i]);
    return 0;
}
