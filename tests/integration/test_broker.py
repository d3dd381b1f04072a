"""kefu-broker through its real doors: kefuctl, raw ZeroMQ sockets and HTTP."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import zmq

from kefu_harness import (BIN, Stack, metric, order_paid_envelope, wait_for, field_bytes,
                          read_varint)

ORDER = {
    "topic": "order.created", "event_id": "o-1001", "shop_id": "s1", "order_id": "1001",
    "buyer": {"buyer_id": "b9", "nick": "小美", "phone": "13800000000", "city": "杭州"},
    "items": [{"sku_id": "k1", "title": "真丝四件套", "qty": 1, "price_fen": 59900}],
    "total_fen": 59900, "kind": "normal", "created_at": "2026-11-11T09:05:00+08:00",
}


def paid(i, shop="s1"):
    return {"topic": "order.paid", "event_id": f"p-{i}", "shop_id": shop,
            "order_id": str(i), "at": "2026-11-11T10:00:00+08:00"}


def envelope_event_id(env):
    """The event_id (field 1) of an envelope's bytes."""
    i = 0
    while i < len(env):
        tag, i = read_varint(env, i)
        wt = tag & 7
        if wt == 0:
            _, i = read_varint(env, i)
        elif wt == 2:
            n, i = read_varint(env, i)
            if tag >> 3 == 1:
                return env[i:i + n].decode()
            i += n
        else:
            i += 8 if wt == 1 else 4
    return None


def lines(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


class BrokerTest(unittest.TestCase):
    def setUp(self):
        self.stack = Stack().start()
        self.ctx = zmq.Context()

    def tearDown(self):
        self.ctx.destroy(linger=0)
        self.stack.stop()

    def sock(self, kind, endpoint, **opts):
        s = self.ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 1000)
        s.setsockopt(zmq.RCVTIMEO, 5000)
        for k, v in opts.items():
            s.setsockopt(getattr(zmq, k), v)
        s.connect(self.stack.endpoint(endpoint))
        return s

    def confirm(self, frames):
        d = self.sock(zmq.DEALER, "confirm")
        d.send_multipart(frames)
        reply = d.recv_multipart()
        d.close()
        return [f.decode() for f in reply]

    # ------------------------------------------------------------------ happy path
    def test_publish_then_tail_shows_every_field_with_seq(self):
        tail = self.stack.tail("order.", "--count", "1", "--idle-exit", "10")
        time.sleep(0.5)  # let the subscription reach the broker
        r = self.stack.pub([ORDER])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout.strip(), r"^ok \d+$")
        seq = int(r.stdout.split()[1])
        out, err = tail.communicate(timeout=15)
        ev = lines(out)
        self.assertEqual(len(ev), 1, err)
        got = ev[0]
        self.assertEqual(got["seq"], seq)
        for k, v in ORDER.items():
            self.assertEqual(got[k], v, k)
        self.assertIn("published_at", got)
        self.assertIn("occurred_at", got)

    def test_tail_from_seq_replays_the_journal_then_goes_live(self):
        r = self.stack.pub([paid(i) for i in range(1, 6)])
        self.assertEqual(r.returncode, 0, r.stderr)
        seqs = [int(l.split()[1]) for l in r.stdout.split("\n") if l]
        tail = self.stack.tail("order.", "--from-seq", str(seqs[2]), "--count", "5",
                               "--idle-exit", "10")
        time.sleep(1.0)
        r2 = self.stack.pub([paid(i) for i in range(6, 8)])
        self.assertEqual(r2.returncode, 0, r2.stderr)
        out, err = tail.communicate(timeout=20)
        got = [e["seq"] for e in lines(out) if e["topic"] == "order.paid"]
        live = [int(l.split()[1]) for l in r2.stdout.split("\n") if l]
        self.assertEqual(got, seqs[2:] + live, err)

    def test_the_journal_in_runs_read_with_the_older_layout(self):
        """An entry is a run of events keyed by its first seq (common/kf_journal.h); a journal
        written one event per entry (fields t, e) before it is read the same: by kefuctl tail
        from any seq, inside a run too, and by a worker catching up. The broker goes on from
        kefu:seq, and finds the last seq in a run when kefu:seq is gone. /stats counts events."""
        r = self.stack.redis()
        for i in (1, 2, 3):  # the older layout
            r.xadd("kefu:journal", {"t": "order.paid",
                                    "e": order_paid_envelope(f"old-{i}", f"old{i}")}, id=f"{i}-0")
        r.set("kefu:seq", 3)
        out = self.stack.pub([paid(i) for i in range(4, 9)])
        self.assertEqual(out.stdout.split(), [w for i in range(4, 9) for w in ("ok", str(i))])
        entries = r.xrange("kefu:journal")
        self.assertEqual([e[0] for e in entries], [b"1-0", b"2-0", b"3-0", b"4-0"])
        self.assertEqual(entries[3][1][b"n"], b"5")
        self.assertEqual([e[0] for e in self.stack.journal()], list(range(1, 9)))

        def tail_from(seq, count):
            t = self.stack.tail("order.", "--from-seq", str(seq), "--count", str(count),
                                "--idle-exit", "5")
            o, err = t.communicate(timeout=20)
            return [(e["seq"], e["order_id"]) for e in lines(o)], err
        got, err = tail_from(2, 7)
        self.assertEqual(got, [(2, "old2"), (3, "old3")] + [(i, str(i)) for i in range(4, 9)],
                         err)
        got, err = tail_from(6, 3)  # inside the run
        self.assertEqual(got, [(6, "6"), (7, "7"), (8, "8")], err)
        self.assertNotIn("no longer kept", err)

        r.delete("kefu:seq")
        self.assertEqual(self.stack.pub([paid(9)]).stdout.split(), ["ok", "9"])
        wait_for(lambda: self.stack.stats()["journal"]["length"] == 9,
                 what="/stats journal length 9 (events, not entries)")

        self.stack.start_worker("kefu-pay-reminder")
        self.stack.wait_applied()
        early = [o for o in ["old1", "old2", "old3"] + [str(i) for i in range(4, 10)]
                 if r.exists(f"kefu:early:pay-reminder:kefu:order:{{s1}}:{o}")]
        self.assertEqual(len(early), 9, early)  # every payment waits for its order

    def test_a_damaged_journal_entry_is_counted_and_passed(self):
        """An entry that is not one (its count damaged), here the journal's last: a worker
        catching up counts its seq as gone (journal_gone), goes live after it (it used to
        read it again and again), and applies what comes next."""
        r = self.stack.redis()
        for i in (1, 2):
            r.xadd("kefu:journal", {"t": "order.paid",
                                    "e": order_paid_envelope(f"d-{i}", f"d{i}")}, id=f"{i}-0")
        r.xadd("kefu:journal", {"n": "many", "b": b"\x00junk"}, id="3-0")
        r.set("kefu:seq", 3)
        self.stack.start_worker("kefu-pay-reminder")
        wait_for(lambda: "live from seq 4" in self.stack.log("kefu-pay-reminder"),
                 what="the worker live after the damaged entry")
        self.assertEqual(self.stack.pub([paid(4)]).stdout.split(), ["ok", "4"])
        self.stack.wait_applied()
        for o in ("d1", "d2", "4"):
            self.assertTrue(r.exists(f"kefu:early:pay-reminder:kefu:order:{{s1}}:{o}"), o)
        self.assertEqual(r.hget("kefu:stats:worker:pay-reminder", "rejected:journal_gone"), b"1")
        self.assertIn("an entry that is not one (3-0)", self.stack.log("kefu-pay-reminder"))

    def test_same_event_id_twice_is_a_duplicate_forwarded_once(self):
        sub = self.sock(zmq.SUB, "sub", SUBSCRIBE=b"order.paid")
        time.sleep(0.5)
        first = self.stack.pub([paid(1)])
        again = self.stack.pub([paid(1)])
        self.assertEqual(first.returncode, 0)
        self.assertEqual(again.returncode, 0)
        seq = first.stdout.split()[1]
        self.assertEqual(again.stdout.strip(), f"duplicate {seq}")
        sub.recv_multipart()  # the one forwarded copy
        sub.setsockopt(zmq.RCVTIMEO, 1000)
        with self.assertRaises(zmq.Again):
            sub.recv_multipart()
        sub.close()
        self.assertEqual(self.stack.stats()["topics"]["order.paid"]["duplicates"], 1)
        self.assertEqual(len(self.stack.journal()), 1)

    def test_raw_dealer_and_req_confirmed_publish(self):
        env = order_paid_envelope("raw-1", "42")
        reply = self.confirm([b"order.paid", env])
        self.assertRegex(reply[0], r"^ok \d+ raw-1$")
        req = self.sock(zmq.REQ, "confirm")
        req.send_multipart([b"order.paid", order_paid_envelope("raw-2", "43")])
        self.assertRegex(req.recv().decode(), r"^ok \d+ raw-2$")
        req.close()

    def test_answers_name_their_event_so_a_pipelining_client_matches_them(self):
        """DESIGN §3.1: ok / duplicate / rejected answers name their event_id, also for an
        event that fails validation (its id read from the bytes), and "-" when none can be
        read; pipelined requests are answered in arrival order."""
        d = self.sock(zmq.DEALER, "confirm")
        d.send_multipart([b"order.paid", order_paid_envelope("pipe-1", "1")])
        d.send_multipart([b"order.paid", order_paid_envelope("pipe-2", "")])  # no order_id
        d.send_multipart([b"order.paid", order_paid_envelope("pipe-1", "1")])
        d.send_multipart([b"order.paid", b"\xff\xff"])
        d.send_multipart([b"order.paid", order_paid_envelope("pipe 3", "3")])  # a space in it
        got = [d.recv().decode() for _ in range(5)]
        d.close()
        seq = int(got[0].split()[1])
        self.assertEqual(got, [f"ok {seq} pipe-1",
                               "rejected missing_field pipe-2: missing field 'order_id'",
                               f"duplicate {seq} pipe-1", got[3], f"ok {seq + 1} pipe 3"])
        self.assertTrue(got[3].startswith("rejected malformed -: "), got[3])
        code, text = self.stack.http("POST", "/v1/events/order.paid",
                                     json.dumps({"event_id": "h-1", "shop_id": "s1"}))
        self.assertEqual((code, json.loads(text)),
                         (400, {"result": "rejected", "reason": "missing_field",
                                "event_id": "h-1", "error": "missing field 'order_id'"}))

    def test_kefuctl_pub_across_broker_restarts_journals_each_event_once_in_order(self):
        """A broker SIGKILLed twice while kefuctl pub streams 20 000 events: kefuctl sends
        the unanswered events again (same ids, in order, on a new connection), prints one ok
        per event with its seq, and exits 0; the journal holds every event once, in input
        order."""
        n = 20000
        text = "".join(json.dumps(paid(i), ensure_ascii=False) + "\n" for i in range(n))
        inp = os.path.join(self.stack.dir, "in.ndjson")
        with open(inp, "w") as f:
            f.write(text)
        with open(os.path.join(self.stack.dir, "pub.out"), "w+") as fo, \
                open(os.path.join(self.stack.dir, "pub.err"), "w+") as fe:
            p = subprocess.Popen([os.path.join(BIN, "kefuctl"), "-c", self.stack.conf, "pub",
                                  "--file", inp], stdout=fo, stderr=fe)
            for k in range(2):
                floor = (k + 1) * n // 4
                wait_for(lambda: self.stack.journal_seq() >= floor, timeout=30,
                         what=f"{floor} events journaled")
                self.stack.kill("kefu-broker", signal.SIGKILL)
                time.sleep(0.5)
                self.stack.start_broker()
            p.wait(120)
            fo.seek(0)
            fe.seek(0)
            out, err = fo.read(), fe.read()
        self.assertEqual(p.returncode, 0, err[-2000:])
        self.assertIn("lost the connection to the broker", err)
        printed = out.splitlines()
        self.assertEqual(len(printed), n, err[-2000:])
        self.assertTrue(all(l.startswith("ok ") for l in printed), [l for l in printed
                                                                       if not l.startswith("ok ")][:5])
        seqs = [int(l.split()[1]) for l in printed]
        self.assertEqual(seqs, list(range(1, n + 1)), "one seq per event, in input order")
        ids = [envelope_event_id(e[2]) for e in self.stack.journal()]
        self.assertEqual(ids, [f"p-{i}" for i in range(n)])

    def test_kefuctl_pub_waits_for_a_slow_redis(self):
        """Redis paused for 7 s (CLIENT PAUSE) while kefuctl pub publishes: with the default
        --timeout nothing fails, every event is confirmed once."""
        n = 3000
        self.stack.redis().execute_command("CLIENT", "PAUSE", "7000", "WRITE")
        t0 = time.monotonic()
        r = self.stack.pub([paid(i) for i in range(n)])
        self.assertGreater(time.monotonic() - t0, 6.0, "the pause held the journal")
        self.assertEqual(r.returncode, 0, r.stdout[-2000:] + r.stderr[-2000:])
        self.assertEqual(r.stdout.splitlines(), [f"ok {i + 1}" for i in range(n)])

    def test_the_pub_door_counts_what_a_slow_redis_makes_it_drop(self):
        """Redis paused while 60 000 events come in fire-and-forget (the publisher queues without
        limit, so nothing is lost on its side): every event is either journaled or counted as
        dropped, in stats, metrics and kefuctl stat; the broker logs the shedding in two lines and
        confirmed publishing works again once Redis answers."""
        n = 60000
        pub = self.sock(zmq.PUB, "pub", SNDHWM=0)
        time.sleep(0.5)
        self.stack.redis().execute_command("CLIENT", "PAUSE", "3000", "WRITE")
        for i in range(n):
            pub.send_multipart([b"order.paid", order_paid_envelope(f"ff-{i}", str(i))])
        pub.close(linger=-1)
        wait_for(lambda: self.stack.journal_seq() + self.stack.stats()["totals"]["dropped"] == n,
                 timeout=30, what="every event journaled or dropped")
        time.sleep(0.5)
        totals = self.stack.stats()["totals"]
        self.assertEqual(self.stack.journal_seq() + totals["dropped"], n)
        self.assertGreater(totals["dropped"], 0, "the pause made the door shed")
        self.assertGreater(self.stack.journal_seq(), 0)
        self.assertEqual(metric(self.stack.metrics(), "kefu_broker_dropped_total"),
                         totals["dropped"])
        r = self.stack.kefuctl("stat")
        self.assertRegex(r.stdout, rf"dropped {totals['dropped']}\b")
        log = self.stack.log("kefu-broker")
        self.assertEqual(log.count("dropping fire-and-forget events"), 1, log[-3000:])
        self.assertIn(f"dropped {totals['dropped']} fire-and-forget events", log)
        r = self.stack.pub([paid(n + 1)])
        self.assertEqual(r.stdout.strip(), f"ok {n - totals['dropped'] + 1}")

    def test_http_ingest(self):
        body = json.dumps({k: v for k, v in ORDER.items() if k != "topic"}, ensure_ascii=False)
        code, text = self.stack.http("POST", "/v1/events/order.created", body)
        self.assertEqual(code, 200, text)
        res = json.loads(text)
        self.assertEqual(res["result"], "ok")
        code, text = self.stack.http("POST", "/v1/events/order.created", body)
        self.assertEqual(json.loads(text), {"result": "duplicate", "seq": res["seq"],
                                            "event_id": ORDER["event_id"]})
        code, text = self.stack.http("POST", "/v1/events/order.created", '{"order_id": 5}')
        self.assertEqual(code, 400)
        self.assertEqual(json.loads(text)["reason"], "bad_json")

    # ------------------------------------------------------------------ bad input
    def test_bad_input_is_rejected_counted_and_good_traffic_flows(self):
        pub = self.sock(zmq.PUB, "pub")
        sub = self.sock(zmq.SUB, "sub", SUBSCRIBE=b"order.paid")
        time.sleep(0.5)
        good = 0
        bad = [
            [b"\x00\xff garbage"],                                        # frames
            [b"order.paid", b"\xff\xff\xff\xff\xff"],                       # malformed
            [b"order.paid", order_paid_envelope("t-1", "9")[:-3]],         # truncated
            [b"order.paid", b"x", b"y"],                                   # frames
            [b"no.such.topic", order_paid_envelope("u-1", "9")],           # unknown_topic
            [b"order.paid", order_paid_envelope("big", "9" * 70000)],      # oversized
            [b"order.paid", order_paid_envelope("bad-utf8", b"\xc3\x28")],
        ]
        for round_ in range(20):
            for frames in bad:
                pub.send_multipart(frames)
            pub.send_multipart([b"order.paid", order_paid_envelope(f"g-{round_}", str(round_))])
            good += 1
        code, text = self.stack.http("POST", "/v1/events/order.paid", "{not json")
        self.assertEqual(code, 400)
        # every good event arrives
        got = set()
        while len(got) < good:
            topic, env = sub.recv_multipart()
            got.add(env)
        st = wait_for(lambda: (lambda s: s if s["rejects"]["frames"] >= 40 else None)(
            self.stack.stats()), what="reject counters")
        rej = st["rejects"]
        self.assertEqual(rej["frames"], 40)
        self.assertEqual(rej["malformed"], 40)
        self.assertEqual(rej["unknown_topic"], 20)
        self.assertEqual(rej["oversized"], 20)
        self.assertEqual(rej["invalid_utf8"], 20)
        self.assertEqual(rej["bad_json"], 1)
        self.assertEqual(st["topics"]["order.paid"]["accepted"], good)
        m = self.stack.metrics()
        self.assertEqual(metric(m, "kefu_broker_rejects_total", reason="malformed"), 40)
        self.assertIn("# TYPE kefu_broker_rejects_total counter", m)
        self.assertEqual(metric(m, "kefu_broker_events_accepted_total", topic="order.paid"), good)
        self.assertEqual(self.stack.procs["kefu-broker"].poll(), None)

    def test_confirmed_rejections_name_the_reason(self):
        self.assertEqual(self.confirm([b"order.paid"])[0],
                         "rejected frames -: expected 2 frames [topic][envelope], got 1")
        r = self.confirm([b"order.paid", b"\x0a\xff"])
        self.assertTrue(r[0].startswith("rejected malformed -: "), r)
        r = self.confirm([b"order.paid", order_paid_envelope("m-1", "")])
        self.assertEqual(r[0], "rejected missing_field m-1: missing field 'order_id'")
        r = self.confirm([b"order.created", order_paid_envelope("m-2", "1")])
        self.assertTrue(r[0].startswith("rejected topic_mismatch m-2: "), r)
        r = self.stack.pub([{"topic": "order.created", "event_id": "neg", "shop_id": "s1",
                             "order_id": "1", "buyer": {"buyer_id": "b"}, "total_fen": -5}])
        self.assertEqual(r.returncode, 1)
        self.assertIn("rejected invalid_field", r.stdout + r.stderr)
        r = self.stack.pub([{"topic": "order.created", "event_id": "typo", "shop_id": "s1",
                             "order_id": "1", "totl_fen": 5}])
        self.assertEqual(r.returncode, 1)
        self.assertIn("totl_fen", r.stdout + r.stderr)

    # ------------------------------------------------------------------ faults
    def test_broker_sigkill_restart_continues_the_sequence(self):
        r = self.stack.pub([paid(i) for i in range(1, 101)])
        self.assertEqual(r.returncode, 0, r.stderr)
        last = int(r.stdout.split()[-1])
        self.stack.kill("kefu-broker", signal.SIGKILL)
        self.stack.start_broker()
        r = self.stack.pub([paid(i) for i in range(101, 111)] + [paid(5)])
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.split("\n")
        self.assertEqual(out[0], f"ok {last + 1}")
        self.assertEqual(out[10], "duplicate 5")
        seqs = [e[0] for e in self.stack.journal()]
        self.assertEqual(seqs, list(range(1, last + 11)))

    def test_redis_down_confirmed_publish_fails_then_recovers(self):
        self.assertEqual(self.stack.pub([paid(1)]).returncode, 0)
        self.stack.stop_redis()
        wait_for(lambda: self.stack.healthz() == 503, what="broker to see redis down")
        r = self.stack.pub([paid(2)], "--timeout", "3")  # sent again until the timeout
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^error not confirmed: no answer from the broker .* for 3\.0 s "
                                   r"\(last answer: redis unavailable: event not journaled\)\n$")
        pub = self.sock(zmq.PUB, "pub")
        time.sleep(0.5)
        pub.send_multipart([b"order.paid", order_paid_envelope("ff-1", "1")])
        pub.close()
        wait_for(lambda: self.stack.stats()["totals"]["dropped"] >= 1, what="dropped count")
        self.stack.start_redis()  # AOF brings the journal back
        wait_for(lambda: self.stack.healthz() == 200, timeout=15, what="broker to reconnect")
        r = self.stack.pub([paid(2)])
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stdout.strip(), "ok 2")
        self.assertGreaterEqual(self.stack.stats()["redis"]["reconnects"], 1)

    def test_function_flush_is_survived(self):
        """The journal function gone (FUNCTION FLUSH): loaded again, the step re-sent, nothing
        lost."""
        self.assertEqual(self.stack.pub([paid(1)]).stdout.strip(), "ok 1")
        self.stack.redis().execute_command("FUNCTION", "FLUSH")
        r = self.stack.pub([paid(2), paid(3)])
        self.assertEqual(r.stdout.split(), ["ok", "2", "ok", "3"], r.stderr)

    def test_sigterm_exits_zero_within_5s(self):
        self.stack.pub([paid(i) for i in range(50)])
        t0 = time.time()
        code = self.stack.kill("kefu-broker", signal.SIGTERM)
        self.assertEqual(code, 0)
        self.assertLess(time.time() - t0, 5.0)

    # ------------------------------------------------------------------ operations
    def test_stats_fleet_and_kefuctl_stat(self):
        self.stack.pub([paid(1)])
        st = wait_for(lambda: (lambda s: s if s["fleet"] else None)(self.stack.stats()),
                      what="the broker's own heartbeat in the fleet view")
        me = [f for f in st["fleet"] if f["daemon"] == "kefu-broker"][0]
        self.assertTrue(me["alive"])
        self.assertEqual(st["journal"]["seq"] if st["journal"]["seq"] else 1, 1)
        r = self.stack.kefuctl("stat", "--json", check=True)
        self.assertEqual(json.loads(r.stdout)["daemon"], "kefu-broker")
        r = self.stack.kefuctl("stat", check=True)
        self.assertIn("order.paid", r.stdout)
        self.assertIn("kefu-broker", r.stdout)
        code, page = self.stack.http("GET", "/")
        self.assertEqual(code, 200)
        self.assertIn("<html", page.lower())


# ---------------------------------------------------------------------- campaigns
LAUNCH = 1762833600000  # 2025-11-11T12:00:00+08:00
DAY_MS = 24 * 3600 * 1000


def iso8(ms):
    from datetime import datetime, timedelta, timezone
    return datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=8))).isoformat(
        timespec="milliseconds" if ms % 1000 else "seconds")


class TrimmedJournalTest(unittest.TestCase):
    """A worker down while the journal is trimmed past its checkpoint: on restart it says
    which seqs are gone, counts them (journal_gone, one per event), and applies the rest."""

    def setUp(self):
        self.stack = Stack(extra_conf="[broker]\njournal_maxlen = 1000\n").start()

    def tearDown(self):
        self.stack.stop()

    def test_a_worker_counts_what_was_trimmed_and_applies_the_rest(self):
        s, r = self.stack, self.stack.redis()
        s.start_worker("kefu-pay-reminder")
        s.pub([paid(i) for i in range(1, 11)])
        s.wait_applied()
        self.assertEqual(s.kill("kefu-pay-reminder", signal.SIGTERM), 0)
        ck = [int(r.get(f"kefu:ckpt:pay-reminder:{p}") or 0) for p in range(64)]
        for k in range(6):  # 3 000 more, in steps of 500
            out = s.pub([paid(i) for i in range(11 + 500 * k, 11 + 500 * (k + 1))])
            self.assertEqual(out.returncode, 0, out.stderr)
        kept = s.journal()
        first, head = kept[0][0], kept[-1][0]
        self.assertEqual(head, 3010)
        self.assertGreater(first, min(ck) + 1)  # trimmed past the checkpoint
        self.assertGreaterEqual(len(kept), 1000)
        s.start_worker("kefu-pay-reminder")
        s.wait_applied()
        gone = first - 1 - min(ck)

        def counted():
            me = [f for f in s.stats()["fleet"] if f["daemon"] == "kefu-pay-reminder"
                  and f["alive"]]
            return me and me[0]["errors_by_reason"].get("journal_gone") == gone
        wait_for(counted, what=f"journal_gone = {gone} in the fleet view")
        self.assertEqual(int(r.hget("kefu:stats:worker:pay-reminder", "rejected:journal_gone")),
                         gone)
        self.assertIn(f"journal events {min(ck) + 1}..{first - 1} are gone",
                      s.log("kefu-pay-reminder"))
        # the rest applied: each payment kept until its order comes
        applied = sum(1 for i in range(1, 3011)
                      if r.exists(f"kefu:early:pay-reminder:kefu:order:{{s1}}:{i}"))
        self.assertEqual(applied, 10 + (head - first + 1))


class DoorDedupTest(unittest.TestCase):
    """The door dedup's compact form (kefu:pubid:<window>:<bucket>): within a batch, across a
    window boundary, forgotten only after a whole window, every key with a TTL."""
    WINDOW = 3

    def setUp(self):
        self.stack = Stack(broker_opts=("-o", f"broker.dedup_window_s={self.WINDOW}")).start()

    def tearDown(self):
        self.stack.stop()

    def at_window_start(self):
        """Waits until a window has just begun (at least WINDOW - 1 s of it left)."""
        while time.time() % self.WINDOW > 0.3:
            time.sleep(0.05)

    def test_remembered_for_a_window_across_its_boundary_then_forgotten(self):
        self.at_window_start()
        r = self.stack.pub([paid(1), paid(2), paid(1)])  # one batch, one call
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout.split("\n")
        s1 = out[0].split()[1]
        self.assertRegex(out[1], r"^ok \d+$")
        self.assertEqual(out[2], f"duplicate {s1}")
        time.sleep(self.WINDOW)  # the next window: found in the one before
        r = self.stack.pub([paid(1), paid(3)])
        self.assertEqual(r.stdout.split("\n")[0], f"duplicate {s1}", r.stdout)
        self.assertRegex(r.stdout.split("\n")[1], r"^ok \d+$")
        red = self.stack.redis()
        keys = list(red.scan_iter("kefu:pubid:*", count=1000))
        self.assertTrue(keys)
        for k in keys:
            self.assertRegex(k.decode(), r"^kefu:pubid:\d+:\d+$")
            ttl = red.ttl(k)
            self.assertTrue(0 < ttl <= 2 * self.WINDOW + 60, (k, ttl))
        time.sleep(self.WINDOW + 0.5)  # two windows after: journaled again, a new seq
        r = self.stack.pub([paid(1)])
        self.assertRegex(r.stdout.strip(), r"^ok \d+$")
        self.assertGreater(int(r.stdout.split()[1]), int(s1))
        st = self.stack.stats()["topics"]["order.paid"]
        self.assertEqual((st["accepted"], st["duplicates"]), (4, 2))


    @staticmethod
    def bucket(event_id):
        """kf_fingerprint's first two bytes (FNV-1a 64, big-endian) modulo the 1024 buckets."""
        h = 14695981039346656037
        for c in event_id.encode():
            h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
        return ((h >> 56) * 256 + ((h >> 48) & 0xFF)) % 1024

    def test_a_bucket_gets_its_ttl_when_its_first_event_was_seen_the_window_before(self):
        """A bucket's first event of a window found in the window before (its key not made
        then): the next new event of the bucket, in another step, still gives the key its
        TTL (no key of the door dedup lives without one)."""
        b = self.bucket("p-1")
        other = next(i for i in range(2, 100000) if self.bucket(f"p-{i}") == b)
        self.at_window_start()
        self.assertRegex(self.stack.pub([paid(1)]).stdout.strip(), r"^ok \d+$")
        time.sleep(self.WINDOW)  # the next window
        r = self.stack.pub([paid(1)])  # found in the window before: the bucket's key not made
        self.assertRegex(r.stdout.strip(), r"^duplicate \d+$")
        r = self.stack.pub([paid(other)])  # a new one in the same bucket: creates the key
        self.assertRegex(r.stdout.strip(), r"^ok \d+$")
        red = self.stack.redis()
        keys = [k for k in red.scan_iter(f"kefu:pubid:*:{b}", count=1000)]
        self.assertEqual(len(keys), 2, keys)
        for k in keys:
            ttl = red.ttl(k)
            self.assertTrue(0 < ttl <= 2 * self.WINDOW + 60, (k, ttl))


class CampaignStatsTest(unittest.TestCase):
    """The broker reads kefu:crm:campaigns and the kefu:crm:camp:{shop}:<id> hashes that
    kefu-crm-care keeps (workers/crm-care/README.md "Campaigns") into /stats and /metrics."""

    def setUp(self):
        self.stack = Stack().start()
        self.r = self.stack.redis()

    def tearDown(self):
        self.stack.stop()

    def launch(self, shop, cid, at, **fields):
        """What the worker writes when it launches campaign cid at ms `at` (the hash, then the
        list), with fields (progress) on top."""
        h = {"event": f"ev-{cid}", "shop": shop, "name": cid, "segment": "at_risk", "tags": "",
             "level": "", "channel": "sms", "start": at, "end": at + DAY_MS,
             "launched": at, "state": "scheduled", "parts_done": 0, "matched": 0,
             "sent": 0, "blocked": 0, "expired": 0}
        h.update(fields)
        self.r.hset(f"kefu:crm:camp:{{{shop}}}:{cid}", mapping=h)
        self.r.zadd("kefu:crm:campaigns", {f"{shop}:{cid}": at})

    def campaigns(self, n, timeout=10):
        """/stats once its campaigns list has n entries."""
        return wait_for(lambda: (lambda s: s if len(s["campaigns"]) == n else None)(
            self.stack.stats()), timeout=timeout, what=f"{n} campaigns in /stats")["campaigns"]

    def test_campaigns_in_stats_metrics_kefuctl_stat_and_the_dashboard(self):
        st = self.stack.stats()
        self.assertEqual(st["campaigns"], [])
        self.assertNotIn("campaigns:", self.stack.kefuctl("stat", check=True).stdout)
        self.launch("s1", "c1", LAUNCH, name="老客回购", state="sending", parts_done=16,
                    matched=120, sent=80, blocked=7, expired=0,
                    **{"blocked:cap_daily": 5, "blocked:optout": 2})
        self.launch("s2", "spring", LAUNCH + 60000, channel="im", segment="", state="done",
                    parts_done=64, matched=3, sent=3)
        camps = self.campaigns(2)
        self.assertEqual([(c["shop_id"], c["campaign_id"]) for c in camps],
                         [("s2", "spring"), ("s1", "c1")])  # newest first
        self.assertEqual(camps[1], {
            "shop_id": "s1", "campaign_id": "c1", "name": "老客回购", "state": "sending",
            "segment": "at_risk", "channel": "sms", "start": iso8(LAUNCH),
            "end": iso8(LAUNCH + DAY_MS), "launched": iso8(LAUNCH), "parts_done": 16,
            "matched": 120, "sent": 80, "blocked": 7, "expired": 0,
            "blocked_by": {"cap_daily": 5, "optout": 2}})
        self.assertEqual(camps[1]["start"], "2025-11-11T12:00:00+08:00")
        self.assertEqual(camps[0]["segment"], "")
        # progress shows up within a refresh or two
        self.r.hincrby("kefu:crm:camp:{s1}:c1", "sent", 20)
        self.r.hset("kefu:crm:camp:{s1}:c1", mapping={"parts_done": 64, "state": "done"})
        wait_for(lambda: self.stack.stats()["campaigns"][1]["sent"] == 100, what="progress")
        self.assertEqual(self.stack.stats()["campaigns"][1]["state"], "done")
        m = self.stack.metrics()
        self.assertEqual(metric(m, "kefu_campaign_sent_total", shop="s1", campaign="c1"), 100)
        self.assertEqual(metric(m, "kefu_campaign_matched_total", shop="s1", campaign="c1"), 120)
        self.assertEqual(metric(m, "kefu_campaign_blocked_total", shop="s1", campaign="c1"), 7)
        self.assertEqual(metric(m, "kefu_campaign_done", shop="s1", campaign="c1"), 1)
        self.assertEqual(metric(m, "kefu_campaign_sent_total", shop="s2", campaign="spring"), 3)
        self.assertIn("# TYPE kefu_campaign_sent_total counter", m)
        self.assertIn("# TYPE kefu_campaign_done gauge", m)
        # kefuctl stat: a campaigns table; --json passes the document through
        out = self.stack.kefuctl("stat", check=True).stdout
        table = out[out.index("\ncampaigns:\n") + 12:].rstrip("\n").split("\n")
        self.assertEqual(table[0].split(), ["SHOP", "CAMPAIGN", "NAME", "STATE", "CHANNEL",
                                            "PARTS", "MATCHED", "SENT", "BLOCKED", "EXPIRED",
                                            "BLOCKED_BY"])
        self.assertEqual(table[1].split(), ["s2", "spring", "spring", "done", "im", "64/64",
                                            "3", "3", "0", "0", "-"])
        self.assertEqual(table[2].split(), ["s1", "c1", "老客回购", "done", "sms", "64/64",
                                            "120", "100", "7", "0", "cap_daily=5", "optout=2"])
        doc = json.loads(self.stack.kefuctl("stat", "--json", check=True).stdout)
        self.assertEqual([c["campaign_id"] for c in doc["campaigns"]], ["spring", "c1"])
        code, page = self.stack.http("GET", "/")
        self.assertEqual(code, 200)
        self.assertIn('id="campaigns"', page)
        self.assertIn("parts_done / 64", page)

    def test_only_the_newest_20_newest_first(self):
        for i in range(25):
            self.launch("s1", f"c{i:02d}", LAUNCH + i * 1000, sent=i)
        camps = self.campaigns(20)
        self.assertEqual([c["campaign_id"] for c in camps], [f"c{i:02d}" for i in range(24, 4, -1)])
        self.assertEqual(camps[0]["sent"], 24)
        self.assertIsNone(metric(self.stack.metrics(), "kefu_campaign_sent_total", shop="s1",
                                 campaign="c04"))

    def test_malformed_entries_are_left_out_or_zero_and_the_broker_keeps_going(self):
        self.launch("s1", "good", LAUNCH, sent=5)
        self.launch("s1", "nums", LAUNCH + 1, sent="lots", matched="-3", parts_done="1e3",
                    start="soon", end="", launched="x", **{"blocked:": 9, "blocked:optout": "y"})
        self.launch("s1", "bytes", LAUNCH + 2, name=b"\xff\xfe\x01bad", state="sending")
        self.r.zadd("kefu:crm:campaigns", {"nocolon": LAUNCH + 3, ":c": LAUNCH + 4,
                                           "s1:": LAUNCH + 5, "s1:gone": LAUNCH + 6,
                                           "s1:str": LAUNCH + 7})
        self.r.set("kefu:crm:camp:{s1}:str", "not a hash")
        camps = self.campaigns(3)
        self.assertEqual([c["campaign_id"] for c in camps], ["bytes", "nums", "good"])
        nums = camps[1]
        self.assertEqual((nums["sent"], nums["matched"], nums["parts_done"]), (0, 0, 0))
        self.assertEqual((nums["start"], nums["end"]), (None, None))
        self.assertEqual(nums["launched"], iso8(LAUNCH + 1))  # the list's score stands in
        self.assertEqual(nums["blocked_by"], {"optout": 0})
        self.assertEqual(camps[0]["name"], "???bad")
        self.assertEqual(camps[2]["sent"], 5)
        m = self.stack.metrics()
        self.assertEqual(metric(m, "kefu_campaign_sent_total", shop="s1", campaign="nums"), 0)
        self.assertIsNone(metric(m, "kefu_campaign_sent_total", shop="s1", campaign="gone"))
        r = self.stack.kefuctl("stat", check=True)
        self.assertIn("???bad", r.stdout)
        # the list itself of another type: no campaigns, nothing else changes
        self.r.delete("kefu:crm:campaigns")
        self.r.set("kefu:crm:campaigns", "not a zset")
        self.campaigns(0)
        self.assertEqual(self.stack.healthz(), 200)
        self.assertIsNone(self.stack.procs["kefu-broker"].poll())
        self.assertEqual(self.stack.pub([paid(1)]).returncode, 0)

    def test_redis_down_no_campaigns_broker_keeps_serving_and_recovers(self):
        self.launch("s1", "c1", LAUNCH, sent=4)
        self.campaigns(1)
        self.stack.stop_redis()
        wait_for(lambda: self.stack.healthz() == 503, what="broker to see redis down")
        st = self.stack.stats()
        self.assertEqual(st["campaigns"], [])
        self.assertFalse(st["redis"]["connected"])
        m = self.stack.metrics()
        self.assertIn("# TYPE kefu_campaign_sent_total counter", m)
        self.assertIsNone(metric(m, "kefu_campaign_sent_total", shop="s1", campaign="c1"))
        r = self.stack.kefuctl("stat", check=True)
        self.assertNotIn("campaigns:", r.stdout)
        time.sleep(1.5)  # a few refresh rounds with Redis gone
        self.assertIsNone(self.stack.procs["kefu-broker"].poll())
        self.stack.start_redis()  # AOF brings the campaign back
        wait_for(lambda: self.stack.healthz() == 200, timeout=15, what="broker to reconnect")
        self.assertEqual(self.campaigns(1)[0]["sent"], 4)


# ---------------------------------------------------------------------- delivery (kefu-dispatch)
BOUNDS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]  # kefu-dispatch's
COUNTS = [10, 40, 30, 10, 5, 3, 1, 0, 0, 0, 0, 0, 1]  # per bucket, the last one +Inf: 100 in all
CUMULATIVE = [10, 50, 80, 90, 95, 98, 99, 99, 99, 99, 99, 99]
CLASSES = ["2xx", "3xx", "4xx", "429", "5xx", "timeout", "connect", "other"]


def dstats(**over):
    """A DispatchStats as kefu-dispatch sends it (docs/dispatch.md "Observability")."""
    d = {"delivered": 90,
         "attempts": [{"reason": c, "n": n} for c, n in zip(CLASSES, [90, 0, 1, 2, 5, 2, 0, 0])],
         "outcomes": [{"reason": o, "n": n} for o, n in
                      zip(["dead", "optout", "stale", "no_endpoint", "disabled"], [4, 1, 0, 0, 0])],
         "latency_bounds_ms": BOUNDS, "latency_counts": COUNTS, "latency_sum_ms": 4321,
         "queued": 7, "inflight": 2, "waiting": 3, "dead": 4, "endpoints_total": 9,
         "oldest_ms": 12345,
         "endpoints": [
             {"shop_id": "s1", "url": "http://hooks.example/gone", "state": "disabled",
              "queued": 0, "inflight": 0, "last_status": 410, "last_ok_at": LAUNCH_OK,
              "delivered": 12, "failed": 1},
             {"shop_id": "s2", "url": "http://hooks.example/slow", "state": "failing",
              "queued": 6, "inflight": 2, "last_status": 0, "last_error": "timeout",
              "delivered": 0, "failed": 5},
             {"shop_id": "s3", "url": "http://hooks.example/busy", "state": "paused",
              "queued": 1, "last_status": 429, "delivered": 3, "failed": 2},
             {"shop_id": "s4", "url": 'http://hooks.example/a"b', "state": "ok",
              "last_status": 200, "last_ok_at": LAUNCH_OK, "delivered": 70},
             {"shop_id": "s5", "url": "https://hooks.example/ok", "state": "ok",
              "last_status": 204, "delivered": 5}]}
    d.update(over)
    return d


LAUNCH_OK = 1762833600000  # 2025-11-11T12:00:00+08:00

# The dashboard's script against one /stats document, with a stand-in for the DOM: prints
# what the page put into each element (by id; tables as "<id> tbody").
DASHBOARD_JS = r"""
const fs = require("fs");
const html = fs.readFileSync(process.argv[2], "utf8");
const stats = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
const script = html.slice(html.indexOf("<script>") + 8, html.lastIndexOf("</script>"));
const els = {};
const ctx = new Proxy({}, {get: () => () => {}, set: () => true});
const el = id => els[id] || (els[id] = {innerHTML: "", textContent: "", width: 800, height: 180,
                                       getContext: () => ctx});
global.document = {getElementById: el, querySelector: sel => el(sel.replace(/^#/, ""))};
global.fetch = async () => ({json: async () => stats});
global.setInterval = () => 0;
new Function(script)();
setTimeout(() => {
  const out = {};
  for (const [k, v] of Object.entries(els)) out[k] = v.innerHTML || v.textContent;
  console.log(JSON.stringify(out));
}, 100);
"""


class DispatchStatsTest(unittest.TestCase):
    """kefu-dispatch's heartbeats carry DispatchStats; the broker shows them in /stats
    ("dispatch"), /metrics (kefu_dispatch_*), kefuctl stat and the dashboard."""

    def setUp(self):
        # beats every second: a synthetic heartbeat stays alive for 3 s (3 missed beats)
        self.stack = Stack(broker_opts=("-o", "log.heartbeat_ms=1000")).start()

    def tearDown(self):
        self.stack.stop()

    def beat(self, dispatch, instance="0", daemon="kefu-dispatch", pid=4100):
        hb = {"topic": "sys.heartbeat", "daemon": daemon, "instance": instance, "pid": pid,
              "processed": 90, "lag": 7}
        if dispatch is not None:
            hb["dispatch"] = dispatch
        r = self.stack.pub([hb])
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok 0"), r.stderr)

    def dispatch_block(self):
        """The lines of kefuctl stat from "dispatch:" to the next blank line."""
        out = self.stack.kefuctl("stat", check=True).stdout
        self.assertIn("\ndispatch:", out)
        return out[out.index("\ndispatch:") + 1:].split("\n\n")[0].rstrip("\n").split("\n")

    def test_dispatch_in_stats_metrics_kefuctl_stat_and_the_dashboard(self):
        self.assertIsNone(self.stack.stats()["dispatch"])
        self.assertEqual(self.dispatch_block(), ["dispatch: not running"])
        m = self.stack.metrics()
        self.assertIn("# TYPE kefu_dispatch_attempt_duration_ms histogram", m)
        self.assertIsNone(metric(m, "kefu_dispatch_delivered_total"))
        self.assertEqual(metric(m, "kefu_dispatch_instances"), 0)
        self.beat(dstats())
        d = self.stack.stats()["dispatch"]
        self.assertEqual({k: v for k, v in d.items() if k != "endpoints"}, {
            "delivered": 90,
            "attempts": {"2xx": 90, "3xx": 0, "4xx": 1, "429": 2, "5xx": 5, "timeout": 2,
                         "connect": 0, "other": 0},
            "outcomes": {"dead": 4, "optout": 1, "stale": 0, "no_endpoint": 0, "disabled": 0},
            "queued": 7, "inflight": 2, "waiting": 3, "dead": 4, "oldest_ms": 12345,
            "endpoints_total": 9,
            "latency_ms": {"p50": 10, "p99": 500, "sum": 4321, "count": 100},
            "instances": 1})
        self.assertEqual(len(d["endpoints"]), 5)
        self.assertEqual(d["endpoints"][0], {
            "shop_id": "s1", "url": "http://hooks.example/gone", "state": "disabled",
            "queued": 0, "inflight": 0, "last_status": 410, "last_error": None,
            "last_ok_at": "2025-11-11T12:00:00+08:00", "delivered": 12, "failed": 1})
        self.assertEqual(d["endpoints"][1]["last_error"], "timeout")
        self.assertIsNone(d["endpoints"][1]["last_ok_at"])  # never delivered
        self.assertEqual([e["url"] for e in d["endpoints"]][3], 'http://hooks.example/a"b')
        self.check_metrics(self.stack.metrics())
        self.assertEqual(self.dispatch_block(), [
            "dispatch: delivered 90  queued 7  in flight 2  waiting 3  dead 4  oldest 12.3s"
            "  p50 10 ms p99 500 ms",
            "  attempts: 2xx=90 4xx=1 429=2 5xx=5 timeout=2",
            "  outcomes: dead=4 optout=1",
            "  endpoint s1 http://hooks.example/gone disabled (410)",
            "  endpoint s2 http://hooks.example/slow failing: 5 failed, last timeout, 6 queued",
            "  endpoint s3 http://hooks.example/busy paused: 2 failed, last 429, 1 queued",
            "  endpoints: 2 ok (5 of 9 shown)"])
        doc = json.loads(self.stack.kefuctl("stat", "--json", check=True).stdout)
        self.assertEqual(doc["dispatch"]["delivered"], 90)
        self.assertEqual(doc["dispatch"]["endpoints"][0]["state"], "disabled")
        code, page = self.stack.http("GET", "/")
        self.assertEqual(code, 200)
        self.assertIn("<h2>Delivery</h2>", page)
        self.assertIn('id="endpoints"', page)
        self.assertIn("delivery(s.dispatch)", page)

    def check_metrics(self, m):
        self.assertIn("# TYPE kefu_dispatch_delivered_total counter", m)
        self.assertIn("# TYPE kefu_dispatch_attempts_total counter", m)
        self.assertIn("# TYPE kefu_dispatch_outcomes_total counter", m)
        self.assertIn("# TYPE kefu_dispatch_queued gauge", m)
        self.assertEqual(metric(m, "kefu_dispatch_delivered_total"), 90)
        self.assertEqual(metric(m, "kefu_dispatch_attempts_total", **{"class": "5xx"}), 5)
        self.assertEqual(metric(m, "kefu_dispatch_attempts_total", **{"class": "429"}), 2)
        self.assertEqual(metric(m, "kefu_dispatch_outcomes_total", outcome="dead"), 4)
        h = "kefu_dispatch_attempt_duration_ms"
        self.assertIn(f"# TYPE {h} histogram", m)
        self.assertEqual([metric(m, h + "_bucket", le=str(b)) for b in BOUNDS], CUMULATIVE)
        self.assertEqual(metric(m, h + "_bucket", le="+Inf"), 100)
        self.assertEqual(metric(m, h + "_count"), 100)
        self.assertEqual(metric(m, h + "_sum"), 4321)
        for name, v in (("queued", 7), ("inflight", 2), ("waiting", 3), ("dead", 4)):
            self.assertEqual(metric(m, "kefu_dispatch_" + name), v, name)
        self.assertEqual(metric(m, "kefu_dispatch_endpoint_queued", shop="s2",
                                url="http://hooks.example/slow"), 6)
        self.assertEqual(metric(m, "kefu_dispatch_endpoint_up", shop="s1",
                                url="http://hooks.example/gone", state="disabled"), 0)
        self.assertEqual(metric(m, "kefu_dispatch_endpoint_up", shop="s2",
                                url="http://hooks.example/slow", state="failing"), 1)
        self.assertEqual(metric(m, "kefu_dispatch_endpoint_up", shop="s4",
                                url='http://hooks.example/a\\"b', state="ok"), 1)

    @unittest.skipUnless(shutil.which("node"), "node is not installed")
    def test_dashboard_renders_delivery(self):
        self.beat(dstats())
        code, page = self.stack.http("GET", "/")
        self.assertEqual(code, 200)
        d = tempfile.mkdtemp(prefix="kefu-dash-")
        try:
            out = {}
            for name, text in (("page.html", page), ("stats.json", json.dumps(self.stack.stats())),
                               ("run.js", DASHBOARD_JS)):
                out[name] = os.path.join(d, name)
                with open(out[name], "w") as f:
                    f.write(text)
            r = subprocess.run(["node", out["run.js"], out["page.html"], out["stats.json"]],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            els = json.loads(r.stdout)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        kpis = els["dispatch-kpis"]
        for value, label in (("90", "delivered"), ("7", "queued"), ("2", "in flight"),
                             ("3", "waiting"), ("4", "dead"), ("10 ms", "p50"), ("500 ms", "p99")):
            self.assertIn(f"<b>{value}</b><span>{label}</span>", kpis)
        self.assertIn("2xx=90 4xx=1 429=2 5xx=5 timeout=2", els["dispatch-attempts"])
        rows = els["endpoints tbody"].split("</tr>")
        self.assertTrue(rows[0].startswith('<tr class="disabled"><td>s1</td>'), rows[0])
        self.assertIn(">410<", rows[0])
        self.assertIn(">timeout<", rows[1])
        self.assertIn("http://hooks.example/a&quot;b", rows[3])
        self.assertNotIn("unreachable", els["status"])  # the page's tick ran to its end
        self.assertIn("redis connected", els["status"])

    def test_instances_are_summed_and_dead_ones_drop_out(self):
        other = dstats(delivered=10, queued=1, inflight=0, waiting=1, dead=4, oldest_ms=500,
                       endpoints_total=1, latency_counts=[0] * 12 + [2], latency_sum_ms=70000,
                       attempts=[{"reason": "2xx", "n": 10}, {"reason": "timeout", "n": 2}],
                       outcomes=[],
                       endpoints=[{"shop_id": "s2", "url": "http://hooks.example/slow",
                                   "state": "failing", "queued": 1, "failed": 2}])
        self.beat(dstats(), instance="0")
        self.beat(other, instance="1", pid=4101)
        d = self.stack.stats()["dispatch"]
        self.assertEqual(d["instances"], 2)
        self.assertEqual((d["delivered"], d["queued"], d["inflight"], d["waiting"]),
                         (100, 8, 2, 4))
        self.assertEqual(d["dead"], 4)  # one kefu:dead for all: not counted twice
        self.assertEqual(d["oldest_ms"], 12345)
        self.assertEqual(d["endpoints_total"], 10)
        self.assertEqual((d["attempts"]["2xx"], d["attempts"]["timeout"]), (100, 4))
        self.assertEqual(d["latency_ms"], {"p50": 25, "p99": 30000, "sum": 74321, "count": 102})
        self.assertEqual(len(d["endpoints"]), 6)
        m = self.stack.metrics()
        self.assertEqual(metric(m, "kefu_dispatch_attempt_duration_ms_bucket", le="+Inf"), 102)
        self.assertEqual(metric(m, "kefu_dispatch_attempt_duration_ms_bucket", le="30000"), 99)
        # the same endpoint from both: one sample, the queues summed
        self.assertEqual(m.count('kefu_dispatch_endpoint_queued{shop="s2",'
                                 'url="http://hooks.example/slow"}'), 1)
        self.assertEqual(metric(m, "kefu_dispatch_endpoint_queued", shop="s2",
                                url="http://hooks.example/slow"), 7)
        self.assertIn("(2 instances)", self.dispatch_block()[0])

        # instance 1 stops beating: after 3 missed beats only instance 0 counts
        def one_left():
            self.beat(dstats(), instance="0")
            return self.stack.stats()["dispatch"]["instances"] == 1
        wait_for(one_left, timeout=10, interval=0.5, what="instance 1 to drop out")
        d = self.stack.stats()["dispatch"]
        self.assertEqual((d["delivered"], d["latency_ms"]["count"], len(d["endpoints"])),
                         (90, 100, 5))
        # and then none: null, "not running", no samples
        wait_for(lambda: self.stack.stats()["dispatch"] is None, timeout=10,
                 what="the last instance to drop out")
        self.assertEqual(self.dispatch_block(), ["dispatch: not running"])
        m = self.stack.metrics()
        self.assertIsNone(metric(m, "kefu_dispatch_delivered_total"))
        self.assertIsNone(metric(m, "kefu_dispatch_attempt_duration_ms_count"))
        self.assertEqual(metric(m, "kefu_dispatch_instances"), 0)

    def test_bounded_and_checked(self):
        eps = [{"shop_id": f"s{i}", "url": f"http://hooks.example/{i}", "state": "failing",
                "queued": 1} for i in range(80)]
        self.beat(dstats(endpoints=eps, endpoints_total=80,
                         latency_counts=COUNTS[:-1]))  # no +Inf count: not a histogram
        d = self.stack.stats()["dispatch"]
        self.assertEqual(len(d["endpoints"]), 64)
        self.assertEqual(d["endpoints"][63]["shop_id"], "s63")
        self.assertEqual(d["latency_ms"], {"p50": None, "p99": None, "sum": 0, "count": 0})
        self.assertEqual(d["delivered"], 90)  # the rest is kept
        m = self.stack.metrics()
        self.assertIsNone(metric(m, "kefu_dispatch_attempt_duration_ms_bucket", le="+Inf"))
        self.assertIn("# TYPE kefu_dispatch_attempt_duration_ms histogram", m)
        self.assertIn("latency histogram left out", self.stack.log("kefu-broker"))
        self.assertIn("  endpoints: 0 ok (64 of 80 shown)", self.dispatch_block())
        # only kefu-dispatch's stats count; a beat without them clears the old ones
        self.beat(dstats(), daemon="kefu-other", instance="9")
        self.assertEqual(self.stack.stats()["dispatch"]["delivered"], 90)
        self.assertEqual(self.stack.stats()["dispatch"]["instances"], 1)
        self.beat(None)
        self.assertIsNone(self.stack.stats()["dispatch"])
        self.assertIsNone(self.stack.procs["kefu-broker"].poll())


if __name__ == "__main__":
    unittest.main()
