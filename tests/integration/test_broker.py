"""kefu-broker through its real doors: kefuctl, raw ZeroMQ sockets and HTTP."""
import json
import os
import signal
import time
import unittest

import zmq

from kefu_harness import Stack, metric, order_paid_envelope, wait_for, field_bytes

ORDER = {
    "topic": "order.created", "event_id": "o-1001", "shop_id": "s1", "order_id": "1001",
    "buyer": {"buyer_id": "b9", "nick": "小美", "phone": "13800000000", "city": "杭州"},
    "items": [{"sku_id": "k1", "title": "真丝四件套", "qty": 1, "price_fen": 59900}],
    "total_fen": 59900, "kind": "normal", "created_at": "2026-11-11T09:05:00+08:00",
}


def paid(i, shop="s1"):
    return {"topic": "order.paid", "event_id": f"p-{i}", "shop_id": shop,
            "order_id": str(i), "at": "2026-11-11T10:00:00+08:00"}


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
        self.assertEqual(self.stack.redis().xlen("kefu:journal"), 1)

    def test_raw_dealer_and_req_confirmed_publish(self):
        env = order_paid_envelope("raw-1", "42")
        reply = self.confirm([b"order.paid", env])
        self.assertRegex(reply[0], r"^ok \d+$")
        req = self.sock(zmq.REQ, "confirm")
        req.send_multipart([b"order.paid", order_paid_envelope("raw-2", "43")])
        self.assertRegex(req.recv().decode(), r"^ok \d+$")
        req.close()

    def test_http_ingest(self):
        body = json.dumps({k: v for k, v in ORDER.items() if k != "topic"}, ensure_ascii=False)
        code, text = self.stack.http("POST", "/v1/events/order.created", body)
        self.assertEqual(code, 200, text)
        res = json.loads(text)
        self.assertEqual(res["result"], "ok")
        code, text = self.stack.http("POST", "/v1/events/order.created", body)
        self.assertEqual(json.loads(text), {"result": "duplicate", "seq": res["seq"]})
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
                         "rejected frames: expected 2 frames [topic][envelope], got 1")
        r = self.confirm([b"order.paid", b"\x0a\xff"])
        self.assertTrue(r[0].startswith("rejected malformed"), r)
        r = self.confirm([b"order.paid", order_paid_envelope("m-1", "")])
        self.assertEqual(r[0], "rejected missing_field: missing field 'order_id'")
        r = self.confirm([b"order.created", order_paid_envelope("m-2", "1")])
        self.assertTrue(r[0].startswith("rejected topic_mismatch"), r)
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
        ids = [e[0].decode() for e in self.stack.redis().xrange("kefu:journal")]
        self.assertEqual(ids, [f"{s}-0" for s in range(1, last + 11)])

    def test_redis_down_confirmed_publish_fails_then_recovers(self):
        self.assertEqual(self.stack.pub([paid(1)]).returncode, 0)
        self.stack.stop_redis()
        wait_for(lambda: self.stack.healthz() == 503, what="broker to see redis down")
        r = self.stack.pub([paid(2)], "--timeout", "3")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("error", r.stdout)
        self.assertNotIn("ok", r.stdout)
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

    def test_script_flush_is_survived(self):
        """NOSCRIPT after SCRIPT FLUSH: the journal step is re-sent with EVAL, nothing lost."""
        self.assertEqual(self.stack.pub([paid(1)]).stdout.strip(), "ok 1")
        self.stack.redis().script_flush()
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


if __name__ == "__main__":
    unittest.main()
