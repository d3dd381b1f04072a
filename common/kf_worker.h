/* kf_worker: the runtime every worker shares (DESIGN §3.5, §3.6, §3.8, §6).
 *
 * A worker subscribes to every journaled topic, so that any hole in the seq numbers is a
 * real gap. At start it reads its checkpoints, catches up from kefu:journal (XRANGE, in
 * batches) and then goes live; a live event with a gap in front of it switches back to
 * reading the journal until the gap is filled (the Clone pattern, Redis as the snapshot).
 *
 * Each event is routed by topic to the worker's handler, which computes what C is good at
 * (times, channels, rendered texts) and adds named arguments to a call. The call runs the
 * worker's Redis Functions library (kf_worker.lua + kf_sched.lua + kf_policy.lua, then the
 * worker's own script, loaded once) with FCALL, one call per batch of events (those one loop
 * pass applies, S_BATCH_EVENTS at most): per event the partition and checkpoint check, the
 * event_id guard, state change, timers, policy, actions appended to kefu:actions; the
 * checkpoints at the end; all in one atomic step. Calls are pipelined; replies come back in
 * order. Actions the script emits are also published live on action.*.
 *
 * Timers fire in the same script: on a sys.clock event (simulated clock) every timer due up
 * to its `now` fires, in due order, before any later event is applied (a barrier); with the
 * real clock a tick every [<section>] tick_ms does the same with the wall clock.
 *
 * Partitions: 64 fixed partitions by FNV-1a of a key (kf_worker_partition); instance i of n
 * owns p % n == i. Checkpoint kefu:ckpt:<group>:<p> per partition. */
#ifndef KF_WORKER_H
#define KF_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "kf_cfg.h"
#include "kf_daemon.h"
#include "kf_proto.h"
#include "kf_shop.h"

#define KF_WORKER_PARTITIONS 64
#define KF_PART_LOOKUP (-1)    /* the partition recorded in the hash at the lookup key */
#define KF_PART_BROADCAST (-2) /* every partition this instance owns */

/* The [<section>] keys every worker has (kf_worker_opts fills a table for a section). */
typedef struct {
    long long instances;      /* n: instances sharing the partitions */
    long long max_inflight;   /* Lua calls awaiting Redis before reading stops */
    long long catchup_batch;  /* journal entries per XRANGE */
    long long dedup_ttl_s;    /* how long an event_id is remembered (the guard's window) */
    long long tick_ms;        /* real clock: how often due timers are fired */
    long long fire_limit;     /* most timers fired in one Lua step */
    long long actions_maxlen; /* approximate cap on kefu:actions */
    long long ckpt_ms;        /* how often idle partitions' checkpoints are advanced */
} kf_worker_conf_t;

#define KF_WORKER_NOPTS 8
/* Fills out[KF_WORKER_NOPTS] with the options of section, stored at base_offset inside the
 * daemon's config struct (offsetof(my_conf_t, worker)). */
void kf_worker_opts(const char *section, size_t base_offset, kf_cfg_opt_t *out);

typedef struct kf_worker_s kf_worker_t;
typedef struct kf_call_s kf_call_t;

/* A topic handler: reads env, sets the partition and the named arguments of the call.
 * Returns KF_OK to run the call, or KF_ERR after kf_call_reject() (counted, not applied). */
typedef int(kf_worker_handler_fn)(kf_worker_t *w, const kf_env_t *env, kf_call_t *call,
                                  void *arg);

typedef struct {
    const char *topic;
    kf_worker_handler_fn *fn;
} kf_worker_route_t;

typedef struct {
    const char *group;   /* "pay-reminder": keys, config section, heartbeat */
    const char *lua;     /* the worker's script (the shared library is put in front) */
    const kf_worker_route_t *routes;
    size_t nroutes;
    void *arg;           /* passed to handlers */
} kf_worker_def_t;

/* A worker daemon's whole main(): argv and config (the shared sections plus [<group>] with
 * the keys of kf_worker_opts), the runtime, the loop. Returns the exit status. */
int kf_worker_main(const char *daemon, const kf_worker_def_t *def, int argc, char **argv);

/* Starts the runtime on the daemon's loop: Redis, bus, heartbeat, catch-up. */
kf_worker_t *kf_worker_new(kf_daemon_t *d, const kf_conf_t *conf, const kf_worker_conf_t *wconf,
                           const kf_worker_def_t *def, char *err, size_t errlen);
void kf_worker_destroy(kf_worker_t **self_p);

/* The partition of a key (e.g. "s1:b9"): FNV-1a 32-bit modulo KF_WORKER_PARTITIONS. */
int kf_worker_partition(const char *key);
/* Instance index, for handlers. */
int kf_worker_instance(kf_worker_t *self);
/* The settings of a shop (the defaults until it sends shop.config). */
const kf_shop_t *kf_worker_shop(kf_worker_t *self, const char *shop_id);

/* The shared buyer.optout handler (route it; the Lua side is P.optout in kf_policy.lua). */
kf_worker_handler_fn kf_worker_optout;

/* --- building a call (inside a handler) ------------------------------------------------ */

/* Partition p (0..63), KF_PART_BROADCAST, or KF_PART_LOOKUP with the hash key holding "p". */
void kf_call_partition(kf_call_t *call, int p, const char *lookup_key);
/* The reason counted when a KF_PART_LOOKUP finds nothing (default "unknown_order"). */
void kf_call_lookup_miss(kf_call_t *call, const char *reason);
/* Adds ARGV name/value pairs; the script sees them as A[name]. Values are copied. */
void kf_call_arg(kf_call_t *call, const char *name, const char *value);
void kf_call_argn(kf_call_t *call, const char *name, const void *value, size_t len);
void kf_call_argf(kf_call_t *call, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void kf_call_argi(kf_call_t *call, const char *name, long long value);
/* The event is bad for this worker: counted per reason (a short word), logged, skipped. */
void kf_call_reject(kf_call_t *call, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
