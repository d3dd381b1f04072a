"""The workers' and the broker's Redis-side code as Redis Functions, through the real processes:
one library per worker under a versioned name (<group>_<12 hex of its code's SHA-1>), loaded
with FUNCTION LOAD REPLACE, kept by Redis across a restart (AOF), a second version side by
side, and a library that is gone (FUNCTION FLUSH) loaded again without losing an event."""
import hashlib
import json
import re
import signal
import unittest

from kefu_harness import Stack, wait_for

T0 = 1794362400000  # 2026-11-11 10:00 +08:00


def order(oid, at):
    return {"topic": "order.created", "event_id": f"c-{oid}", "shop_id": "fx", "order_id": oid,
            "buyer": {"buyer_id": "b-" + oid, "nick": "n", "phone": "13800000000",
                      "city": "杭州"},
            "items": [{"sku_id": "k1", "title": "毛巾", "qty": 1, "price_fen": 9900}],
            "total_fen": 9900, "kind": "normal", "created_at": at}


class FunctionsTest(unittest.TestCase):
    def setUp(self):
        self.s = Stack(clock="simulated").start()
        self.addCleanup(self.s.stop)
        self.s.start_worker("kefu-pay-reminder", "-o", "log.heartbeat_ms=100")
        self.r = self.s.redis()
        self.pub({"topic": "sys.clock", "event_id": "clk0", "now": T0},
                 {"topic": "shop.config", "event_id": "cfg-fx", "shop_id": "fx",
                  "name": "fx小店"})

    def pub(self, *events):
        r = self.s.pub(list(events))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.s.wait_applied()

    def libraries(self):
        out = {}
        for lib in self.r.execute_command("FUNCTION", "LIST"):
            d = dict(zip(lib[::2], lib[1::2]))
            name = d[b"library_name"].decode()
            out[name] = [dict(zip(f[::2], f[1::2]))[b"name"].decode() for f in d[b"functions"]]
        return out

    def applied(self, oid):
        return self.r.exists(f"kefu:order:{{fx}}:{oid}") == 1

    def test_one_versioned_library_per_step_kept_across_a_restart_and_side_by_side(self):
        libs = self.libraries()
        pr = [n for n in libs if n.startswith("pay_reminder_")]
        self.assertEqual(len(pr), 1, libs)
        self.assertRegex(pr[0], r"^pay_reminder_[0-9a-f]{12}$")
        self.assertEqual(libs[pr[0]], [pr[0]])  # its one function, of the same name
        self.assertTrue(any(re.match(r"^broker_journal_[0-9a-f]{12}$", n) for n in libs), libs)
        # another version of the same worker's library, as during a rolling upgrade
        other = "pay_reminder_000000000000"
        self.r.execute_command(
            "FUNCTION", "LOAD",
            f"#!lua name={other}\nredis.register_function('{other}', "
            "function() return 'the other version' end)")
        self.pub(order("o1", T0))
        self.assertTrue(self.applied("o1"))
        self.assertEqual(self.r.execute_command("FCALL", other, 0), b"the other version")
        # Redis restarts (AOF): the libraries come back with it; the worker goes on
        self.s.stop_redis()
        self.s.start_redis()
        self.assertIn(other, self.libraries())
        self.assertIn(pr[0], self.libraries())
        # (the broker answers "redis unavailable" until it has reconnected: publish again)
        wait_for(lambda: self.s.pub([order("o2", T0 + 1000)]).returncode == 0, timeout=10,
                 what="the broker journaling again")
        wait_for(lambda: self.applied("o2"), timeout=20, what="o2 applied after the restart")
        self.assertTrue(set(self.libraries()) >= {pr[0], other})

    def test_old_versions_unused_for_an_hour_are_deleted_when_a_daemon_connects(self):
        import time
        now = int(time.time() * 1000)
        marks = {"pay_reminder_111111111111": now - 2 * 3600 * 1000,  # unused for 2 h: deleted
                 "pay_reminder_222222222222": now - 60 * 1000,        # in use (a rolling upgrade)
                 "pay_reminder_444444444444": now,                    # a mark without its library
                 "other_555555555555": now - 2 * 3600 * 1000}         # not pay-reminder's
        for lib in ("pay_reminder_111111111111", "pay_reminder_222222222222",
                    "pay_reminder_333333333333", "other_555555555555"):
            self.r.execute_command(
                "FUNCTION", "LOAD",
                f"#!lua name={lib}\nredis.register_function('{lib}', function() return 1 end)")
        self.r.hset("kefu:functions", mapping=marks)
        self.s.kill("kefu-pay-reminder", signal.SIGTERM)
        self.s.start_worker("kefu-pay-reminder")
        mine = [n for n in self.libraries() if re.match(r"^pay_reminder_[0-9a-f]{12}$", n)
                and n not in marks and n != "pay_reminder_333333333333"]
        self.assertEqual(len(mine), 1, self.libraries())
        wait_for(lambda: "pay_reminder_111111111111" not in self.libraries(), timeout=10,
                 what="the version unused for 2 h deleted")
        libs = self.libraries()
        for kept in ("pay_reminder_222222222222", "pay_reminder_333333333333",
                     "other_555555555555", mine[0]):
            self.assertIn(kept, libs)
        m = {k.decode(): int(v) for k, v in self.r.hgetall("kefu:functions").items()}
        self.assertNotIn("pay_reminder_111111111111", m)
        self.assertNotIn("pay_reminder_444444444444", m)  # its library is gone
        self.assertGreaterEqual(m["pay_reminder_333333333333"], now)  # first seen: marked now
        self.assertGreaterEqual(m[mine[0]], now)
        self.assertEqual(m["pay_reminder_222222222222"], now - 60 * 1000)
        self.assertEqual(m["other_555555555555"], now - 2 * 3600 * 1000)
        self.assertTrue(any(re.match(r"^broker_journal_[0-9a-f]{12}$", k) for k in m), m)
        # the worker still works
        self.pub(order("o9", T0 + 5000))
        self.assertTrue(self.applied("o9"))

    def test_a_library_that_is_gone_is_loaded_again_and_no_event_is_lost(self):
        self.pub(order("o1", T0))
        self.r.execute_command("FUNCTION", "FLUSH")
        self.assertEqual(self.libraries(), {})
        self.pub(order("o2", T0 + 1000), order("o3", T0 + 2000))
        self.assertTrue(self.applied("o2") and self.applied("o3"))
        self.assertIn("was gone: loaded again", self.s.log("kefu-pay-reminder"))
        self.assertTrue(any(n.startswith("pay_reminder_") for n in self.libraries()))


    def reminded(self, oid):
        return any(json.loads(f[b"j"]).get("order_id") == oid
                   for _, f in self.r.xrange("kefu:actions"))

    def test_timers_fire_when_their_index_is_gone_or_incomplete(self):
        """kefu:tnext:<group> names the partitions with due timers; a fire without it (lost,
        or timers planned by a version that did not keep it) still finds every timer."""
        self.pub(order("o7", T0))
        self.assertTrue(self.r.zcard("kefu:tnext:pay-reminder") >= 2)  # o7's + complete
        self.r.delete("kefu:tnext:pay-reminder")
        self.pub({"topic": "sys.clock", "event_id": "clk-5h", "now": T0 + 5 * 3600 * 1000})
        wait_for(lambda: self.reminded("o7"), what="o7's reminder without the index")
        self.pub(order("o8", T0 + 5 * 3600 * 1000))
        # as if an older version had planned o8's timer: the index is complete but lacks it
        self.r.zremrangebyscore("kefu:tnext:pay-reminder", "-inf", "(+inf")
        self.assertEqual(self.r.zrange("kefu:tnext:pay-reminder", 0, -1), [b"-"])
        wait_for(lambda: self.r.zcard("kefu:tnext:pay-reminder") >= 2, timeout=5,
                 what="the sync step putting o8's partition back")
        self.pub({"topic": "sys.clock", "event_id": "clk-30h", "now": T0 + 30 * 3600 * 1000})
        wait_for(lambda: self.reminded("o8"), what="o8's reminder")

class BatchStepTest(unittest.TestCase):
    """The runtime's 'evs' step, called directly with crafted records against the library a
    real kefu-review-repair loaded: each event of a batch answers for itself, the checkpoint
    lands at the batch's end, an event_id journaled twice is a duplicate (also across the
    guard's window boundary), and one event's Lua error stays that event's."""

    def setUp(self):
        self.s = Stack().start()
        self.addCleanup(self.s.stop)
        self.s.start_worker("kefu-review-repair")
        self.r = self.s.redis()
        wait_for(lambda: any(n.startswith("review_repair_") for n in self.names()),
                 what="the library")
        self.fn = [n for n in self.names() if n.startswith("review_repair_")][0]
        self.s.kill("kefu-review-repair")  # the test is the only caller

    def names(self):
        out = []
        for lib in self.r.execute_command("FUNCTION", "LIST"):
            d = dict(zip(lib[::2], lib[1::2]))
            out.append(d[b"library_name"].decode())
        return out

    def evs(self, *records, ttl=604800):
        argv = ["evs", "tgroup", "1" * 64, str(ttl), "t", "1000", "100", "0"]
        for seq, evid, part, topic, now, pairs in records:
            fp = hashlib.sha1(evid.encode()).digest()[:8] if evid else b""
            argv += [str(seq), evid, fp, str(part), "", topic, "0", str(now),
                     str(len(pairs) // 2)] + list(pairs)
        return self.r.execute_command("FCALL", self.fn, 0, *argv)

    def test_batch_answers_per_event_and_moves_the_checkpoint_once(self):
        now = 1794362400000
        out = self.evs((10, "e1", 5, "no.handler", now, []),
                       (11, "e2", 5, "no.handler", now, ["x", "1"]),
                       (12, "e1", 6, "no.handler", now, []),   # e1 again under another seq
                       (11, "e3", 5, "no.handler", now, []))   # a seq the partition is past
        self.assertEqual([o[0] for o in out], [b"ignored", b"ignored", b"duplicate", b"seen"])
        self.assertEqual(self.r.get("kefu:ckpt:tgroup:5"), b"11")
        self.assertEqual(self.r.get("kefu:ckpt:tgroup:6"), b"12")
        # the next window still knows e2; a new id is new
        out = self.evs((20, "e2", 7, "no.handler", now + 604800 * 1000, []),
                       (21, "e4", 7, "no.handler", now + 604800 * 1000, []))
        self.assertEqual([o[0] for o in out], [b"duplicate", b"ignored"])
        keys = [k.decode() for k in self.r.scan_iter("kefu:dedup:tgroup:*")]
        self.assertTrue(keys and all(re.match(r"^kefu:dedup:tgroup:\d+:\d+$", k) for k in keys))
        self.assertTrue(all(0 < self.r.ttl(k) <= 2 * 604800 + 60 for k in keys))

    def test_one_events_error_is_its_own(self):
        now = 1794362400000
        # review.posted without the arguments its handler needs: a Lua error in that event
        out = self.evs((30, "ok1", 9, "no.handler", now, []),
                       (31, "bad", 9, "review.posted", now, []),
                       (32, "ok2", 9, "no.handler", now, []))
        self.assertEqual(out[0][0], b"ignored")
        self.assertEqual(out[1][0], b"error")
        self.assertTrue(out[1][-1])  # the message
        self.assertEqual(out[2][0], b"ignored")
        self.assertEqual(self.r.get("kefu:ckpt:tgroup:9"), b"32")


if __name__ == "__main__":
    unittest.main()
