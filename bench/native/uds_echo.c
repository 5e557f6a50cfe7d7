/*
 * The "unix-socket way" that nffi is measured against: a sidecar echo server
 * speaking 4-byte big-endian length + payload, one thread per connection.
 * Usage: uds_echo PATH   (runs until killed; removes PATH first)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(fd, p, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0) {
            if (n < 0 && errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

static void *serve(void *arg)
{
    int fd = (int) (intptr_t) arg;
    size_t cap = 0;
    char *buf = NULL;
    for (;;) {
        uint32_t be_len;
        if (read_full(fd, &be_len, 4) != 0) break;
        size_t len = ntohl(be_len);
        if (len > cap) {
            char *grown = realloc(buf, len);
            if (!grown) break;
            buf = grown;
            cap = len;
        }
        if (read_full(fd, buf, len) != 0) break;
        if (write_full(fd, &be_len, 4) != 0 || write_full(fd, buf, len) != 0) break;
    }
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: uds_echo PATH\n");
        return 2;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(argv[1]) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "uds_echo: path too long\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    unlink(argv[1]);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *) &addr, sizeof(addr)) != 0 || listen(lfd, 128) != 0) {
        perror("uds_echo");
        return 1;
    }
    /* nginx workers run as another user (nobody) and need write access to connect */
    chmod(argv[1], 0666);
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR) continue;
            perror("uds_echo: accept");
            return 1;
        }
        pthread_t th;
        if (pthread_create(&th, NULL, serve, (void *) (intptr_t) fd) != 0) {
            close(fd);
            continue;
        }
        pthread_detach(th);
    }
}
