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


# ---------------------------------------------------------------------- campaigns
LAUNCH = 1762833600000  # 2025-11-11T12:00:00+08:00
DAY_MS = 24 * 3600 * 1000


def iso8(ms):
    from datetime import datetime, timedelta, timezone
    return datetime.fromtimestamp(ms / 1000, timezone(timedelta(hours=8))).isoformat(
        timespec="milliseconds" if ms % 1000 else "seconds")


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


if __name__ == "__main__":
    unittest.main()
