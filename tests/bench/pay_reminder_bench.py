#!/usr/bin/env python3
"""Helpers of `tests/bench/run pay-reminder` (not a benchmark on its own).

  pay_reminder_bench.py sim EVENTS [SEED]
      NDJSON for `kefuctl pub --file -` when `kefuctl sim` is not built: 10 shops, orders
      (order.created, ~90% order.paid a few minutes later, ~3% order.closed) and sys.clock
      ticks every 5 simulated minutes, sorted by time, exactly EVENTS lines.
  pay_reminder_bench.py catchup REDIS_PORT TARGET_SEQ TIMEOUT_S -- CMD...
      Starts CMD (the worker), polls max(kefu:ckpt:pay-reminder:0..63) every 10 ms until it
      reaches TARGET_SEQ, then stops CMD. Prints key=value lines: seconds, ckpt, worker and
      redis CPU seconds over the catch-up, worker peak RSS (VmHWM, kB), exit status.
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time

from benchlib import cpu_s, status_kb

TZ = 8 * 3600  # shop-local +08:00
DAY0 = 1794240000  # 2026-11-10T00:00:00+08:00 as epoch seconds


def iso(t):
    lt = time.gmtime(t + TZ)
    return time.strftime("%Y-%m-%dT%H:%M:%S+08:00", lt)


NAMES = ["张浩", "王芳", "李娜", "刘洋", "陈静", "杨帆", "赵磊", "黄敏", "周欣", "吴昊"]
TITLES = [
    "记忆棉护颈枕头单人慢回弹颈椎枕成人睡眠专用",
    "澳洲进口羊毛被冬被加厚保暖双人被芯200x230cm",
    "男士纯棉短袖T恤宽松夏季3件装",
    "多功能破壁机家用加热全自动豆浆机料理机",
    "儿童保温杯带吸管316不锈钢幼儿园水杯",
]


def sim(n, seed):
    rnd = random.Random(seed)
    shops = ["s%d" % i for i in range(1, 11)]
    out = []  # (t, order, json)
    for i, s in enumerate(shops):
        out.append((DAY0 - 3600, i, {"topic": "shop.config", "event_id": "bsim-%s-0" % s,
                                     "shop_id": s, "occurred_at": iso(DAY0 - 3600),
                                     "name": "店铺%s" % s, "utc_offset_minutes": 480}))
    per_day = 86400 // 300 + 1
    days = max(1, (n + 199999) // 200000)
    norders = max(1, int((n - 10 - per_day * days) / 1.93 * 1.02) + 1)
    span = days * 86400
    seqno = 0
    for k in range(norders):
        s = rnd.choice(shops)
        t = DAY0 + rnd.randrange(span)
        seqno += 1
        oid = "%s-%08d" % (s, k + 1)
        bid = "%s-b%06d" % (s, rnd.randrange(5000))
        price = rnd.choice([990, 2990, 12900, 39900, 59900])
        qty = rnd.randint(1, 3)
        out.append((t, 1, {"topic": "order.created", "event_id": "bsim-%s-%d" % (s, seqno),
                           "shop_id": s, "occurred_at": iso(t), "order_id": oid,
                           "buyer": {"buyer_id": bid, "name": rnd.choice(NAMES),
                                     "nick": "tb%010d" % rnd.randrange(10**10)},
                           "items": [{"sku_id": "k%d" % rnd.randrange(1000, 1100),
                                      "title": rnd.choice(TITLES), "qty": qty,
                                      "price_fen": price}],
                           "total_fen": price * qty, "kind": "normal", "created_at": iso(t)}))
        r = rnd.random()
        if r < 0.90:
            t2 = t + rnd.randrange(30, 900)
            seqno += 1
            out.append((t2, 1, {"topic": "order.paid", "event_id": "bsim-%s-%d" % (s, seqno),
                                "shop_id": s, "occurred_at": iso(t2), "order_id": oid,
                                "at": iso(t2), "buyer_id": bid, "amount_fen": price * qty}))
        elif r < 0.93:
            t2 = t + rnd.randrange(3600, 20000)
            seqno += 1
            out.append((t2, 1, {"topic": "order.closed", "event_id": "bsim-%s-%d" % (s, seqno),
                                "shop_id": s, "occurred_at": iso(t2), "order_id": oid,
                                "at": iso(t2), "reason": "buyer", "buyer_id": bid}))
    for k in range(per_day * days):
        t = DAY0 + 300 * k
        out.append((t, 0, {"topic": "sys.clock", "event_id": "bsim-clock-%d" % k,
                           "occurred_at": iso(t), "now": iso(t)}))
    out.sort(key=lambda e: (e[0], e[1]))
    w = sys.stdout.write
    for e in out[:n]:
        w(json.dumps(e[2], ensure_ascii=False, separators=(",", ":")) + "\n")


# ---------------------------------------------------------------- catch-up timing

def resp_cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Redis:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def cmd(self, *args):
        self.s.sendall(resp_cmd(*args))
        return self.read()

    def read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b"-"):
            return rest.decode()
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2].decode()
        if kind == b"*":
            return [self.read() for _ in range(int(rest))]
        raise RuntimeError("bad reply %r" % line)


def catchup(port, target, timeout, cmd):
    r = Redis(port)
    redis_pid = int([l for l in r.cmd("INFO", "server").splitlines()
                     if l.startswith("process_id:")][0].split(":")[1])
    keys = ["kefu:ckpt:pay-reminder:%d" % p for p in range(64)]
    proc = None

    def stop(*_):
        if proc and proc.poll() is None:
            proc.terminate()
        sys.exit(143)

    signal.signal(signal.SIGTERM, stop)
    rc0 = cpu_s(redis_pid)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    ckpt, done = 0, False
    wcpu, hwm = 0.0, 0
    while time.monotonic() - t0 < timeout:
        vals = r.cmd("MGET", *keys)
        ckpt = max(int(v) for v in vals if v is not None) if any(vals) else 0
        if ckpt >= target:
            done = True
            break
        if proc.poll() is not None:
            break
        wcpu, hwm = cpu_s(proc.pid), status_kb(proc.pid, "VmHWM")
        time.sleep(0.01)
    secs = time.monotonic() - t0
    rcpu = cpu_s(redis_pid) - rc0
    if proc.poll() is None:
        wcpu, hwm = cpu_s(proc.pid), status_kb(proc.pid, "VmHWM")
        proc.terminate()
        try:
            rc = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    else:
        rc = proc.returncode
    print("caught_up %d" % (1 if done else 0))
    print("seconds %.3f" % secs)
    print("ckpt %d" % ckpt)
    print("worker_cpu_s %.2f" % wcpu)
    print("redis_cpu_s %.2f" % rcpu)
    print("worker_peak_rss_kb %d" % hwm)
    print("worker_exit %d" % rc)


def main():
    a = sys.argv[1:]
    if a[:1] == ["sim"] and len(a) in (2, 3):
        sim(int(a[1]), int(a[2]) if len(a) == 3 else 1)
    elif a[:1] == ["catchup"] and len(a) > 5 and a[4] == "--":
        catchup(int(a[1]), int(a[2]), float(a[3]), a[5:])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
