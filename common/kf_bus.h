/* kf_bus: a ZeroMQ socket inside the libevent loop.
 *
 * ZMQ_FD is edge-triggered: after every wake-up and after every send we read ZMQ_EVENTS
 * and drain with ZMQ_DONTWAIT until it is clear. A pass handles at most `batch` messages
 * (default 256) and re-arms itself with event_active() so one busy socket cannot starve
 * the others. High-water marks are set on every socket; TCP reconnects are ZeroMQ's. */
#ifndef KF_BUS_H
#define KF_BUS_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#define KF_BUS_MAX_PARTS 8

typedef struct kf_bus_s kf_bus_t;

/* One received message: at most KF_BUS_MAX_PARTS frames are kept (nparts); total counts
 * every frame that arrived, so a caller can reject a wrong frame count. The frames are
 * borrowed for the duration of the callback. */
typedef void(kf_bus_recv_fn)(kf_bus_t *bus, zmq_msg_t *parts, size_t nparts, size_t total,
                             void *arg);
/* Called once at the end of each receive pass that delivered at least one message. */
typedef void(kf_bus_pass_fn)(kf_bus_t *bus, void *arg);

kf_bus_t *kf_bus_new(struct event_base *base, void *zctx, int type, int hwm, char *err,
                     size_t errlen);
void kf_bus_destroy(kf_bus_t **self_p);

int kf_bus_bind(kf_bus_t *self, const char *endpoint, char *err, size_t errlen);
int kf_bus_connect(kf_bus_t *self, const char *endpoint, char *err, size_t errlen);
void *kf_bus_socket(kf_bus_t *self);

/* Starts receiving; fn is called per message, pass_fn (may be NULL) after each pass. */
void kf_bus_on_recv(kf_bus_t *self, kf_bus_recv_fn *fn, kf_bus_pass_fn *pass_fn, void *arg);
/* Stops/starts reading (back-pressure); sends still work. */
void kf_bus_pause(kf_bus_t *self, bool paused);
void kf_bus_set_batch(kf_bus_t *self, int batch);

/* Sends n frames without blocking. Returns KF_OK, or KF_ERR with errno (EAGAIN at the
 * high-water mark, EHOSTUNREACH for an unknown ROUTER peer...). */
int kf_bus_send(kf_bus_t *self, const void *const *parts, const size_t *lens, size_t n);
/* Same, with the first frames taken from received messages (ROUTER identities). */
int kf_bus_send_msgs(kf_bus_t *self, zmq_msg_t *head, size_t nhead, const void *const *parts,
                     const size_t *lens, size_t n);

#endif
