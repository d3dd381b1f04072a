/* kefuctl_http: one plain HTTP/1.0 GET over a blocking TCP socket, with a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kefuctl.h"
#include "kf_util.h"

#define S_MAX_BODY (64u << 20)

/* Splits "host:port" / "[v6]:port" / ":port" into host and port; a wildcard or empty
 * host becomes the loopback address (the broker listens on this machine). */
static int s_split(const char *listen, char *host, size_t hlen, char *port, size_t plen)
{
    const char *colon = strrchr(listen, ':');
    if (!colon || !colon[1] || strlen(colon + 1) >= plen)
        return KF_ERR;
    const char *h = listen;
    size_t n = (size_t)(colon - listen);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n == 0 || (n == 1 && *h == '*') || (n == 7 && memcmp(h, "0.0.0.0", 7) == 0)) {
        h = "127.0.0.1";
        n = 9;
    } else if (n == 2 && memcmp(h, "::", 2) == 0) {
        h = "::1";
        n = 3;
    }
    if (n >= hlen)
        return KF_ERR;
    memcpy(host, h, n);
    host[n] = '\0';
    strcpy(port, colon + 1);
    return KF_OK;
}

void kefuctl_http_url(const char *listen, const char *path, char *buf, size_t len)
{
    char host[256], port[16];
    if (s_split(listen, host, sizeof(host), port, sizeof(port)) != KF_OK)
        snprintf(buf, len, "http://%s%s", listen, path);
    else if (strchr(host, ':'))
        snprintf(buf, len, "http://[%s]:%s%s", host, port, path);
    else
        snprintf(buf, len, "http://%s:%s%s", host, port, path);
}

/* Waits until fd is ready for events or the deadline passes. */
static int s_wait(int fd, short events, int64_t deadline, char *err, size_t errlen)
{
    for (;;) {
        int64_t left = deadline - kf_mono_ms();
        if (left <= 0) {
            snprintf(err, errlen, "timed out");
            return KF_ERR;
        }
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return KF_OK;
        if (n < 0 && errno != EINTR) {
            snprintf(err, errlen, "poll: %s", strerror(errno));
            return KF_ERR;
        }
        if (n < 0 && kefuctl_interrupted()) {
            snprintf(err, errlen, "interrupted");
            return KF_ERR;
        }
    }
}

/* Connects to one address without blocking past the deadline. Returns the fd or -1. */
static int s_connect_one(const struct addrinfo *ai, int64_t deadline, char *err, size_t errlen)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int soerr = errno;
        socklen_t sl = sizeof(soerr);
        if (soerr != EINPROGRESS)
            goto fail;
        if (s_wait(fd, POLLOUT, deadline, err, errlen) != KF_OK) {
            close(fd);
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr) {
            errno = soerr;
            goto fail;
        }
    }
    return fd;
fail:
    snprintf(err, errlen, "%s", strerror(errno));
    close(fd);
    return -1;
}

static int s_connect(const char *listen, int64_t deadline, char *err, size_t errlen)
{
    char host[256], port[16];
    if (s_split(listen, host, sizeof(host), port, sizeof(port)) != KF_OK) {
        snprintf(err, errlen, "[http] listen '%s': expected host:port", listen);
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = s_connect_one(ai, deadline, err, errlen);
    freeaddrinfo(res);
    return fd;
}

static int s_send_all(int fd, const char *buf, size_t n, int64_t deadline, char *err,
                      size_t errlen)
{
    while (n > 0) {
        ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (s_wait(fd, POLLOUT, deadline, err, errlen) != KF_OK)
                return KF_ERR;
            continue;
        }
        if (w < 0) {
            snprintf(err, errlen, "send: %s", strerror(errno));
            return KF_ERR;
        }
        buf += w;
        n -= (size_t)w;
    }
    return KF_OK;
}

/* Reads until the server closes the connection. */
static char *s_recv_all(int fd, size_t *len, int64_t deadline, char *err, size_t errlen)
{
    size_t cap = 16384, n = 0;
    char *buf = kf_xmalloc(cap);
    for (;;) {
        if (cap - n < 4096)
            buf = kf_xrealloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (s_wait(fd, POLLIN, deadline, err, errlen) != KF_OK)
                goto fail;
            continue;
        }
        if (r < 0) {
            snprintf(err, errlen, "recv: %s", strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > S_MAX_BODY) {
            snprintf(err, errlen, "response over %u bytes", S_MAX_BODY);
            goto fail;
        }
    }
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    free(buf);
    return NULL;
}

/* Splits a response into status and body (moved to the start of a new buffer). */
static int s_parse_response(char *resp, size_t n, int *status, char **body, size_t *len,
                            char *err, size_t errlen)
{
    int major, minor;
    if (sscanf(resp, "HTTP/%d.%d %d", &major, &minor, status) != 3) {
        snprintf(err, errlen, "not an HTTP response");
        return KF_ERR;
    }
    char *sep = strstr(resp, "\r\n\r\n");
    size_t skip = 4;
    if (!sep) {
        sep = strstr(resp, "\n\n");
        skip = 2;
    }
    if (!sep) {
        snprintf(err, errlen, "truncated HTTP response");
        return KF_ERR;
    }
    size_t off = (size_t)(sep - resp) + skip;
    *len = n - off;
    *body = kf_xstrndup(resp + off, *len);
    return KF_OK;
}

int kefuctl_http_get(const char *listen, const char *path, int timeout_ms, int *status,
                     char **body, size_t *len, char *err, size_t errlen)
{
    int64_t deadline = kf_mono_ms() + timeout_ms;
    char *resp = NULL;
    int rc = KF_ERR;
    char req[512];
    int fd = s_connect(listen, deadline, err, errlen);
    if (fd < 0)
        goto done;
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: kefuctl/%s\r\n"
                     "Accept: application/json\r\nConnection: close\r\n\r\n",
                     path, listen, KEFU_VERSION);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        snprintf(err, errlen, "request too long");
        goto done;
    }
    size_t rlen = 0;
    if (s_send_all(fd, req, (size_t)n, deadline, err, errlen) != KF_OK ||
        !(resp = s_recv_all(fd, &rlen, deadline, err, errlen)))
        goto done;
    rc = s_parse_response(resp, rlen, status, body, len, err, errlen);
done:
    if (rc != KF_OK && strcmp(err, "timed out") == 0) {
        if (timeout_ms % 1000 == 0)
            snprintf(err, errlen, "timed out after %d s", timeout_ms / 1000);
        else
            snprintf(err, errlen, "timed out after %d ms", timeout_ms);
    }
    free(resp);
    if (fd >= 0)
        close(fd);
    return rc;
}
