#!/usr/bin/env python3
"""The phases of `tests/bench/run fleet` (sourced tests/bench/fleet.sh starts redis-server and
writes the config, then runs this; figures: see `tests/bench/run --help`).

  fleet_bench.py --bin DIR --conf FILE --run DIR --redis-port P --events N

Every phase starts from the same point: FLUSHALL + SCRIPT FLUSH, a fresh kefu-broker, the same
`kefuctl sim` stream published with confirmation (`kefuctl pub --file`, not timed) before any
worker runs, so the journal holds all of it; then the phase's worker(s) start and catch up on
the simulated clock. Figure lines and the JSON summary go to stdout, progress to stderr
("bench: ...").
"""
import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import redis

from benchlib import cpu_s, status_kb

# (daemon, group = config section and key names, figure prefix)
WORKERS = [("kefu-pay-reminder", "pay-reminder", "pay_reminder"),
           ("kefu-logistics", "logistics", "logistics"),
           ("kefu-review-repair", "review-repair", "review_repair"),
           ("kefu-crm-care", "crm-care", "crm_care")]
PARTITIONS = 64
# kefuctl sim at --orders 400 (the default): 54 607 events, 1057 of them sys.clock ticks; each
# order per shop and day adds ~134 events (orders, payments, shipments, scans, reviews, care)
SIM_ORDERS, SIM_EVENTS, SIM_TICKS = 400, 54607, 1057
TOP_FAMILIES = 15


def log(msg):
    sys.stderr.write("bench: " + msg + "\n")
    sys.stderr.flush()


def family(key):
    """The key's family: its segments up to the first variable one (a {hash tag} or one with a
    digit: ids, dates, partitions), which becomes '*'; kefu:journal stays kefu:journal,
    kefu:dedup:crm-care:sim1-s3-00042 is kefu:dedup:crm-care:*, kefu:order:{s3}:... kefu:order:*."""
    out = []
    for s in key.split(":"):
        if s.startswith("{") or any(c.isdigit() for c in s):
            out.append("*")
            break
        out.append(s)
    return ":".join(out)


def group_of(fam):
    """A coarser roll-up: the first two segments (kefu:dedup, kefu:timer, kefu:order...)."""
    segs = fam.split(":")
    return ":".join(segs[:2]) + (":*" if len(segs) > 2 else "")


class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = a.bin
        self.run = a.run
        self.r = redis.Redis(host="127.0.0.1", port=a.redis_port, decode_responses=True)
        self.redis_pid = int(self.r.info("server")["process_id"])
        self.procs = []
        self.out = {}
        self.families = self.groups = []  # memory by key family: measured by the fleet phase
        self.http = None
        for line in open(a.conf):
            if line.strip().startswith("listen"):
                self.http = line.split("=", 1)[1].strip()

    # ------------------------------------------------------------ processes
    def spawn(self, name, argv):
        logf = open(os.path.join(self.run, name + ".log"), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        logf.close()
        self.procs.append(p)
        return p

    def stop(self, p, timeout=20):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.procs:
            self.procs.remove(p)
        return p.returncode

    def stop_all(self):
        for p in list(self.procs):
            self.stop(p, 5)

    def healthy(self):
        try:
            with urllib.request.urlopen("http://%s/healthz" % self.http, timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def broker(self, name):
        p = self.spawn(name, [os.path.join(self.bin, "kefu-broker"), "-c", self.a.conf])
        deadline = time.time() + 15
        while time.time() < deadline:
            if p.poll() is not None:
                raise SystemExit("kefu-broker exited at start (see %s.log in the run dir)" % name)
            if self.healthy():
                return p
            time.sleep(0.05)
        raise SystemExit("kefu-broker did not become healthy")

    # ------------------------------------------------------------ the stream
    def sim(self):
        n = self.a.events
        orders = max(1, int(round((n - SIM_TICKS) * SIM_ORDERS / float(SIM_EVENTS - SIM_TICKS))))
        self.sim_args = ["sim", "--shops", "10", "--days", "1", "--orders", str(orders),
                         "--seed", "1", "--tail", "240", "--tick", "15"]
        self.stream = os.path.join(self.run, "sim.ndjson")
        with open(self.stream, "wb") as f:
            r = subprocess.run([os.path.join(self.bin, "kefuctl")] + self.sim_args, stdout=f,
                               stderr=subprocess.PIPE, timeout=600)
        if r.returncode != 0:
            raise SystemExit("kefuctl sim failed: " + r.stderr.decode(errors="replace"))
        mix = collections.Counter()
        with open(self.stream, encoding="utf-8") as f:
            for line in f:
                mix[json.loads(line)["topic"]] += 1
        self.nstream = sum(mix.values())
        log("the stream: kefuctl %s: %d events" % (" ".join(self.sim_args), self.nstream))
        log("   " + r.stderr.decode(errors="replace").strip())
        log("   " + ", ".join("%s %d" % kv for kv in mix.most_common()))
        self.out.update(sim="kefuctl " + " ".join(self.sim_args), sim_events=self.nstream,
                        sim_mix=dict(mix.most_common()))

    def fresh(self, phase):
        """FLUSHALL, SCRIPT FLUSH, a fresh broker, the stream published (confirmed, not timed).
        Returns (broker process, journal head seq)."""
        self.r.flushall()
        self.r.script_flush()
        bp = self.broker("broker-" + phase)
        t0 = time.monotonic()
        r = subprocess.run([os.path.join(self.bin, "kefuctl"), "-c", self.a.conf, "pub", "--quiet",
                            "--file", self.stream], capture_output=True, text=True, timeout=1200)
        if r.returncode != 0:
            raise SystemExit("kefuctl pub failed: " + (r.stdout + r.stderr)[-2000:])
        head = int(self.r.get("kefu:seq") or 0)
        # events kept (an entry holds a run of them: common/kf_journal.h)
        raw = redis.Redis(host="127.0.0.1", port=self.a.redis_port)  # the entries are binary
        entries = raw.xrange("kefu:journal")
        raw.close()
        xlen = sum(int(f.get(b"n", 1)) for _, f in entries)
        log("   published in %.1fs (not timed): journal head seq %d, %d events in %d entries; %s" %
            (time.monotonic() - t0, head, xlen, len(entries), r.stderr.strip().splitlines()[-1]
             if r.stderr.strip() else ""))
        if xlen != head:
            raise SystemExit("the journal holds %d events for head seq %d" % (xlen, head))
        return bp, head

    def ckpts(self, groups):
        """{group: max kefu:ckpt:<group>:0..63} in one pipelined round trip."""
        pipe = self.r.pipeline(transaction=False)
        for g in groups:
            pipe.mget(["kefu:ckpt:%s:%d" % (g, p) for p in range(PARTITIONS)])
        out = {}
        for g, vals in zip(groups, pipe.execute()):
            out[g] = max([int(v) for v in vals if v is not None] or [0])
        return out

    def cmdstats(self, top=int(os.environ.get("KEFU_BENCH_TOP_CMDS", "6"))):
        """'cmd calls x us/call' of the commands Redis spent most time in since CONFIG RESETSTAT
        (the commands inside scripts are counted too); and the worker steps' (calls, us per call):
        FCALL (Redis Functions) or EVALSHA."""
        rows = []
        ev = (0, 0.0)
        for k, v in self.r.info("commandstats").items():
            name = k[len("cmdstat_"):] if k.startswith("cmdstat_") else k
            if name.startswith(("info", "config", "mget", "memory", "scan")):
                continue  # the bench's own
            rows.append((float(v["usec"]), name, int(v["calls"]), float(v["usec_per_call"])))
            if name in ("evalsha", "fcall") and int(v["calls"]) > ev[0]:
                ev = (int(v["calls"]), float(v["usec_per_call"]))
        rows.sort(reverse=True)
        text = ", ".join("%s %dx %.1fus" % (n, c, u) for _, n, c, u in rows[:top])
        return text, ev

    # ------------------------------------------------------------ a catch-up phase
    def catchup(self, phase, workers):
        """Starts `workers` on the journal published by fresh(); waits until every one's highest
        checkpoint reaches the head. Returns a dict of figures."""
        bp, head = self.fresh(phase)
        timeout = max(180.0, head / 100.0)
        groups = [g for _, g, _ in workers]
        self.r.config_resetstat()
        perf = None
        if os.environ.get("KEFU_BENCH_PERF"):  # a profile of redis-server during the catch-up
            perf = subprocess.Popen(["perf", "record", "-q", "-g", "-p", str(self.redis_pid),
                                     "-o", os.path.join(self.run, "perf-%s.data" % phase)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        rcpu0, bcpu0 = cpu_s(self.redis_pid), cpu_s(bp.pid)
        t0 = time.monotonic()
        procs = {}
        for daemon, g, _ in workers:
            procs[g] = self.spawn("%s-%s" % (daemon, phase),
                                  [os.path.join(self.bin, daemon), "-c", self.a.conf])
        done = {}  # group -> (seconds, worker cpu, worker hwm) at its catch-up
        ck = {}
        while time.monotonic() - t0 < timeout:
            ck = self.ckpts([g for g in groups if g not in done])
            now = time.monotonic() - t0
            for g, c in ck.items():
                if c >= head:
                    p = procs[g]
                    done[g] = (now, cpu_s(p.pid), status_kb(p.pid, "VmHWM"))
            if len(done) == len(groups):
                break
            dead = [g for g in groups if g not in done and procs[g].poll() is not None]
            if dead:
                raise SystemExit("%s exited during the catch-up (see its log in the run dir)" %
                                 ", ".join(dead))
            time.sleep(0.02)
        secs = time.monotonic() - t0
        rcpu = cpu_s(self.redis_pid) - rcpu0
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(60)
            log("   perf profile of redis-server: %s" % os.path.join(self.run, "perf-%s.data" % phase))
        bcpu = cpu_s(bp.pid) - bcpu0
        if len(done) < len(groups):
            raise SystemExit("%s did not catch up on %d events within %.0fs (checkpoints %s)" % (
                ", ".join(g for g in groups if g not in done), head, timeout, json.dumps(ck)))
        cmds, ev = self.cmdstats()
        res = {"events": head, "seconds": secs, "redis_cpu_s": rcpu, "broker_cpu_s": bcpu,
               "workers": {}, "cmds": cmds, "evalsha": ev, "broker": bp}
        for daemon, g, fig in workers:
            p = procs[g]
            s, c, hwm = done[g]
            res["workers"][fig] = {"seconds": s, "cpu_s": c, "peak_rss_kb": hwm}
            self.stop(p)
            if p.returncode not in (0, None):
                log("   warning: %s exited %s" % (daemon, p.returncode))
            errs = 0
            with open(os.path.join(self.run, "%s-%s.log" % (daemon, phase)), "rb") as f:
                for line in f:
                    if b"failed" in line.lower() or b"unexpected reply" in line.lower():
                        errs += 1
            if errs:
                log("   warning: %d error line(s) in %s's log" % (errs, daemon))
        res["broker_peak_rss_kb"] = status_kb(bp.pid, "VmHWM")
        res["actions"] = self.r.xlen("kefu:actions") if self.r.exists("kefu:actions") else 0
        return res

    def solo(self, w):
        daemon, g, fig = w
        log("%s alone" % daemon)
        res = self.catchup(fig, [w])
        n = res["events"]
        wr = res["workers"][fig]
        us = res["redis_cpu_s"] * 1e6 / n
        log("   caught up on %d events in %.2fs (%d ev/s): redis-server CPU %.2fs (%.1f us/event), "
            "worker CPU %.2fs (%.1f us/event), peak RSS %d kB; %d actions" % (
                n, wr["seconds"], n / wr["seconds"], res["redis_cpu_s"], us, wr["cpu_s"],
                wr["cpu_s"] * 1e6 / n, wr["peak_rss_kb"], res["actions"]))
        log("   redis time by command: " + res["cmds"])
        self.stop(res["broker"])
        self.out.update({
            fig + "_eps": round(n / wr["seconds"]), fig + "_seconds": round(wr["seconds"], 3),
            fig + "_redis_cpu_s": round(res["redis_cpu_s"], 2),
            fig + "_redis_us_per_event": round(us, 2),
            fig + "_cpu_s": round(wr["cpu_s"], 2), fig + "_peak_rss_kb": wr["peak_rss_kb"],
            fig + "_actions": res["actions"],
            fig + "_calls": res["evalsha"][0],
            fig + "_call_us": round(res["evalsha"][1], 2)})
        self.out["events"] = n

    # ------------------------------------------------------------ all four, memory
    def fleet(self):
        log("the fleet: all four workers together")
        res = self.catchup("fleet", WORKERS)
        n = res["events"]
        us = res["redis_cpu_s"] * 1e6 / n
        log("   all caught up on %d events in %.2fs (%d ev/s): redis-server CPU %.2fs "
            "(%.1f us/event), kefu-broker CPU %.2fs; %d actions" % (
                n, res["seconds"], n / res["seconds"], res["redis_cpu_s"], us,
                res["broker_cpu_s"], res["actions"]))
        for _, _, fig in WORKERS:
            wr = res["workers"][fig]
            log("   %s caught up after %.2fs, CPU %.2fs, peak RSS %d kB" % (
                fig, wr["seconds"], wr["cpu_s"], wr["peak_rss_kb"]))
            self.out.update({"fleet_%s_seconds" % fig: round(wr["seconds"], 3),
                             "fleet_%s_cpu_s" % fig: round(wr["cpu_s"], 2),
                             "fleet_%s_peak_rss_kb" % fig: wr["peak_rss_kb"]})
        log("   redis time by command: " + res["cmds"])
        self.out.update(fleet_events=n, fleet_eps=round(n / res["seconds"]),
                        fleet_seconds=round(res["seconds"], 3),
                        fleet_redis_cpu_s=round(res["redis_cpu_s"], 2),
                        fleet_redis_us_per_event=round(us, 2),
                        fleet_broker_cpu_s=round(res["broker_cpu_s"], 2),
                        fleet_actions=res["actions"],
                        fleet_calls=res["evalsha"][0],
                        fleet_call_us=round(res["evalsha"][1], 2))
        self.memory(n)  # the workers are stopped: nothing moves while it scans
        self.out["broker_peak_rss_kb"] = status_kb(res["broker"].pid, "VmHWM")
        self.stop(res["broker"])

    def memory(self, n):
        t0 = time.monotonic()
        fams = collections.defaultdict(lambda: [0, 0])  # family -> [bytes, keys]
        keys = []

        def flush():
            pipe = self.r.pipeline(transaction=False)
            for k in keys:
                pipe.memory_usage(k, samples=0)
            for k, b in zip(keys, pipe.execute()):
                f = fams[family(k)]
                f[0] += b or 0
                f[1] += 1
            del keys[:]
        for k in self.r.scan_iter(count=1000):
            keys.append(k)
            if len(keys) >= 1000:
                flush()
        flush()
        total = sum(b for b, _ in fams.values())
        nkeys = sum(c for _, c in fams.values())
        info = self.r.info("memory")
        dataset = int(info.get("used_memory_dataset", 0))
        used = int(info["used_memory"]) - int(info.get("used_memory_startup", 0))
        ranked = sorted(fams.items(), key=lambda kv: -kv[1][0])
        log("   redis memory: %d keys, MEMORY USAGE (SAMPLES 0) total %d bytes = %.0f B/event; "
            "used_memory - startup %d (%.0f B/event), dataset %d (%.0f B/event); scanned in %.1fs"
            % (nkeys, total, total / n, used, used / n, dataset, dataset / n,
               time.monotonic() - t0))
        groups = collections.defaultdict(lambda: [0, 0])
        for f, (b, c) in fams.items():
            g = groups[group_of(f)]
            g[0] += b
            g[1] += c
        log("   by key family (B/event, keys): " + ", ".join(
            "%s %.0f (%d)" % (f, b / n, c) for f, (b, c) in ranked[:25]))
        log("   rolled up: " + ", ".join("%s %.0f (%d)" % (f, b / n, c) for f, (b, c) in sorted(
            groups.items(), key=lambda kv: -kv[1][0])))
        self.out.update(fleet_mem_bytes_per_event=round(total / n, 1), fleet_mem_keys=nkeys,
                        fleet_used_memory_per_event=round(used / n, 1),
                        fleet_dataset_per_event=round(dataset / n, 1))
        self.families = [(f, round(b / n, 1), c) for f, (b, c) in ranked]
        self.groups = [(f, round(b / n, 1), c) for f, (b, c) in sorted(
            groups.items(), key=lambda kv: -kv[1][0])]

    # ------------------------------------------------------------ SET-equivalents
    def set_cost(self):
        log("redis-benchmark -P 64 -t set -n 1000000 -q on the same redis-server")
        c0 = cpu_s(self.redis_pid)
        r = subprocess.run(["redis-benchmark", "-p", str(self.a.redis_port), "-P", "64", "-t",
                            "set", "-n", "1000000", "-q"], capture_output=True, text=True,
                           timeout=600)
        c = cpu_s(self.redis_pid) - c0
        line = [l for l in r.stdout.replace("\r", "\n").splitlines() if "per second" in l]
        log("   %s; redis-server CPU %.2fs" % (line[-1].strip() if line else r.stdout.strip(), c))
        self.r.delete("key:__rand_int__")
        set_us = c * 1e6 / 1e6
        self.out["redis_set_us"] = round(set_us, 3)
        for fig in [w[2] for w in WORKERS] + ["fleet"]:
            per = self.out.get(fig + "_redis_us_per_event", 0)
            self.out[fig + "_redis_set_eq"] = round(per / set_us, 1) if set_us > 0 else 0
        self.out["solo_sum_redis_set_eq"] = round(
            sum(self.out.get(w[2] + "_redis_set_eq", 0) for w in WORKERS), 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--events", type=int, default=54600)
    a = ap.parse_args()

    def on_term(*_):
        raise SystemExit(143)
    signal.signal(signal.SIGTERM, on_term)
    b = Bench(a)
    t0 = time.monotonic()
    try:
        b.sim()
        only = os.environ.get("KEFU_BENCH_ONLY")  # e.g. "logistics": that worker alone, no fleet
        for w in WORKERS:
            if not only or w[2] == only:
                b.solo(w)
        if not only:
            b.fleet()
        b.set_cost()
    finally:
        b.stop_all()
    log("done in %.0fs" % (time.monotonic() - t0))
    o = b.out
    figs = []
    for _, _, fig in WORKERS:
        figs += [fig + s for s in ("_eps", "_seconds", "_redis_set_eq", "_redis_us_per_event",
                                   "_redis_cpu_s", "_cpu_s", "_peak_rss_kb")]
    figs += ["fleet_events", "fleet_eps", "fleet_seconds", "fleet_redis_set_eq",
             "fleet_redis_us_per_event", "fleet_redis_cpu_s", "solo_sum_redis_set_eq",
             "redis_set_us"]
    figs += ["fleet_%s_seconds" % w[2] for w in WORKERS]
    figs += ["broker_peak_rss_kb"] + ["fleet_%s_peak_rss_kb" % w[2] for w in WORKERS]
    figs += ["fleet_mem_bytes_per_event", "fleet_mem_keys", "fleet_used_memory_per_event"]
    for k in figs:
        print("%s %s" % (k, o.get(k, 0)))
    rest = 0.0
    for i, (f, bpe, c) in enumerate(b.families):
        if i < TOP_FAMILIES:
            print("fleet_mem:%s %s" % (f, bpe))
        else:
            rest += bpe
    if len(b.families) > TOP_FAMILIES:
        print("fleet_mem:other %.1f" % rest)
    # the targets of issue 13 (figures, never a pass/fail)
    for k, t in (("fleet_redis_set_eq", 30), ("pay_reminder_redis_set_eq", 5),
                 ("fleet_mem_bytes_per_event", 400)):
        if o.get(k, 0) > t:
            print("missed: %s %s > %s" % (k, o.get(k, 0), t))
    summary = {"bench": "fleet"}
    summary.update(o)
    summary["mem_families"] = {f: {"bytes_per_event": bpe, "keys": c} for f, bpe, c in b.families}
    summary["mem_groups"] = {f: {"bytes_per_event": bpe, "keys": c} for f, bpe, c in b.groups}
    summary.update(target_fleet_set_eq=30, target_pay_reminder_set_eq=5,
                   target_mem_bytes_per_event=400)
    print(json.dumps(summary, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
