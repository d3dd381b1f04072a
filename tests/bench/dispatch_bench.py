#!/usr/bin/env python3
"""The phases of `tests/bench/run dispatch` (sourced tests/bench/dispatch.sh starts redis-server and
kefu-broker, then runs this; figures: see `tests/bench/run --help`).

  dispatch_bench.py --bin DIR --conf FILE --run DIR --redis-port P --events N

Every phase gets a fresh kefu-dispatch (so its VmHWM is the phase's) and an empty kefu:actions;
the receiver is `kefuctl webhook-listen` (verifying every signature). Figure lines and the JSON
summary go to stdout, progress to stderr ("bench: ...").
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime

import redis

from benchlib import cpu_s, status_kb

SECRET = "whsec_" + base64.b64encode(b"kefu-bench-dispatch-secret-0123456789").decode()
SHOPS = ["s%d" % i for i in range(1, 11)]
TEXT = "亲，您的订单还未付款哦，现在付款我们会优先为您安排发货~"


def log(msg):
    sys.stderr.write("bench: " + msg + "\n")
    sys.stderr.flush()


def now_ms():
    return int(time.time() * 1000)


def pct(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return float(v[min(len(v) - 1, int(p / 100.0 * len(v)))])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- actions (workers' format)

def contact(aid, shop, buyer, at):
    """As tests/integration/test_dispatch.py contact(): an im contact (no allowed hours)."""
    return {"topic": "action.contact", "event_id": aid, "action_id": aid, "shop_id": shop,
            "buyer_id": buyer, "order_id": "o-" + aid, "channel": "im",
            "reason": "payment_reminder", "text": TEXT, "occurred_at": at,
            "not_before": at, "fact_at": at, "worker": "kefu-bench"}


def task(tid, shop, at):
    """As tests/integration/test_dispatch.py task()."""
    return {"topic": "action.task", "event_id": tid, "task_id": tid, "shop_id": shop,
            "kind": "logistics_stalled", "reason": "logistics_stalled", "severity": "warn",
            "summary": "包裹停滞超过48小时，请联系快递核实", "occurred_at": at, "due_at": at,
            "fact_at": at, "worker": "kefu-bench"}


def action(run, i, shop, at):
    """The i-th action of a phase: 3 of 4 are contacts, 1 of 4 a task."""
    if i % 4 == 3:
        return task("%s-t%07d" % (run, i), shop, at)
    return contact("%s-c%07d" % (run, i), shop, "%s-b%05d" % (shop, i % 5000), at)


def fields(a):
    return {"t": a["topic"], "id": a["event_id"],
            "j": json.dumps(a, ensure_ascii=False, separators=(",", ":"))}


def parse_ms(v):
    if isinstance(v, (int, float)):
        return float(v)
    return datetime.fromisoformat(v).timestamp() * 1000.0


def sid_ms(sid):
    return int(sid.split("-")[0])


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, a):
        self.a = a
        self.bin = a.bin
        self.run = a.run
        self.r = redis.Redis(host="127.0.0.1", port=a.redis_port, decode_responses=True)
        self.redis_pid = int(self.r.info("server")["process_id"])
        self.procs = []
        self.secrets = os.path.join(self.run, "secrets")
        with open(self.secrets, "w") as f:
            f.write("* %s\n" % SECRET)
        self.out = {}

    # ------------------------------------------------------------ processes
    def spawn(self, name, argv, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        if "stderr" not in kw:
            kw["stderr"] = open(os.path.join(self.run, name + ".log"), "ab")
        if "stdout" not in kw:
            kw["stdout"] = kw["stderr"]
        p = subprocess.Popen(argv, **kw)
        self.procs.append(p)
        return p

    def stop(self, p, timeout=10):
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

    def listener(self, name, port, json_out=False):
        """kefuctl webhook-listen; with json_out its stdout is a pipe (one JSON line each)."""
        argv = [os.path.join(self.bin, "kefuctl"), "webhook-listen", "--port", str(port),
                "--secret", SECRET, "--json" if json_out else "--quiet"]
        err = os.path.join(self.run, name + ".err")
        p = self.spawn(name, argv, stdout=subprocess.PIPE if json_out else subprocess.DEVNULL,
                       stderr=open(err, "wb"), text=json_out or None)
        deadline = time.time() + 10
        while time.time() < deadline:
            if p.poll() is not None:
                raise SystemExit("kefuctl webhook-listen exited: " + open(err).read())
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return p, err
            time.sleep(0.05)
        raise SystemExit("kefuctl webhook-listen did not listen on port %d" % port)

    def listener_summary(self, p, err):
        """Stops the listener; (deliveries, verified, invalid) from its exit line."""
        self.stop(p)
        for line in open(err):
            if line.startswith("webhook-listen:") and "deliveries" in line:
                w = line.replace(",", "").split()
                return int(w[1]), int(w[3]), int(w[5])
        return 0, 0, 0

    def dispatch(self, name, url, extra=()):
        argv = [os.path.join(self.bin, "kefu-dispatch"), "-c", self.a.conf,
                "-o", "dispatch.secrets_file=" + self.secrets,
                "-o", "dispatch.default_url=" + url, "-o", "dispatch.rate=0"]
        for e in extra:
            argv += ["-o", e]
        return self.spawn(name, argv)

    def wait_consumer(self, p, timeout=15):
        """Until dispatch has read kefu:actions once (its consumer exists in the group)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if p.poll() is not None:
                raise SystemExit("kefu-dispatch exited at start (see its log in the run dir)")
            try:
                if self.r.xinfo_consumers("kefu:actions", "dispatch"):
                    return
            except redis.ResponseError:
                pass
            time.sleep(0.05)
        raise SystemExit("kefu-dispatch did not start reading kefu:actions")

    def clean(self):
        keys = ["kefu:actions", "kefu:dead", "kefu:dispatch:disabled"]
        keys += list(self.r.scan_iter("kefu:dlv:*", count=1000))
        keys += list(self.r.scan_iter("kefu:optout:*", count=1000))
        if keys:
            self.r.delete(*keys)

    def xadd_all(self, entries):
        pipe = self.r.pipeline(transaction=False)
        ids = []
        for k, a in enumerate(entries):
            pipe.xadd("kefu:actions", fields(a))
            if k % 1000 == 999:
                ids += pipe.execute()
        ids += pipe.execute()
        return ids

    def states(self):
        """{sid: state} of every kefu:dlv hash."""
        out = {}
        for key in self.r.scan_iter("kefu:dlv:*", count=1000):
            for sid, v in self.r.hgetall(key).items():
                out[sid] = json.loads(v)
        return out

    def cmdstats(self):
        """{command: (calls, usec_per_call)} since the last CONFIG RESETSTAT."""
        out = {}
        for k, v in self.r.info("commandstats").items():
            name = k[len("cmdstat_"):] if k.startswith("cmdstat_") else k
            if name in ("info", "config|resetstat", "config", "xinfo|groups", "xinfo"):
                continue
            out[name] = (int(v["calls"]), float(v["usec_per_call"]))
        return out

    def group(self):
        try:
            for g in self.r.xinfo_groups("kefu:actions"):
                if g["name"] == "dispatch":
                    return g
        except redis.ResponseError:
            pass
        return None

    # ------------------------------------------------------------ 1. throughput
    def throughput(self):
        n = self.a.events
        self.clean()
        port = free_port()
        lp, lerr = self.listener("listen-throughput", port)
        url = "http://127.0.0.1:%d/hook" % port
        t = now_ms()
        log("1. throughput: %d actions of %d shops (3/4 action.contact im, 1/4 action.task) "
            "in kefu:actions before kefu-dispatch starts, one endpoint %s, rate 0" %
            (n, len(SHOPS), url))
        t0 = time.monotonic()
        self.xadd_all(action("tp", i, SHOPS[i % len(SHOPS)], t) for i in range(n))
        log("   appended in %.1fs (not timed), XLEN %d" % (time.monotonic() - t0,
                                                            self.r.xlen("kefu:actions")))
        extra = []
        if n > 20000:  # one endpoint holds at most queue_max (20000) in memory, beyond: dead
            extra.append("dispatch.queue_max=%d" % n)
            log("   [dispatch] queue_max = %d (default 20000: the whole backlog is one endpoint's)"
                % n)
        timeout = max(60.0, n / 200.0)
        self.r.config_resetstat()
        lcpu0, rcpu0 = cpu_s(lp.pid), cpu_s(self.redis_pid)
        t0 = time.monotonic()
        dp = self.dispatch("dispatch-throughput", url, extra)
        done, hwm, dcpu, first = False, 0, 0.0, None
        while time.monotonic() - t0 < timeout:
            g = self.group()
            if g:
                read = g.get("entries-read") or 0
                if first is None and g["pending"] < read:
                    first = time.monotonic() - t0  # the first acknowledgement
                if read >= n and g["pending"] == 0:
                    done = True
                    break
            if dp.poll() is not None:
                break
            hwm = max(hwm, status_kb(dp.pid, "VmHWM"))
            dcpu = cpu_s(dp.pid)
            time.sleep(0.02)
        secs = time.monotonic() - t0
        rcpu = cpu_s(self.redis_pid) - rcpu0
        lcpu = cpu_s(lp.pid) - lcpu0
        if dp.poll() is None:
            hwm, dcpu = max(hwm, status_kb(dp.pid, "VmHWM")), cpu_s(dp.pid)
        cmds = self.cmdstats()
        self.stop(dp)
        deliveries, verified, invalid = self.listener_summary(lp, lerr)
        st = self.states()
        by = {}
        for v in st.values():
            by[v["s"]] = by.get(v["s"], 0) + 1
        delivered = by.get("delivered", 0)
        if not done:
            log("   warning: not every action was acknowledged within %.0fs" % timeout)
        eps = delivered / secs if secs > 0 else 0
        log("   all acknowledged in %.2fs (first ack after %.2fs): states %s; receiver %d "
            "deliveries, %d verified, %d invalid" % (secs, first or 0, json.dumps(by), deliveries,
                                                     verified, invalid))
        log("   CPU: kefu-dispatch %.2fs (%.0f us/action), redis-server %.2fs (%.1f us/action), "
            "receiver %.2fs; dispatch peak RSS %d kB" % (dcpu, dcpu * 1e6 / max(n, 1), rcpu,
                                                         rcpu * 1e6 / max(n, 1), lcpu, hwm))
        ncmd = sum(c for c, _ in cmds.values())
        top = sorted(cmds.items(), key=lambda kv: -kv[1][0] * kv[1][1])[:9]
        log("   redis: %.2f commands per action (MULTI and EXEC included, the bench's XINFO "
            "polls not): %s" % (ncmd / max(n, 1), ", ".join(
                "%s %.2f/action %.1fus" % (k, c / max(n, 1), us) for k, (c, us) in top)))
        self.out.update(dispatch_eps=round(eps), dispatch_seconds=round(secs, 3),
                        dispatch_delivered=delivered, dispatch_receiver_deliveries=deliveries,
                        dispatch_receiver_verified=verified, dispatch_cpu_s=round(dcpu, 2),
                        dispatch_redis_cpu_s=round(rcpu, 2), receiver_cpu_s=round(lcpu, 2),
                        dispatch_rss_mb_throughput=round(hwm / 1024.0, 1),
                        dispatch_redis_us_per_action=round(rcpu * 1e6 / max(n, 1), 2),
                        dispatch_redis_cmds_per_action=round(ncmd / max(n, 1), 2))

    # ------------------------------------------------------------ 3. latency
    def paced(self, rate, seconds, make):
        """XADDs rate*seconds actions, a batch every 5 ms; make(i, at_ms) builds the i-th.
        Returns (count, seconds taken, the latest a batch went out behind schedule, ms)."""
        total = int(rate * seconds)
        step = 0.005
        per = max(1, int(round(rate * step)))
        t0 = time.monotonic()
        i, behind = 0, 0.0
        pipe = self.r.pipeline(transaction=False)
        while i < total:
            due = t0 + (i / per) * step
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            else:
                behind = max(behind, -d)
            at = now_ms()
            for _ in range(min(per, total - i)):
                pipe.xadd("kefu:actions", fields(make(i, at)))
                i += 1
            pipe.execute()
        return total, time.monotonic() - t0, behind * 1000

    def reader(self, proc, got, bodies):
        """Receiver --json lines: got[id] = arrival - occurred_at (ms), first arrival only."""
        def run():
            for line in proc.stdout:
                t = time.time() * 1000.0
                try:
                    o = json.loads(line)
                    b = o["body"]
                    lat = t - parse_ms(b["occurred_at"])
                except (ValueError, KeyError, TypeError):
                    continue
                if o.get("id") not in got:
                    got[o.get("id")] = lat
                if len(bodies) < 400:
                    bodies.append(o)
        th = threading.Thread(target=run, daemon=True)
        th.start()
        return th

    def latency(self):
        rate, secs = self.a.latency_rate, self.a.latency_seconds
        self.clean()
        port = free_port()
        lp, lerr = self.listener("listen-latency", port, json_out=True)
        url = "http://127.0.0.1:%d/hook" % port
        got, bodies = {}, []
        self.reader(lp, got, bodies)
        dp = self.dispatch("dispatch-latency", url)
        self.wait_consumer(dp)
        time.sleep(0.3)
        log("3. latency: %d actions/s for %gs, 10 shops, one endpoint, emit (occurred_at) -> "
            "arrival at the receiver" % (rate, secs))
        rcpu0 = cpu_s(self.redis_pid)
        total, took, behind = self.paced(
            rate, secs, lambda i, at: action("lat", i, SHOPS[i % len(SHOPS)], at))
        deadline = time.time() + 20
        while len(got) < total and time.time() < deadline:
            time.sleep(0.05)
        rcpu = cpu_s(self.redis_pid) - rcpu0
        time.sleep(0.2)  # the last states and XACKs
        hwm = status_kb(dp.pid, "VmHWM")
        self.stop(dp)
        deliveries, verified, invalid = self.listener_summary(lp, lerr)
        lats = list(got.values())
        dlv = [v["done"] - sid_ms(sid) for sid, v in self.states().items()
               if v["s"] == "delivered" and v.get("done")]
        log("   paced %d in %.2fs (at most %.1f ms behind schedule); received %d distinct "
            "(%d deliveries, %d verified, %d invalid); redis-server CPU %.2fs" %
            (total, took, behind, len(got), deliveries, verified, invalid, rcpu))
        log("   at the receiver: p50 %.1f ms, p90 %.1f, p99 %.1f, max %.1f; dispatch's own view "
            "(kefu:dlv done - stream id ms): p50 %.0f, p99 %.0f ms; dispatch peak RSS %d kB" %
            (pct(lats, 50), pct(lats, 90), pct(lats, 99), max(lats or [0]), pct(dlv, 50),
             pct(dlv, 99), hwm))
        self.out.update(latency_rate=rate, latency_sent=total, latency_received=len(got),
                        latency_p50_ms=round(pct(lats, 50), 1),
                        latency_p90_ms=round(pct(lats, 90), 1),
                        latency_p99_ms=round(pct(lats, 99), 1),
                        latency_max_ms=round(max(lats or [0]), 1),
                        latency_dlv_p50_ms=pct(dlv, 50), latency_dlv_p99_ms=pct(dlv, 99),
                        latency_pacer_behind_ms=round(behind, 1))
        return bodies

    def body_file(self, samples):
        """The reference's body: a body dispatch sent in the latency phase (the one of median
        size), re-serialized; exact when its signature still verifies over these bytes."""
        path = os.path.join(self.run, "body.json")
        cands = []
        for o in samples:
            b = json.dumps(o["body"], ensure_ascii=False, separators=(",", ":")).encode()
            cands.append((len(b), b, o))
        if not cands:
            a = action("ref", 0, "s1", now_ms())
            cands = [(len(fields(a)["j"].encode()), fields(a)["j"].encode(), None)]
        cands.sort(key=lambda c: c[0])
        size, body, o = cands[len(cands) // 2]
        exact = False
        if o:
            key = base64.b64decode(SECRET[len("whsec_"):])
            mac = hmac.new(key, ("%s.%s." % (o["id"], o["timestamp"])).encode() + body,
                           hashlib.sha256).digest()
            exact = ("v1," + base64.b64encode(mac).decode()) in (o.get("signature") or "").split()
        with open(path, "wb") as f:
            f.write(body)
        mean = sum(c[0] for c in cands) / len(cands)
        log("   reference body: %d bytes (dispatch's bodies: %d..%d, mean %.0f; byte-exact %s)" %
            (size, cands[0][0], cands[-1][0], mean, "yes" if exact else "no"))
        self.out.update(body_bytes=size, body_exact=exact)
        return path

    # ------------------------------------------------------------ 2. the reference
    def reference(self, body):
        n = self.a.events
        port = free_port()
        lp, lerr = self.listener("listen-reference", port)
        url = "http://127.0.0.1:%d/hook" % port
        log("2. reference: kefu-bench http, %d signed POSTs, 4 in flight (dispatch's per-endpoint "
            "concurrency: the 10 shops share one endpoint), keep-alive, same receiver" % n)
        lcpu0 = cpu_s(lp.pid)
        r = subprocess.run([os.path.join(self.bin, "kefu-bench"), "http", url, str(n), "4", body,
                            "--secret", SECRET], capture_output=True, text=True, timeout=600)
        lcpu = cpu_s(lp.pid) - lcpu0
        deliveries, verified, invalid = self.listener_summary(lp, lerr)
        for line in r.stdout.splitlines() + r.stderr.splitlines():
            log("   " + line)
        w = r.stdout.split()
        eps = int(w[w.index("eps") + 1]) if "eps" in w else 0
        log("   receiver: %d deliveries, %d verified, %d invalid, CPU %.2fs" %
            (deliveries, verified, invalid, lcpu))
        ratio = self.out.get("dispatch_eps", 0) / eps if eps else 0.0
        self.out.update(ref_http_eps=eps, dispatch_vs_ref=round(ratio, 3),
                        ref_receiver_cpu_s=round(lcpu, 2))

    # ------------------------------------------------------------ 4. memory, isolation
    def memory(self):
        nhole, nlive = self.a.hole_events, self.a.live_events
        self.clean()
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))
        hole.listen(1024)
        hole_url = "http://127.0.0.1:%d/hole" % hole.getsockname()[1]
        conns = []

        def accept():
            while True:
                try:
                    c, _ = hole.accept()
                    conns.append(c)
                except OSError:
                    return
        threading.Thread(target=accept, daemon=True).start()
        port = free_port()
        lp, lerr = self.listener("listen-memory", port, json_out=True)
        live_url = "http://127.0.0.1:%d/live" % port
        got, bodies = {}, []
        self.reader(lp, got, bodies)
        dp = self.dispatch("dispatch-memory", "http://127.0.0.1:%d/hook" % port)
        self.wait_consumer(dp)
        log("4. memory: %d actions of shop s-hole (webhook_url a black hole: accepts, never "
            "answers) while %d of shop s-live flow at %d/s to the receiver" %
            (nhole, nlive, self.a.latency_rate))
        cfg = [{"topic": "shop.config", "shop_id": "s-hole",
                "event_id": "bench-cfg-hole-%d" % now_ms(), "webhook_url": hole_url},
               {"topic": "shop.config", "shop_id": "s-live",
                "event_id": "bench-cfg-live-%d" % now_ms(), "webhook_url": live_url}]
        r = subprocess.run([os.path.join(self.bin, "kefuctl"), "-c", self.a.conf, "pub", "--file",
                            "-"], input="".join(json.dumps(e) + "\n" for e in cfg),
                           capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise SystemExit("kefuctl pub shop.config failed: " + r.stdout + r.stderr)
        time.sleep(0.5)
        t = now_ms()
        t0 = time.monotonic()
        self.xadd_all(action("hole", i, "s-hole", t) for i in range(nhole))
        # s-live's actions come after the burst in kefu:actions: until dispatch has read and
        # queued the burst they wait behind it (one stream), whatever the endpoints
        while time.monotonic() - t0 < 60 and ((self.group() or {}).get("entries-read") or 0) < nhole:
            time.sleep(0.01)
        burst_ms = (time.monotonic() - t0) * 1000
        log("   the burst is appended and read by kefu-dispatch after %.0f ms; then s-live flows"
            % burst_ms)
        hwm = [0]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                hwm[0] = max(hwm[0], status_kb(dp.pid, "VmHWM"))
                time.sleep(0.1)
        threading.Thread(target=sample, daemon=True).start()
        total, took, behind = self.paced(self.a.latency_rate, nlive / self.a.latency_rate,
                                         lambda i, at: action("live", i, "s-live", at))
        deadline = time.time() + 20
        while len(got) < total and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        stop.set()
        hwm[0] = max(hwm[0], status_kb(dp.pid, "VmHWM"))
        rss = status_kb(dp.pid, "VmRSS")
        st = self.states()
        dead = sum(1 for v in st.values() if v["s"] == "dead")
        g = self.group() or {}
        self.stop(dp)
        self.listener_summary(lp, lerr)
        hole.close()
        for c in conns:
            c.close()
        lats = list(got.values())
        wrong = sum(1 for o in bodies if o["body"].get("shop_id") != "s-live")
        log("   s-live: %d/%d delivered, latency p50 %.1f ms, p99 %.1f, max %.1f; %d bodies of "
            "another shop at the receiver" % (len(got), total, pct(lats, 50), pct(lats, 99),
                                              max(lats or [0]), wrong))
        log("   s-hole: %d connections accepted, %d entries still pending in the group, %d dead; "
            "kefu-dispatch RSS %d kB now, peak %d kB" % (len(conns), g.get("pending", 0), dead,
                                                         rss, hwm[0]))
        self.out.update(dispatch_rss_mb=round(hwm[0] / 1024.0, 1),
                        iso_delivered=len(got), iso_sent=total,
                        iso_latency_p50_ms=round(pct(lats, 50), 1),
                        iso_latency_p99_ms=round(pct(lats, 99), 1),
                        iso_latency_max_ms=round(max(lats or [0]), 1),
                        hole_connections=len(conns), hole_pending=g.get("pending", 0),
                        hole_burst_read_ms=round(burst_ms))

    # ------------------------------------------------------------ SET-equivalents
    def set_cost(self):
        log("5. redis-benchmark -P 64 -t set -n 1000000 -q on the same redis-server")
        c0 = cpu_s(self.redis_pid)
        r = subprocess.run(["redis-benchmark", "-p", str(self.a.redis_port), "-P", "64", "-t", "set",
                            "-n", "1000000", "-q"], capture_output=True, text=True, timeout=600)
        c = cpu_s(self.redis_pid) - c0
        line = [l for l in r.stdout.replace("\r", "\n").splitlines() if "per second" in l]
        log("   %s; redis-server CPU %.2fs" % (line[-1].strip() if line else r.stdout.strip(), c))
        self.r.delete("key:__rand_int__")
        set_us = c * 1e6 / 1e6
        per = self.out.get("dispatch_redis_us_per_action", 0)
        self.out.update(redis_set_us=round(set_us, 3),
                        dispatch_redis_set_eq=round(per / set_us, 1) if set_us > 0 else 0)


FIGURES = [
    ("dispatch_eps", None), ("dispatch_seconds", None), ("dispatch_delivered", "events"),
    ("ref_http_eps", None), ("dispatch_vs_ref", None),
    ("latency_p50_ms", None), ("latency_p99_ms", None), ("latency_max_ms", None),
    ("latency_received", "latency_sent"),
    ("dispatch_rss_mb", None), ("iso_delivered", "iso_sent"), ("iso_latency_p50_ms", None),
    ("iso_latency_p99_ms", None), ("hole_burst_read_ms", None),
    ("dispatch_redis_us_per_action", None), ("dispatch_redis_cmds_per_action", None),
    ("redis_set_us", None),
    ("dispatch_redis_set_eq", None),
    ("dispatch_cpu_s", None), ("dispatch_rss_mb_throughput", None),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--latency-rate", type=int, default=1000)
    ap.add_argument("--latency-seconds", type=float, default=10.0)
    ap.add_argument("--hole-events", type=int, default=10000)
    ap.add_argument("--live-events", type=int, default=2000)
    a = ap.parse_args()

    def on_term(*_):
        raise SystemExit(143)
    signal.signal(signal.SIGTERM, on_term)
    b = Bench(a)
    try:
        b.throughput()
        body = b.body_file(b.latency())
        b.reference(body)
        b.memory()
        b.set_cost()
    finally:
        b.stop_all()
    o = b.out
    o["events"] = a.events
    for k, of in FIGURES:
        print("%s %s%s" % (k, o.get(k, 0), "/%s" % o.get(of, 0) if of else ""))
    if o.get("dispatch_vs_ref", 0) < 0.5:
        print("missed: dispatch_vs_ref %s < 0.5" % o.get("dispatch_vs_ref", 0))
    if o.get("latency_p99_ms", 0) >= 50:
        print("missed: latency_p99_ms %s >= 50" % o.get("latency_p99_ms", 0))
    if o.get("dispatch_rss_mb", 0) >= 64:
        print("missed: dispatch_rss_mb %s >= 64" % o.get("dispatch_rss_mb", 0))
    if o.get("dispatch_delivered", 0) != a.events:
        print("missed: dispatch_delivered %s of %d" % (o.get("dispatch_delivered", 0), a.events))
    summary = {"bench": "dispatch"}
    summary.update(o)
    summary.update(target_vs_ref=0.5, target_p99_ms=50, target_rss_mb=64)
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
