"""kefuctl sim: the deterministic shop simulator, its rates, and a real broker accepting it."""
import collections
import json
import os
import re
import subprocess
import unittest
from datetime import datetime, timedelta

from kefu_harness import BIN, Stack

KEFUCTL = os.path.join(BIN, "kefuctl")
START = datetime.fromisoformat("2026-11-10T00:00:00+08:00")


def sim(*args, check=True):
    r = subprocess.run([KEFUCTL, "sim", *args], capture_output=True, timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"kefuctl sim {args} exited {r.returncode}:\n{r.stderr.decode()}")
    return r


def events(*args):
    r = sim(*args)
    return [json.loads(l) for l in r.stdout.decode().splitlines()], r.stderr.decode()


def ts(s):
    return datetime.fromisoformat(s)


class SimOutputTest(unittest.TestCase):
    def test_same_seed_same_bytes_other_seed_other_bytes(self):
        a = sim("--seed", "7", "--orders", "200", "--days", "2", "--shops", "2").stdout
        b = sim("--seed", "7", "--orders", "200", "--days", "2", "--shops", "2").stdout
        c = sim("--seed", "8", "--orders", "200", "--days", "2", "--shops", "2").stdout
        self.assertGreater(len(a), 10000)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)

    def test_lines_parse_in_time_order_with_topics_and_unique_ids(self):
        evs, err = events("--shops", "2", "--orders", "100", "--tick", "7", "--tail", "5")
        ids = [e["event_id"] for e in evs]
        self.assertEqual(len(ids), len(set(ids)))
        times = [ts(e["occurred_at"]) for e in evs]
        self.assertEqual(times, sorted(times))
        for e in evs:
            self.assertIn(e["topic"], {"shop.config", "order.created", "order.paid",
                                       "order.closed", "buyer.optout", "sys.clock"})
            self.assertEqual("shop_id" in e, e["topic"] != "sys.clock", e)
        # per shop: shop.config first, then the history (paid, in the past), then the clock
        first_tick = next(i for i, e in enumerate(evs) if e["topic"] == "sys.clock")
        for shop in ("s1", "s2"):
            mine = [e for e in evs if e.get("shop_id") == shop]
            self.assertEqual(mine[0]["topic"], "shop.config")
            self.assertEqual(mine[0]["utc_offset_minutes"], 480)
            self.assertTrue(mine[0]["name"])
        history = [e for e in evs[:first_tick] if e["topic"] != "shop.config"]
        self.assertTrue(history)
        for e in history:
            self.assertIn(e["topic"], {"order.created", "order.paid"})
            self.assertLess(ts(e["occurred_at"]), START)
            self.assertGreaterEqual(ts(e["occurred_at"]), START - timedelta(days=30))
        # ticks: every 7 min from 00:00, ending exactly at the end of the day + 5 h
        ticks = [ts(e["now"]) for e in evs if e["topic"] == "sys.clock"]
        self.assertEqual(ticks[0], START)
        self.assertEqual(ticks[-1], START + timedelta(hours=29))
        self.assertTrue(all(b - a == timedelta(minutes=7) for a, b in zip(ticks, ticks[1:-1])))
        self.assertEqual(evs[-1]["topic"], "sys.clock")
        self.assertRegex(err, r"^sim: %d events \(\d+ orders, \d+ paid, \d+ closed, %d clock "
                              r"ticks\) for 2 shop\(s\) over 1 day\(s\), seed 1\n$"
                         % (len(evs), len(ticks)))

    def test_no_history_and_tail_zero(self):
        evs, _ = events("--no-history", "--orders", "50", "--tail", "0")
        self.assertEqual(evs[0]["topic"], "shop.config")
        self.assertEqual(evs[1]["topic"], "sys.clock")
        end = START + timedelta(days=1)
        self.assertEqual(ts(evs[-1]["now"]), end)
        self.assertTrue(all(ts(e["occurred_at"]) <= end for e in evs))


class SimRatesTest(unittest.TestCase):
    """--orders 2000 --days 2: the shares of DOMAIN §1 and one terminal event per order."""

    def check_run(self, promo):
        args = ["--orders", "2000", "--days", "2"]
        if promo:
            args += ["--promo-days", "1,2"]
        evs, _ = events(*args)
        created = {e["order_id"]: e for e in evs
                   if e["topic"] == "order.created" and ts(e["created_at"]) >= START}
        terminal = collections.defaultdict(list)
        for e in evs:
            if e["topic"] in ("order.paid", "order.closed"):
                terminal[e["order_id"]].append(e)
        self.assertTrue(3600 <= len(created) <= 4400, len(created))
        for oid, o in created.items():
            self.assertEqual(len(terminal[oid]), 1, oid)
            t = terminal[oid][0]
            self.assertEqual(t["buyer_id"], o["buyer"]["buyer_id"])
            self.assertEqual(o["total_fen"], sum(i["qty"] * i["price_fen"] for i in o["items"]))
            self.assertEqual(o["created_at"], o["occurred_at"])
            self.assertEqual(t["at"], t["occurred_at"])
            self.assertEqual("promotion" in o, promo)
            self.assertRegex(o["buyer"]["phone"], r"^1[358]\d{9}$")
            late = ts(t["at"]) - ts(o["created_at"])
            if t["topic"] == "order.paid":
                self.assertEqual(t["amount_fen"], o["total_fen"])
                self.assertLessEqual(late, timedelta(hours=60))
            elif t["reason"] == "timeout":
                self.assertEqual(late, timedelta(minutes=30) if o["kind"] == "flash_sale"
                                 else timedelta(hours=72))
            else:
                self.assertEqual(t["reason"], "buyer")
        normal = [o for o in created.values() if o["kind"] == "normal"]
        flash = [o for o in created.values() if o["kind"] == "flash_sale"]
        unpaid = sum(terminal[o["order_id"]][0]["topic"] == "order.closed" for o in normal)
        share = unpaid / len(normal)
        lo, hi = (0.10, 0.14) if promo else (0.07, 0.11)
        self.assertTrue(lo <= share <= hi, share)
        self.assertTrue(0.035 <= len(flash) / len(created) <= 0.065, len(flash))
        flash_closed = sum(terminal[o["order_id"]][0]["topic"] == "order.closed" for o in flash)
        self.assertTrue(0.07 <= flash_closed / len(flash) <= 0.25, flash_closed)
        large = sum(o["total_fen"] >= 50000 for o in created.values()) / len(created)
        self.assertTrue(0.04 <= large <= 0.08, large)
        return evs, created

    def test_normal_days(self):
        evs, created = self.check_run(False)
        # repeat buyers: the loyal pool has a paid history and places about 20% of the orders
        history = {e["buyer"]["buyer_id"] for e in evs
                   if e["topic"] == "order.created" and ts(e["created_at"]) < START}
        repeat = sum(o["buyer"]["buyer_id"] in history for o in created.values())
        self.assertTrue(0.15 <= repeat / len(created) <= 0.25, repeat)
        buyers = {o["buyer"]["buyer_id"] for o in created.values()}
        optouts = [e for e in evs if e["topic"] == "buyer.optout"]
        self.assertTrue(0 < len(optouts) <= 0.03 * len(buyers), len(optouts))
        for e in optouts:
            self.assertEqual(e["channels"], ["sms"])
            self.assertIn(e["buyer_id"], buyers)

    def test_promotion_days(self):
        self.check_run(True)


class SimOptionsTest(unittest.TestCase):
    def test_bad_values_are_usage_errors_naming_the_option(self):
        for args, name in [(["--shops", "0"], "--shops"), (["--days", "x"], "--days"),
                           (["--orders", "-5"], "--orders"), (["--seed", "1.5"], "--seed"),
                           (["--start", "2026-02-30"], "--start"), (["--tick", "0"], "--tick"),
                           (["--tail", "-1"], "--tail"), (["--promo-days", "2"], "--promo-days"),
                           (["--promo-days", "1,x"], "--promo-days"), (["--tick"], "--tick"),
                           (["--bogus"], "--bogus"),
                           (["--shops", "100", "--days", "100", "--orders", "501"], "--orders")]:
            r = sim(*args, check=False)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, b"", args)
            self.assertIn(name, r.stderr.decode(), args)


class SimIntoBrokerTest(unittest.TestCase):
    def test_broker_accepts_every_event(self):
        # small, but with every topic and shape: history, promotion, flash sales, closings
        # (the 72 h tail keeps them), opt-outs
        args = ["--shops", "3", "--orders", "100", "--tick", "60", "--promo-days", "1"]
        topics = {e["topic"] for e in events(*args)[0]}
        self.assertEqual(topics, {"shop.config", "order.created", "order.paid", "order.closed",
                                  "buyer.optout", "sys.clock"})
        with Stack() as stack:
            gen = subprocess.Popen([KEFUCTL, "sim", *args],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            pub = subprocess.run([KEFUCTL, "-c", stack.conf, "pub", "--file", "-"],
                                 stdin=gen.stdout, capture_output=True, text=True, timeout=60)
            gen.stdout.close()
            gen_err = gen.stderr.read().decode()
            gen.stderr.close()
            self.assertEqual(gen.wait(10), 0, gen_err)
            self.assertEqual(pub.returncode, 0, pub.stdout[-2000:] + pub.stderr)
            lines = pub.stdout.splitlines()
            n = int(re.match(r"sim: (\d+) events", gen_err).group(1))
            self.assertEqual(len(lines), n)
            self.assertTrue(all(re.fullmatch(r"ok \d+", l) for l in lines), lines[:5])
            st = stack.stats()["topics"]
            self.assertEqual(sum(st[t]["accepted"] for t in topics), n)
            self.assertEqual(sum(st[t]["rejected"] for t in topics), 0)


if __name__ == "__main__":
    unittest.main()
