/* fds.c - one /dev/null and a pipe left open; a socket and a second
 * /dev/null closed */
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    int a = open("/dev/null", O_RDONLY);
    int b = open("/dev/null", O_WRONLY);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    int p[2];
    if (a < 0 || b < 0 || s < 0 || pipe(p) != 0)
        return 1;
    close(b);
    close(s);
    return 0;
}
