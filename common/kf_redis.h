/* kf_redis: hiredis async on the libevent loop, with reconnect and embedded Lua scripts.
 *
 * Commands are pipelined by hiredis: everything issued in one loop pass goes out in one
 * write. Redis-side code is Redis Functions: a library is registered once (kf_redis_script,
 * kf_redis_library) under a versioned name, <name>_<12 hex of the SHA-1 of its code>, so that
 * two versions run side by side during a rolling upgrade; it is loaded with FUNCTION LOAD
 * REPLACE on every (re)connect (Redis keeps it across restarts in its RDB/AOF) and called with
 * FCALL. A "Function not found" reply (FUNCTION FLUSH, a Redis without persistence) loads it
 * again and retries once.
 * On disconnect, every pending callback fires with reply == NULL, then the connection is
 * retried with exponential backoff (100 ms .. 5 s).
 *
 * Callback contract: when a call returns KF_OK its callback fires exactly once, with the
 * reply or NULL (error, disconnect, shutdown); when it returns KF_ERR (not connected) the
 * callback never fires. The reply is borrowed for the duration of the callback. */
#ifndef KF_REDIS_H
#define KF_REDIS_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct kf_redis_s kf_redis_t;

typedef void(kf_redis_fn)(kf_redis_t *r, redisReply *reply, void *arg);
/* Called when the connection comes up (up = true, scripts loaded) or goes down. */
typedef void(kf_redis_state_fn)(kf_redis_t *r, bool up, void *arg);

/* url: redis://[:password@]host:port[/db] or unix:///path/to.sock[?db=N].
 * password: overrides the one in the url when not NULL. Connecting starts at once. */
kf_redis_t *kf_redis_new(struct event_base *base, const char *url, const char *password,
                         char *err, size_t errlen);
void kf_redis_destroy(kf_redis_t **self_p);

void kf_redis_on_state(kf_redis_t *self, kf_redis_state_fn *fn, void *arg);
/* A connect attempt that takes longer than this is abandoned and retried (default 2000 ms). */
void kf_redis_set_connect_timeout(kf_redis_t *self, long long ms);
bool kf_redis_ready(kf_redis_t *self);
unsigned long kf_redis_reconnects(kf_redis_t *self);
/* Requests issued and not yet answered. */
size_t kf_redis_inflight(kf_redis_t *self);

/* Registers a script (before or after connecting): lua is a script body (it sees KEYS and
 * ARGV and returns the reply) that becomes the function of a library of its own (its body
 * runs at each call). Returns its handle (>= 0). */
int kf_redis_script(kf_redis_t *self, const char *name, const char *lua);
/* Registers a library whose code runs once, at load: it sees the local FNAME and registers
 * the function called with kf_redis_eval: redis.register_function(FNAME, function(keys,
 * args) ... end). Returns its handle (>= 0). */
int kf_redis_library(kf_redis_t *self, const char *name, const char *lua);
/* The function's (and its library's) name. */
const char *kf_redis_function_name(kf_redis_t *self, int script);

/* FCALL of script's function with argv[0..nkeys) as keys and the rest as args. argv must
 * stay valid until the callback fires (a retry re-sends it). */
int kf_redis_eval(kf_redis_t *self, int script, int nkeys, int argc, const char **argv,
                  const size_t *argvlen, kf_redis_fn *fn, void *arg);
/* fn may be NULL for a command whose reply nobody needs. */
int kf_redis_cmd(kf_redis_t *self, kf_redis_fn *fn, void *arg, const char *fmt, ...);
int kf_redis_cmdv(kf_redis_t *self, kf_redis_fn *fn, void *arg, int argc, const char **argv,
                  const size_t *argvlen);

#endif
