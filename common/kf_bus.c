/* kf_bus: see kf_bus.h. */
#include "kf_bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kf_log.h"
#include "kf_util.h"

struct kf_bus_s {
    void *sock;
    struct event *ev;
    kf_bus_recv_fn *fn;
    kf_bus_pass_fn *pass_fn;
    void *arg;
    int batch;
    bool paused;
    bool armed;
};

static void s_on_ready(evutil_socket_t fd, short what, void *arg);

kf_bus_t *kf_bus_new(struct event_base *base, void *zctx, int type, int hwm, char *err,
                     size_t errlen)
{
    kf_bus_t *self = kf_xcalloc(1, sizeof(*self));
    self->batch = 256;
    self->sock = zmq_socket(zctx, type);
    if (!self->sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        goto fail;
    }
    int linger = 0;
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    int fd;
    size_t fdlen = sizeof(fd);
    if (zmq_getsockopt(self->sock, ZMQ_FD, &fd, &fdlen) != 0) {
        snprintf(err, errlen, "zmq_getsockopt(ZMQ_FD): %s", zmq_strerror(errno));
        goto fail;
    }
    self->ev = event_new(base, fd, EV_READ | EV_PERSIST, s_on_ready, self);
    return self;
fail:
    kf_bus_destroy(&self);
    return NULL;
}

void kf_bus_destroy(kf_bus_t **self_p)
{
    kf_bus_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    if (self->ev)
        event_free(self->ev);
    if (self->sock)
        zmq_close(self->sock);
    free(self);
    *self_p = NULL;
}

int kf_bus_bind(kf_bus_t *self, const char *endpoint, char *err, size_t errlen)
{
    if (zmq_bind(self->sock, endpoint) != 0) {
        snprintf(err, errlen, "bind %s: %s", endpoint, zmq_strerror(errno));
        return KF_ERR;
    }
    return KF_OK;
}

int kf_bus_connect(kf_bus_t *self, const char *endpoint, char *err, size_t errlen)
{
    if (zmq_connect(self->sock, endpoint) != 0) {
        snprintf(err, errlen, "connect %s: %s", endpoint, zmq_strerror(errno));
        return KF_ERR;
    }
    return KF_OK;
}

void *kf_bus_socket(kf_bus_t *self)
{
    return self->sock;
}

void kf_bus_set_batch(kf_bus_t *self, int batch)
{
    self->batch = batch > 0 ? batch : 1;
}

static int s_events(kf_bus_t *self)
{
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(self->sock, ZMQ_EVENTS, &events, &len) != 0)
        return 0;
    return events;
}

/* Edge-triggered ZMQ_FD: whenever state may have changed, look at ZMQ_EVENTS and, if a
 * message is waiting, make the event active so the next pass drains it. */
static void s_kick(kf_bus_t *self)
{
    if (!self->fn || self->paused)
        return;
    if (s_events(self) & ZMQ_POLLIN)
        event_active(self->ev, EV_READ, 0);
}

void kf_bus_on_recv(kf_bus_t *self, kf_bus_recv_fn *fn, kf_bus_pass_fn *pass_fn, void *arg)
{
    self->fn = fn;
    self->pass_fn = pass_fn;
    self->arg = arg;
    if (!self->armed) {
        event_add(self->ev, NULL);
        self->armed = true;
    }
    s_kick(self);
}

void kf_bus_pause(kf_bus_t *self, bool paused)
{
    if (self->paused == paused)
        return;
    self->paused = paused;
    if (!paused)
        s_kick(self);
}

/* Receives one whole message; returns the frame count, 0 when none waits, -1 on error. */
static int s_recv_one(kf_bus_t *self, zmq_msg_t *parts, size_t *kept)
{
    size_t total = 0;
    *kept = 0;
    for (;;) {
        zmq_msg_t tmp;
        zmq_msg_t *m = *kept < KF_BUS_MAX_PARTS ? &parts[*kept] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, self->sock, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(m);
            if (total == 0)
                return e == EAGAIN ? 0 : -1;
            continue; /* the rest of a multipart message is always there; retry */
        }
        total++;
        int more = zmq_msg_more(m);
        if (m == &tmp)
            zmq_msg_close(m);
        else
            (*kept)++;
        if (!more)
            return (int)total;
    }
}

static void s_on_ready(evutil_socket_t fd, short what, void *arg)
{
    kf_bus_t *self = arg;
    int delivered = 0;
    bool more = false;
    /* No ZMQ_EVENTS per message: that getsockopt runs process_commands(), i.e. a poll() and
     * a getpid() syscall each time. A DONTWAIT recv that returns EAGAIN re-arms the edge. */
    while (!self->paused && self->fn) {
        if (delivered >= self->batch) {
            more = true;
            break;
        }
        zmq_msg_t parts[KF_BUS_MAX_PARTS];
        size_t kept = 0;
        int total = s_recv_one(self, parts, &kept);
        if (total <= 0)
            break;
        delivered++;
        self->fn(self, parts, kept, (size_t)total, self->arg);
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
    if (delivered && self->pass_fn)
        self->pass_fn(self, self->arg);
    if (more)
        event_active(self->ev, EV_READ, 0); /* batch cap: come back on the next pass */
}

int kf_bus_send_msgs(kf_bus_t *self, zmq_msg_t *head, size_t nhead, const void *const *parts,
                     const size_t *lens, size_t n)
{
    int rc = KF_OK;
    for (size_t i = 0; i < nhead; i++) {
        zmq_msg_t copy;
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, &head[i]);
        int flags = ZMQ_DONTWAIT | ((i + 1 < nhead || n > 0) ? ZMQ_SNDMORE : 0);
        if (zmq_msg_send(&copy, self->sock, flags) < 0) {
            zmq_msg_close(&copy);
            rc = KF_ERR;
            goto done;
        }
    }
    for (size_t i = 0; i < n; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
        if (zmq_send(self->sock, parts[i], lens[i], flags) < 0) {
            rc = KF_ERR;
            goto done;
        }
    }
done:
    /* A send can consume the edge that announced input: look again on this loop pass,
     * once per pass however many messages were sent (no ZMQ_EVENTS syscall per send). */
    if (self->fn && !self->paused)
        event_active(self->ev, EV_READ, 0);
    return rc;
}

int kf_bus_send(kf_bus_t *self, const void *const *parts, const size_t *lens, size_t n)
{
    return kf_bus_send_msgs(self, NULL, 0, parts, lens, n);
}
