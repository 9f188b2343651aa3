/* sd_notify(3) without libsystemd: a non-blocking datagram on an AF_UNIX socket to the path in
 * $NOTIFY_SOCKET ('@' first means the abstract namespace). */
#include "notify.h"
#include "../core/log.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

void lx_notify(const char *state)
{
    static bool warned;
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path)
        return;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof sa.sun_path) {
        if (!warned)
            lx_warn("NOTIFY_SOCKET is not an absolute or abstract socket path; not notifying systemd");
        warned = true;
        return;
    }
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen) < 0 && !warned) {
        lx_warn("cannot notify systemd on NOTIFY_SOCKET: %s", strerror(errno));
        warned = true;
    }
    close(fd);
}
