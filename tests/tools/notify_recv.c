/* notify-recv: a stand-in for systemd's end of NOTIFY_SOCKET in tests. Binds an AF_UNIX datagram socket at
 * the given path, prints "READY" once bound, then prints every datagram received (its newlines as " | ")
 * on one line each, until killed. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2 || strlen(argv[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        fprintf(stderr, "usage: notify-recv SOCKET_PATH\n");
        return 2;
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, argv[1]);
    unlink(argv[1]);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("notify-recv");
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0)
            continue;
        buf[n] = '\0';
        for (char *p = buf; *p; p++)
            if (*p == '\n')
                *p = '|';
        printf("%s\n", buf);
        fflush(stdout);
    }
}
