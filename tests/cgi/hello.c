/* hello.c: a CGI program in C, compiled by t_cgi.py at test time. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    const char *m = getenv("REQUEST_METHOD");
    const char *q = getenv("QUERY_STRING");

    printf("Content-Type: text/plain\r\nX-Lang: C\r\n\r\n");
    printf("hello from C: %s %s\n", m ? m : "-", q ? q : "-");
    return 0;
}
