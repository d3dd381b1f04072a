"""kefu-pay-reminder end to end: the real broker, the worker and Redis on the simulated clock,
driven with kefuctl pub (workers/pay-reminder/README.md, DOMAIN.md §0 and §1).

Most tests share one Stack and one worker (SharedStackCase). The simulated clock only moves
forward, so every test takes its own days (alloc_days) after those of the tests before it, and
its own shop ids; leftover timers of earlier tests may fire in later ones, which is why every
check filters by shop. Exactly-once tests run their own Stacks.
"""
import json
import random
import signal
import time
import unittest
from datetime import date, datetime

from kefu_harness import (FAST, MIN, TZ, H, ReplayCase, SharedStackCase, Stack, clock, iso,
                          local, optout, shop_config, wait_for)

WORKER = "kefu-pay-reminder"
SUFFIX = "拒收请回复R"
PHONE_WINDOWS = ((10 * 60, 11 * 60 + 30), (15 * 60, 16 * 60 + 30), (19 * 60 + 30, 20 * 60 + 30))


# ---------------------------------------------------------------------- time helpers

def md_hm(ms):
    """M月D日HH:MM, the {order_time}/{deadline} format."""
    d = local(ms)
    return f"{d.month}月{d.day}日{d:%H:%M}"


def minute_of_day(ms):
    d = local(ms)
    return d.hour * 60 + d.minute


def in_phone_window(ms):
    m = minute_of_day(ms)
    return any(s <= m < e for s, e in PHONE_WINDOWS)


# ---------------------------------------------------------------------- event builders

def order(shop, oid, buyer, created, total=9900, title="纯棉毛巾", name="张三", nick=None,
          kind="normal", deadline=None, event_id=None, items=None):
    b = {"buyer_id": buyer, "nick": nick or f"nick{buyer}", "phone": "13800000000",
         "city": "杭州"}
    if name:
        b["name"] = name
    e = {"topic": "order.created", "event_id": event_id or f"c-{shop}-{oid}", "shop_id": shop,
         "order_id": oid, "buyer": b,
         "items": items if items is not None else
         [{"sku_id": "k1", "title": title, "qty": 1, "price_fen": total}],
         "total_fen": total, "kind": kind, "created_at": iso(created)}
    if deadline is not None:
        e["pay_deadline_at"] = iso(deadline)
    return e


def paid(shop, oid, at, buyer=None, amount=None, event_id=None):
    e = {"topic": "order.paid", "event_id": event_id or f"p-{shop}-{oid}", "shop_id": shop,
         "order_id": oid, "at": iso(at)}
    if buyer:
        e["buyer_id"] = buyer
    if amount is not None:
        e["amount_fen"] = amount
    return e


def closed(shop, oid, at, buyer=None):
    e = {"topic": "order.closed", "event_id": f"x-{shop}-{oid}", "shop_id": shop,
         "order_id": oid, "at": iso(at), "reason": "timeout"}
    if buyer:
        e["buyer_id"] = buyer
    return e


def aid(shop, oid, n):
    return f"pay:{shop}:{oid}:{n}"


def tearDownModule():
    PayTest.stop_shared()


class PayTest(SharedStackCase):
    """Helpers over the shared stack."""
    WORKER = WORKER
    FIRST_DAY = date(2027, 1, 4)

    def tick_every(self, start, end, step=H):
        ts = list(range(start, end + 1, step))
        if ts[-1] != end:
            ts.append(end)
        self.tick(*ts)

    # -- reading
    def acts(self, shop):
        """{action_id: action} of one shop; fails on a duplicate action_id."""
        out = {}
        for t, i, a in self.s.action_entries():
            if a.get("shop_id") != shop:
                continue
            self.assertEqual(t, "action.contact")
            self.assertEqual(i, a["action_id"])
            self.assertNotIn(a["action_id"], out, f"action fired twice: {a}")
            out[a["action_id"]] = a
        return out

    def of_order(self, shop, oid):
        return sorted((a for a in self.acts(shop).values() if a["order_id"] == oid),
                      key=lambda a: a["action_id"])

    def assert_none(self, shop, *oids):
        got = [a["action_id"] for a in self.acts(shop).values() if a["order_id"] in oids]
        self.assertEqual(got, [], f"nothing should have been sent yet for {oids}")

    def assert_action(self, shop, oid, n, channel, due, buyer=None, template=None,
                      deadline=None):
        acts = self.acts(shop)
        key = aid(shop, oid, n)
        self.assertIn(key, acts, f"missing {key} (due {iso(due)}); have {sorted(acts)}")
        a = acts[key]
        self.assertEqual(a["event_id"], key)
        self.assertEqual((a["shop_id"], a["order_id"]), (shop, oid))
        if buyer:
            self.assertEqual(a["buyer_id"], buyer)
        self.assertEqual(a["channel"], channel, a)
        self.assertEqual(a["reason"], "payment_reminder")
        self.assertEqual(a["worker"], WORKER)
        self.assertEqual(a["contact_class"], "marketing")
        self.assertEqual(a["not_before"], due,
                         f"{key}: not_before {iso(a['not_before'])}, want {iso(due)}")
        self.assertEqual(a["occurred_at"], due,
                         f"{key}: occurred_at {iso(a['occurred_at'])}, want {iso(due)}")
        self.assertTrue(a["template"].startswith("payment_reminder"), a["template"])
        if template:
            self.assertEqual(a["template"], template)
        if deadline is not None:
            self.assertEqual(a["deadline_at"], deadline,
                             f"{key}: deadline_at {iso(a['deadline_at'])}, want {iso(deadline)}")
        self.assertTrue(a["text"])
        if channel == "sms":
            self.assert_sms_rules(a["text"])
        return a

    def assert_sms_rules(self, text):
        self.assertLessEqual(len(text), 70, text)
        self.assertTrue(text.endswith(SUFFIX), text)

    def stats(self, shop, day):
        return self.s.pay_stats(shop, self.days.ymd(day))

    def blocked_for(self, shop, buyer=None, order_id=None):
        out = []
        for e in self.s.blocked():
            vals = set(e.values())
            if shop in vals and (buyer is None or buyer in vals) and \
                    (order_id is None or order_id in vals):
                out.append(e)
        return out

    def assert_blocked_entry(self, shop, why, buyer=None, order_id=None):
        entries = self.blocked_for(shop, buyer, order_id)
        self.assertTrue(any(why in e.values() for e in entries),
                        f"no kefu:blocked entry {why} for {shop}/{buyer}/{order_id}: {entries}")


# ---------------------------------------------------------------------- timing

class TimingTest(PayTest):
    def test_first_reminder_timing_table(self):
        """DOMAIN §1: created 03:00 -> 10:00, 09:00 -> 14:00, 12:00 -> 12:30, 16:00 and
        23:00 -> 10:00 the next day; nothing one second earlier."""
        D = self.alloc(2)
        shop = "tt"
        self.pub(shop_config(shop, "小美家居"))
        rows = [("r03", (0, "03:00"), (0, "10:00"), "urgency"),
                ("r09", (0, "09:00"), (0, "14:00"), "urgency"),
                ("r12", (0, "12:00"), (0, "12:30"), "urgency"),
                ("r16", (0, "16:00"), (1, "10:00"), "privilege"),
                ("r23", (0, "23:00"), (1, "10:00"), "privilege")]
        steps = []  # (time, kind, row): kind 0 create, 1 check before, 2 check at
        for row in rows:
            created, due = D(*row[1]), D(*row[2])
            steps += [(created, 0, row), (due - 1000, 1, row), (due, 2, row)]
        steps.sort(key=lambda s: (s[0], s[1]))
        for t, kind, (oid, c, d, tech) in steps:
            self.tick(t)
            if kind == 0:
                self.pub(order(shop, oid, "b" + oid, t, name="王小美"))
            elif kind == 1:
                self.assert_none(shop, oid)
            else:
                a = self.assert_action(shop, oid, 1, "im", t, buyer="b" + oid,
                                       template=f"payment_reminder/{tech}",
                                       deadline=D(*c) + 72 * H)
                self.assertIn("王小美", a["text"])
                self.assertIn("小美家居", a["text"])

    def test_second_reminder_by_sms_four_hours_later_and_never_more_than_two(self):
        D = self.alloc(4)
        shop = "sr"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:00"))
        self.pub(order(shop, "a", "ba", D(0, "03:00")))
        self.tick(D(0, "10:00"))
        self.assert_action(shop, "a", 1, "im", D(0, "10:00"))
        self.tick(D(0, "12:00"))
        self.pub(order(shop, "b", "bb", D(0, "12:00")))
        self.tick(D(0, "13:59:59"))
        self.assertEqual([x["action_id"] for x in self.of_order(shop, "a")], [aid(shop, "a", 1)])
        self.tick(D(0, "14:00"))
        self.assert_action(shop, "a", 2, "sms", D(0, "14:00"), deadline=D(3, "03:00"))
        self.tick(D(0, "16:00"))
        self.pub(order(shop, "c", "bc", D(0, "16:00")))
        self.tick(D(0, "16:29:59"))
        self.assertEqual(len(self.of_order(shop, "b")), 1)
        self.tick(D(0, "16:30"))
        self.assert_action(shop, "b", 2, "sms", D(0, "16:30"))
        # many ticks over the whole 72 h: still two per order
        self.tick_every(D(0, "16:40"), D(4, "06:00"), 20 * MIN)
        self.assert_action(shop, "c", 1, "im", D(1, "10:00"))
        self.assert_action(shop, "c", 2, "sms", D(1, "14:00"))
        for oid in "abc":
            got = self.of_order(shop, oid)
            self.assertEqual([(x["action_id"], x["channel"]) for x in got],
                             [(aid(shop, oid, 1), "im"), (aid(shop, oid, 2), "sms")])

    def test_actions_are_published_live_with_rfc3339_times(self):
        D = self.alloc(1)
        shop = "lv"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:00"))
        self.pub(order(shop, "o1", "b1", D(0, "03:00")))
        self.tick(D(0, "09:00"))
        tail = self.s.tail("action.contact", "--idle-exit", "1")
        try:
            time.sleep(0.7)  # let the subscription reach the broker
            self.tick(D(0, "10:00"))
            out, err = tail.communicate(timeout=20)
        finally:
            if tail.poll() is None:
                tail.kill()
                tail.wait()
        mine = [json.loads(l) for l in out.splitlines() if l.strip()]
        mine = [a for a in mine if a.get("shop_id") == shop]
        self.assertEqual(len(mine), 1, out + err)
        a = mine[0]
        self.assertEqual(a["topic"], "action.contact")
        self.assertEqual(a["action_id"], aid(shop, "o1", 1))
        self.assertEqual(a["channel"], "im")
        self.assertEqual(a["not_before"], iso(D(0, "10:00")))
        self.assertTrue(a["not_before"].endswith("+08:00"))
        self.assertEqual(a["deadline_at"], iso(D(3, "03:00")))


# ---------------------------------------------------------------------- channels

class ChannelTest(PayTest):
    def test_repeat_buyer_gets_a_call_in_the_last_24_hours(self):
        D = self.alloc(4)
        shop = "rb"
        self.pub(shop_config(shop, "小美家居"))
        # b1 and b2: an earlier paid order -> repeat buyers (DOMAIN §1: at least one); b3: new
        self.tick(D(0, "01:00"))
        self.pub(order(shop, "r1", "b1", D(0, "01:00"), name="老李"),
                 order(shop, "q1", "b2", D(0, "01:00")))
        self.tick(D(0, "01:30"))
        self.pub(paid(shop, "r1", D(0, "01:30"), "b1"), paid(shop, "q1", D(0, "01:30"), "b2"))
        self.tick(D(0, "02:00"))
        self.pub(order(shop, "r2", "b1", D(0, "02:00"), name="老李"))
        self.tick(D(0, "02:30"))
        self.pub(paid(shop, "r2", D(0, "02:30")))  # without buyer_id
        self.tick(D(0, "09:00"))
        self.pub(order(shop, "r3", "b1", D(0, "09:00"), name="老李"),
                 order(shop, "q2", "b3", D(0, "09:00")))
        deadline = D(3, "09:00")
        self.tick(D(0, "14:00"))
        self.assert_action(shop, "q2", 1, "im", D(0, "14:00"),
                           template="payment_reminder/urgency")
        self.tick_every(D(0, "15:00"), D(2, "09:59:59"))
        self.assert_none(shop, "r1", "r2", "r3")
        self.tick(D(2, "10:00"))
        a = self.assert_action(shop, "r3", 1, "phone", D(2, "10:00"), buyer="b1",
                               template="payment_reminder/repeat", deadline=deadline)
        self.assertGreaterEqual(a["not_before"], deadline - 24 * H)
        self.assertTrue(in_phone_window(a["not_before"]))
        self.assertIn("老李", a["text"])
        self.tick_every(D(2, "11:00"), D(3, "12:00"))
        got = self.of_order(shop, "r3")
        self.assertEqual(len(got), 2, got)
        self.assertEqual(got[1]["channel"], "sms")
        self.assertEqual(got[1]["not_before"], D(2, "14:00"))
        self.assertEqual(got[1]["template"], "payment_reminder/repeat")

    def test_flash_sale_im_at_10_sms_at_20_minutes_within_the_deadline(self):
        D = self.alloc(2)
        shop = "fs"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "14:00"))
        self.pub(order(shop, "f1", "b1", D(0, "14:00"), kind="flash_sale"))
        self.tick(D(0, "14:09:59"))
        self.assert_none(shop, "f1")
        self.tick(D(0, "14:10"))
        a = self.assert_action(shop, "f1", 1, "im", D(0, "14:10"), buyer="b1",
                               template="payment_reminder/flash", deadline=D(0, "14:30"))
        # true to the order (DOMAIN §0): it closes at 14:30, no "ships today if paid by 15:00"
        self.assertIn("14:30前未付款会自动关闭", a["text"])
        self.assertNotIn("15点", a["text"])
        self.tick(D(0, "14:19:59"))
        self.assertEqual(len(self.of_order(shop, "f1")), 1)
        self.tick(D(0, "14:20"))
        self.assert_action(shop, "f1", 2, "sms", D(0, "14:20"),
                           template="payment_reminder/flash", deadline=D(0, "14:30"))
        # paid between the two: no sms
        self.tick(D(0, "15:00"))
        self.pub(order(shop, "f3", "b3", D(0, "15:00"), kind="flash_sale"))
        self.tick(D(0, "15:10"))
        self.assert_action(shop, "f3", 1, "im", D(0, "15:10"))
        self.tick(D(0, "15:15"))
        self.pub(paid(shop, "f3", D(0, "15:15"), "b3"))
        # 21:50: im at 22:00 (no quiet hours for im); the sms would be held to 08:00, past
        # the 22:20 deadline: not sent, counted as blocked:deadline
        self.tick(D(0, "21:50"))
        self.pub(order(shop, "f2", "b2", D(0, "21:50"), kind="flash_sale"))
        self.tick(D(0, "22:00"))
        self.assert_action(shop, "f2", 1, "im", D(0, "22:00"), deadline=D(0, "22:20"))
        self.tick(D(0, "22:10"), D(0, "22:30"), D(1, "08:00"), D(1, "12:00"))
        self.assertEqual(len(self.of_order(shop, "f2")), 1)
        self.assertEqual(len(self.of_order(shop, "f3")), 1)
        st = self.stats(shop, 0)
        self.assertEqual(st.get("blocked:deadline"), 1, st)
        self.assertEqual(st.get("orders"), 3, st)
        self.assert_blocked_entry(shop, "deadline", order_id="f2")

    def test_large_orders_get_a_call_in_the_next_phone_window(self):
        D = self.alloc(3)
        shop = "lg"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "12:00"))
        self.pub(order(shop, "l1", "b1", D(0, "12:00"), total=59900, name="赵大"),
                 # no phone window before its 14:50 deadline: sms at the table time
                 order(shop, "l4", "b4", D(0, "12:00"), total=80000, deadline=D(0, "14:50")))
        self.tick(D(0, "12:29:59"))
        self.assert_none(shop, "l1", "l4")
        self.tick(D(0, "12:30"))
        self.assert_action(shop, "l4", 1, "sms", D(0, "12:30"), deadline=D(0, "14:50"))
        self.assert_none(shop, "l1")
        self.tick(D(0, "14:59:59"))
        self.assert_none(shop, "l1")
        self.tick(D(0, "15:00"))
        a = self.assert_action(shop, "l1", 1, "phone", D(0, "15:00"), buyer="b1")
        self.assertIn("赵大", a["text"])
        self.tick(D(0, "16:00"))
        self.pub(order(shop, "l2", "b2", D(0, "16:00"), total=50000),
                 order(shop, "l3", "b3", D(0, "16:00"), total=49999))
        self.tick(D(0, "18:59:59"))
        self.assertEqual(len(self.of_order(shop, "l1")), 1)
        self.tick(D(0, "19:00"))
        self.assert_action(shop, "l1", 2, "sms", D(0, "19:00"))
        self.tick(D(1, "09:59:59"))
        self.assert_none(shop, "l2", "l3")
        self.tick(D(1, "10:00"))
        self.assert_action(shop, "l2", 1, "phone", D(1, "10:00"),
                           template="payment_reminder/verification")
        self.assert_action(shop, "l3", 1, "im", D(1, "10:00"),
                           template="payment_reminder/privilege")
        self.tick_every(D(1, "11:00"), D(3, "12:00"))
        self.assert_action(shop, "l2", 2, "sms", D(1, "14:00"))
        self.assert_action(shop, "l3", 2, "sms", D(1, "14:00"))
        self.assertEqual([len(self.of_order(shop, o)) for o in ("l1", "l2", "l3", "l4")],
                         [2, 2, 2, 1])
        # l4's second (16:30) is later than deadline - 2 h
        self.assertEqual(self.stats(shop, 0).get("blocked:deadline"), 1, self.stats(shop, 0))


# ---------------------------------------------------------------------- cancel, deadline

class CancelTest(PayTest):
    def test_paid_or_closed_cancels_pending_reminders(self):
        D = self.alloc(4)
        shop = "cx"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:00"))
        oids = ["p1", "p2", "c1", "c2", "a1", "a2", "k1"]
        self.pub(*[order(shop, o, "b" + o, D(0, "03:00")) for o in oids])
        self.tick(D(0, "05:00"))
        self.pub(paid(shop, "p1", D(0, "05:00"), "bp1"), paid(shop, "p2", D(0, "05:00")),
                 closed(shop, "c1", D(0, "05:00"), "bc1"), closed(shop, "c2", D(0, "05:00")))
        self.tick(D(0, "10:00"))
        for o in ("a1", "a2", "k1"):
            self.assert_action(shop, o, 1, "im", D(0, "10:00"))
        self.assert_none(shop, "p1", "p2", "c1", "c2")
        self.tick(D(0, "11:00"))
        self.pub(paid(shop, "a1", D(0, "11:00"), amount=9900), closed(shop, "a2", D(0, "11:00")))
        self.tick_every(D(0, "12:00"), D(4, "06:00"))
        counts = {o: len(self.of_order(shop, o)) for o in oids}
        self.assertEqual(counts, {"p1": 0, "p2": 0, "c1": 0, "c2": 0, "a1": 1, "a2": 1, "k1": 2})

    def test_nothing_is_sent_after_the_deadline(self):
        D = self.alloc(3)
        shop = "dl"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:00"))
        # n2, n3: the second (14:00) is later than deadline - 2 h = 13:00
        self.pub(order(shop, "n2", "b2", D(0, "03:00"), deadline=D(0, "15:00")),
                 order(shop, "n3", "b3", D(0, "03:00"), deadline=D(0, "15:00")))
        self.tick(D(0, "10:00"))
        self.assert_action(shop, "n2", 1, "im", D(0, "10:00"), deadline=D(0, "15:00"))
        self.assert_action(shop, "n3", 1, "im", D(0, "10:00"), deadline=D(0, "15:00"))
        self.tick(D(0, "11:00"))
        self.pub(paid(shop, "n3", D(0, "11:00"), "b3"))  # paid: its second is not "blocked"
        self.tick(D(0, "16:00"))
        # n1: the table says 10:00 tomorrow, the deadline is 23:00 today
        self.pub(order(shop, "n1", "b1", D(0, "16:00"), deadline=D(0, "23:00")))
        self.tick_every(D(0, "17:00"), D(2, "12:00"))
        self.assertEqual([len(self.of_order(shop, o)) for o in ("n1", "n2", "n3")], [0, 1, 1])
        for a in self.acts(shop).values():
            self.assertLessEqual(a["not_before"], a["deadline_at"])
        st = self.stats(shop, 0)
        # n2's second, n1's first (and n1's second, if the worker plans one past the deadline)
        self.assertIn(st.get("blocked:deadline"), (2, 3), st)
        self.assert_blocked_entry(shop, "deadline", order_id="n1")
        self.assert_blocked_entry(shop, "deadline", order_id="n2")


# ---------------------------------------------------------------------- contact policy

class PolicyTest(PayTest):
    def test_second_sms_computed_in_quiet_hours_is_held_to_8am(self):
        D = self.alloc(3)
        shop = "qh"
        # cutoff 20:00: an order at 18:00 gets its im at 18:30 and its sms is due at 22:30
        self.pub(shop_config(shop, "小美家居", ship_cutoff_hour=20))
        self.tick(D(0, "18:00"))
        self.pub(order(shop, "q1", "b1", D(0, "18:00")))
        self.tick(D(0, "18:10"))
        self.pub(order(shop, "q2", "b2", D(0, "18:10"), deadline=D(1, "09:00")))
        self.tick(D(0, "18:29:59"))
        self.assert_none(shop, "q1")
        self.tick(D(0, "18:30"))
        self.assert_action(shop, "q1", 1, "im", D(0, "18:30"))
        self.tick(D(0, "18:40"))
        self.assert_action(shop, "q2", 1, "im", D(0, "18:40"))
        self.tick(D(0, "22:30"), D(0, "23:00"), D(1, "02:00"), D(1, "07:59:59"))
        self.assertEqual(len(self.of_order(shop, "q1")), 1)
        self.tick(D(1, "08:00"))
        self.assert_action(shop, "q1", 2, "sms", D(1, "08:00"))
        # q2: 08:00 is later than deadline - 2 h (07:00): not sent
        self.tick_every(D(1, "09:00"), D(2, "12:00"))
        self.assertEqual(len(self.of_order(shop, "q2")), 1)
        self.assertEqual(self.stats(shop, 0).get("blocked:deadline"), 1, self.stats(shop, 0))

    def test_second_sms_after_an_evening_call_is_held_to_8am(self):
        D = self.alloc(4)
        shop = "qe"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "01:00"))
        self.pub(order(shop, "r1", "b1", D(0, "01:00")))
        self.tick(D(0, "01:30"))
        self.pub(paid(shop, "r1", D(0, "01:30"), "b1"))
        self.tick(D(0, "02:00"))
        self.pub(order(shop, "r2", "b1", D(0, "02:00")))
        self.tick(D(0, "02:30"))
        self.pub(paid(shop, "r2", D(0, "02:30"), "b1"))
        # repeat buyer at 20:00: deadline - 24 h = day 2 20:00, inside 19:30-20:30 -> a call;
        # the sms 4 h later (00:00) is held to 08:00
        self.tick(D(0, "20:00"))
        self.pub(order(shop, "r3", "b1", D(0, "20:00")))
        self.tick_every(D(0, "21:00"), D(2, "19:00"))
        self.assert_none(shop, "r3")
        self.tick(D(2, "20:00"))
        self.assert_action(shop, "r3", 1, "phone", D(2, "20:00"),
                           template="payment_reminder/repeat")
        self.tick(D(3, "00:00"), D(3, "04:00"), D(3, "07:59:59"))
        self.assertEqual(len(self.of_order(shop, "r3")), 1)
        self.tick(D(3, "08:00"))
        self.assert_action(shop, "r3", 2, "sms", D(3, "08:00"))

    def test_at_most_three_contacts_a_buyer_a_day(self):
        D = self.alloc(2)
        shop = "cd"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:00"))
        self.pub(*[order(shop, f"o{i}", "cb", D(0, f"03:{i}0")) for i in range(4)])
        self.tick(D(0, "10:00"))
        sent = [a for a in self.acts(shop).values() if a["buyer_id"] == "cb"]
        self.assertEqual(len(sent), 3, sent)
        self.assertEqual({a["channel"] for a in sent}, {"im"})
        self.tick_every(D(0, "11:00"), D(0, "23:00"))
        sent = [a for a in self.acts(shop).values() if a["buyer_id"] == "cb"]
        self.assertEqual(len(sent), 3, [(a["action_id"], a["channel"]) for a in sent])
        st = self.stats(shop, 0)
        self.assertGreaterEqual(st.get("blocked:cap_daily", 0), 4, st)  # 1 im + 3 sms
        self.assert_blocked_entry(shop, "cap_daily", buyer="cb")
        # a new shop-local day: the buyer may be contacted again
        self.tick(D(1, "03:00"))
        self.pub(order(shop, "o9", "cb", D(1, "03:00")))
        self.tick(D(1, "10:00"))
        self.assert_action(shop, "o9", 1, "im", D(1, "10:00"))

    def test_at_most_one_marketing_sms_a_day(self):
        D = self.alloc(2)
        shop = "cs"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "12:00"))
        # large orders with no phone window before their deadline: sms first, at 12:30/12:35
        self.pub(order(shop, "s1", "sb", D(0, "12:00"), total=80000, deadline=D(0, "14:50")),
                 order(shop, "s2", "sb", D(0, "12:05"), total=80000, deadline=D(0, "14:50")))
        self.tick(D(0, "12:30"))
        self.assert_action(shop, "s1", 1, "sms", D(0, "12:30"))
        self.tick(D(0, "12:35"), D(0, "16:00"), D(1, "12:00"))
        sent = [a for a in self.acts(shop).values() if a["buyer_id"] == "sb"]
        self.assertEqual(len(sent), 1, sent)
        st = self.stats(shop, 0)
        self.assertEqual(st.get("blocked:cap_sms_daily"), 1, st)
        self.assert_blocked_entry(shop, "cap_sms_daily", buyer="sb", order_id="s2")

    def test_at_most_one_call_a_day(self):
        D = self.alloc(2)
        shop = "cp"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "16:00"))
        self.pub(order(shop, "o1", "pb", D(0, "16:00"), total=60000),
                 order(shop, "o2", "pb", D(0, "16:05"), total=60000))
        self.tick(D(1, "10:00"))
        calls = [a for a in self.acts(shop).values() if a["channel"] == "phone"]
        self.assertEqual(len(calls), 1, calls)
        self.assertEqual(calls[0]["not_before"], D(1, "10:00"))
        self.tick_every(D(1, "11:00"), D(1, "23:00"))
        sent = sorted((a["channel"] for a in self.acts(shop).values()))
        self.assertEqual(sent, ["phone", "sms"])  # the second sms is over the sms cap
        st = self.stats(shop, 0)
        self.assertEqual(st.get("blocked:cap_phone_daily"), 1, st)

    def test_caps_count_by_shop_local_day(self):
        """23:xx and 00:xx local are different days although the UTC date is the same."""
        D = self.alloc(2)
        shop = "cl"
        self.pub(shop_config(shop, "小美家居"))
        created = {"a": "23:00", "b": "23:05", "c": "23:10", "f": "23:12", "d": "23:50",
                   "e": "23:55"}
        for oid, hm in sorted(created.items(), key=lambda kv: kv[1]):
            self.tick(D(0, hm))
            self.pub(order(shop, oid, "lb", D(0, hm), kind="flash_sale"))
        self.tick_every(D(0, "23:56"), D(1, "12:00"), 30 * MIN)
        sent = {a["order_id"]: a for a in self.acts(shop).values()}
        self.assertEqual(sorted(sent), ["a", "b", "c", "d", "e"])  # f: 4th contact of day 0
        for oid, a in sent.items():
            self.assertEqual((a["channel"], a["not_before"]),
                             ("im", D(0, created[oid]) + 10 * MIN))
        st = self.stats(shop, 0)
        self.assertEqual(st.get("blocked:cap_daily"), 1, st)
        self.assert_blocked_entry(shop, "cap_daily", order_id="f")

    def test_optout(self):
        D = self.alloc(2)
        shop = "oo"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "01:00"))
        self.pub(optout(shop, "o1", ["sms"]), optout(shop, "o2", ["all"]))
        self.tick(D(0, "03:00"))
        self.pub(*[order(shop, f"x{i}", f"o{i}", D(0, "03:00")) for i in range(1, 5)])
        self.tick(D(0, "10:00"))
        self.pub(optout(shop, "o4", ["sms"]))  # after the order: still honoured at 14:00
        self.tick_every(D(0, "11:00"), D(1, "12:00"))
        got = {o: [a["channel"] for a in self.of_order(shop, o)]
               for o in ("x1", "x2", "x3", "x4")}
        self.assertEqual(got, {"x1": ["im"], "x2": [], "x3": ["im", "sms"], "x4": ["im"]})
        st = self.stats(shop, 0)
        self.assertEqual(st.get("blocked:optout"), 4, st)  # x1 sms, x2 im + sms, x4 sms
        self.assert_blocked_entry(shop, "optout", buyer="o2")

    def test_same_reason_is_never_sent_twice(self):
        D = self.alloc(4)
        shop = "rc"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:00"))
        self.pub(order(shop, "x", "bx", D(0, "03:00")))
        self.tick(D(0, "10:00"))
        self.assert_action(shop, "x", 1, "im", D(0, "10:00"))
        self.tick(D(0, "11:00"))
        r = self.pub(order(shop, "x", "bx", D(0, "03:00")))  # the same event_id
        self.assertTrue(r.stdout.startswith("duplicate"), r.stdout)
        self.pub(order(shop, "x", "bx", D(0, "03:00"), event_id="c-rc-x-again"))
        self.tick(D(0, "14:00"))
        self.assert_action(shop, "x", 2, "sms", D(0, "14:00"))
        self.tick(D(0, "15:00"))
        self.pub(order(shop, "x", "bx", D(0, "03:00"), event_id="c-rc-x-3"))
        self.tick_every(D(0, "16:00"), D(4, "06:00"))
        entries = [i for t, i, a in self.s.action_entries() if a.get("shop_id") == shop]
        self.assertEqual(sorted(entries), [aid(shop, "x", 1), aid(shop, "x", 2)])


# ---------------------------------------------------------------------- texts

class TextTest(PayTest):
    LONG = "北欧风格纯棉加厚四件套床单被套枕套全棉简约宿舍家用一米八双人床上用品套装送抱枕"

    def test_sms_text_four_elements_and_70_characters(self):
        D = self.alloc(2)
        shop = "tx"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:07"))
        self.pub(order(shop, "long", "b1", D(0, "03:07"), title=self.LONG, name="王小美"),
                 order(shop, "short", "b2", D(0, "03:07"), title="毛巾", name="李雷"),
                 order(shop, "nick", "b3", D(0, "03:07"), name=None, nick="阿花"),
                 order("tx-bare", "bare", "b4", D(0, "03:07"), name="韩梅梅"))
        self.tick(D(0, "10:00"), D(0, "14:00"))
        a = self.assert_action(shop, "long", 2, "sms", D(0, "14:00"))
        t = a["text"]
        self.assertIn("王小美", t[:7], t)
        self.assertIn("小美家居", t)
        self.assertIn(md_hm(D(0, "03:07")), t)
        self.assertNotIn(self.LONG, t)
        kept = [k for k in range(len(self.LONG), 0, -1) if self.LONG[:k] + "…" in t]
        self.assertTrue(kept, f"no shortened title ending with … in {t!r}")
        self.assertGreaterEqual(kept[0], 2)
        self.assertEqual(len(t), 70, f"the title should be shortened only as far as needed: {t!r}")

        b = self.assert_action(shop, "short", 2, "sms", D(0, "14:00"))
        self.assertIn("李雷", b["text"][:7])
        self.assertIn("毛巾", b["text"])
        self.assertNotIn("…", b["text"])
        self.assertIn(md_hm(D(0, "03:07")), b["text"])
        self.assertIn("小美家居", b["text"])

        c = self.assert_action(shop, "nick", 1, "im", D(0, "10:00"))
        self.assertIn("阿花", c["text"])  # {buyer}: the name, else the nick
        d = self.assert_action("tx-bare", "bare", 1, "im", D(0, "10:00"))
        self.assertIn("tx-bare", d["text"])  # {shop}: the name, else the shop_id
        self.assertIn("韩梅梅", d["text"])

    def test_shop_templates_override_the_built_in_ones(self):
        D = self.alloc(2)
        shop = "tp"
        im_t = "店铺IM：{buyer}，{shop}的{item}待付款，截止{deadline}"
        sms_t = "{buyer}:{shop}{order_time}的{item}快付款"
        self.pub(shop_config(shop, "测试小铺", templates=[
            {"kind": "payment_reminder", "channel": "im", "text": im_t},
            {"kind": "payment_reminder/urgency", "channel": "sms", "text": sms_t}]))
        self.tick(D(0, "03:00"))
        self.pub(order(shop, "u", "b1", D(0, "03:00"), name="王小二", title="毛巾"))
        self.tick(D(0, "16:00"))
        self.pub(order(shop, "p", "b2", D(0, "16:00"), name="李小三", title="毛巾"))
        self.tick_every(D(0, "17:00"), D(1, "15:00"))
        u1 = self.assert_action(shop, "u", 1, "im", D(0, "10:00"))
        self.assertEqual(u1["text"], f"店铺IM：王小二，测试小铺的毛巾待付款，截止{md_hm(D(3, '03:00'))}")
        u2 = self.assert_action(shop, "u", 2, "sms", D(0, "14:00"))
        self.assertTrue(u2["text"].startswith(f"王小二:测试小铺{md_hm(D(0, '03:00'))}的毛巾快付款"),
                        u2["text"])
        p1 = self.assert_action(shop, "p", 1, "im", D(1, "10:00"),
                                template="payment_reminder/privilege")
        self.assertTrue(p1["text"].startswith("店铺IM：李小三，"), p1["text"])
        p2 = self.assert_action(shop, "p", 2, "sms", D(1, "14:00"))
        self.assertNotIn("快付款", p2["text"])  # privilege: the urgency sms does not apply
        self.assertIn("李小三", p2["text"][:7])


# ---------------------------------------------------------------------- results

class StatsTest(PayTest):
    def test_results_per_shop_and_creation_day(self):
        D = self.alloc(2)
        shop = "st"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:00"))
        self.pub(*[order(shop, o, "b" + o, D(0, "03:00"), total=20000)
                   for o in ("s1", "s2", "s3", "s4")])
        self.tick(D(0, "05:00"))
        self.pub(paid(shop, "s1", D(0, "05:00"), "bs1", amount=20000))
        self.tick(D(0, "10:00"))
        self.tick(D(0, "11:00"))
        self.pub(paid(shop, "s2", D(0, "11:00"), "bs2", amount=12345))
        self.tick(D(0, "14:00"))
        self.tick(D(0, "15:00"))
        self.pub(closed(shop, "s3", D(0, "15:00"), "bs3"))
        self.tick(D(0, "16:00"))
        self.pub(paid(shop, "s4", D(0, "16:00")))  # no amount: the order total counts
        self.tick(D(0, "23:00"))
        self.pub(order(shop, "s6", "bs6", D(0, "23:00")))  # local day 0
        self.tick(D(1, "03:00"))
        self.pub(order(shop, "s5", "bs5", D(1, "03:00")))
        self.tick(D(1, "07:30"))  # 07:30 local is still day 0 in UTC
        self.pub(order(shop, "s7", "bs7", D(1, "07:30")))
        self.tick_every(D(1, "08:00"), D(1, "15:00"))

        want0 = {"orders": 5, "paid": 3, "closed": 1, "unpaid": 4, "reminded": 4,
                 "reminders": 7, "reminders_im": 4, "reminders_sms": 3, "reminders_phone": 0,
                 "paid_after_reminder": 2, "recovered_fen": 12345 + 20000}
        st = self.stats(shop, 0)
        self.assertEqual({k: st.get(k, 0) for k in want0}, want0, st)
        self.assertEqual({k: v for k, v in st.items() if k.startswith("blocked:") and v}, {})
        want1 = {"orders": 2, "paid": 0, "unpaid": 2, "reminded": 2, "reminders": 4,
                 "reminders_im": 2, "reminders_sms": 2}
        st1 = self.stats(shop, 1)
        self.assertEqual({k: st1.get(k, 0) for k in want1}, want1, st1)
        ttl = self.s.redis().ttl(f"kefu:stats:pay:{{{shop}}}:{D.ymd(0)}")
        self.assertGreater(ttl, 390 * 86400)
        self.assertLessEqual(ttl, 400 * 86400 + 120 * 86400)  # 400 days (of a simulated date)


# ---------------------------------------------------------------------- bad input

class BadEventTest(PayTest):
    def test_bad_events_are_rejected_and_the_worker_keeps_working(self):
        D = self.alloc(2)
        shop = "bad"
        self.pub(shop_config(shop, "小美家居"))
        self.tick(D(0, "03:00"))
        good = order(shop, "g1", "b1", D(0, "03:00"))
        variants = []
        e = dict(good, event_id="bad-1")
        del e["order_id"]
        variants.append(e)
        variants.append(dict(good, event_id="bad-2", total_fen=-5))
        variants.append(dict(good, event_id="bad-3", total_fen="abc"))
        variants.append(dict(good, event_id="bad-4", buyer="b1"))
        variants.append(dict(good, event_id="bad-5", items={"title": "x"}))
        variants.append(dict(good, event_id="bad-6", created_at="yesterday"))
        variants.append(dict(good, event_id="bad-7", kind="sometimes"))
        for v in variants:
            r = self.s.pub([v])
            self.assertEqual(r.returncode, 1, f"{v['event_id']} accepted: {r.stdout}")
        seq = self.s.journal_seq()
        # accepted by the broker, odd for the worker: skipped, nothing breaks
        self.pub(paid(shop, "ghost", D(0, "03:00"), "b9"),
                 paid(shop, "ghost2", D(0, "03:00"), event_id="p-ghost2"),
                 closed(shop, "ghost3", D(0, "03:00")),
                 {"topic": "order.shipped", "event_id": "sh-1", "shop_id": shop,
                  "order_id": "g0", "tracking_no": "YT1", "carrier": "圆通"},
                 order(shop, "noitems", "b8", D(0, "03:00"), items=[]),
                 clock(D(0, "01:00")))  # the clock never goes back
        self.assertEqual(self.s.journal_seq(), seq + 6)
        self.pub(good)
        self.tick(D(0, "09:59:59"))
        self.assert_none(shop, "g1")
        self.tick(D(0, "10:00"))
        self.assert_action(shop, "g1", 1, "im", D(0, "10:00"))
        self.assert_none(shop, "ghost", "ghost2", "ghost3")
        paid_counts = [int(self.s.redis().hget(k, "paid") or 0)
                       for k in self.s.redis().scan_iter(f"kefu:stats:pay:{{{shop}}}:*")]
        self.assertEqual(sum(paid_counts), 0, "a paid for an unknown order was counted")


# ---------------------------------------------------------------------- exactly once

NAMES = ["王小美", "李雷", "韩梅梅", "张伟", "刘洋", "陈静", "杨帆", "赵敏"]
TITLES = ["纯棉毛巾", "真丝四件套", "北欧风格纯棉加厚四件套床单被套枕套全棉简约宿舍家用一米八双人床",
          "不锈钢保温杯", "儿童益智积木玩具大颗粒拼装男孩女孩宝宝早教", "蓝牙耳机"]


def fnv1a32(s):
    h = 2166136261
    for c in s.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


class InstanceAheadTest(unittest.TestCase):
    """Two instances: the one without an order's partition runs ahead and meets the order's
    payment (no buyer_id: found through the order hash) before the owner has applied the
    order. It keeps the payment for the order (kefu:early), but the owner applies it in its
    own turn, after the clock ticks between them: the reminders due before the payment go out
    as with one instance (they did not: applied at the order's arrival, the payment ended the
    order before its reminders were due)."""

    def run_it(self, two):
        t0 = datetime(2027, 8, 2, 9, 0, tzinfo=TZ).timestamp() * 1000
        shop = "ia"
        buyer = next(f"b{i}" for i in range(1000) if fnv1a32(f"{shop}:b{i}") % 64 % 2 == 0)
        events = [clock(t0), shop_config(shop, "ia小店"), order(shop, "o1", buyer, t0)]
        ticks = [clock(t0 + k * 30 * MIN) for k in range(1, 20)]  # to 18:30: two reminders
        pay = paid(shop, "o1", t0 + 10 * H)
        with Stack(clock="simulated") as s:
            if not two:
                s.start_worker(WORKER, *FAST)
                for e in events + ticks + [pay]:
                    self.assertEqual(s.pub([e]).returncode, 0)
                s.wait_applied()
                return {a["action_id"] for a in s.actions()}
            inst = ("-o", "pay-reminder.instances=2", *FAST)
            k0 = s.start_worker(WORKER, "-i", "0", *inst)  # the order's partition
            s.start_worker(WORKER, "-i", "1", *inst)
            s.procs[k0].send_signal(signal.SIGSTOP)
            try:
                for e in events + ticks + [pay]:
                    self.assertEqual(s.pub([e]).returncode, 0)
                early = f"kefu:early:pay-reminder:kefu:order:{{{shop}}}:o1"
                wait_for(lambda: s.redis().exists(early), what="instance 1 keeping the payment")
            finally:
                s.procs[k0].send_signal(signal.SIGCONT)
            s.wait_applied()
            return {a["action_id"] for a in s.actions()}

    def test_a_payment_kept_by_an_instance_ahead_waits_for_its_turn(self):
        one = self.run_it(False)
        self.assertEqual(one, {aid("ia", "o1", 1), aid("ia", "o1", 2)})
        self.assertEqual(self.run_it(True), one)


def scenario(seed=3, first=date(2027, 6, 7), norders=60, tail_hours=72):
    """A deterministic scenario: (events in publishing order, orders by (shop, id)).
    Orders over two days in three shops, paid/closed/unpaid, flash sales, large orders,
    explicit deadlines, repeat buyers, opt-outs; sys.clock every 20 minutes to the end."""
    rng = random.Random(seed)
    t0 = int(datetime(first.year, first.month, first.day, tzinfo=TZ).timestamp() * 1000)
    shops = ["e1", "e2", "e3"]
    timed = []  # (ms, seq, event)
    n = 0

    def add(t, e):
        nonlocal n
        timed.append((t, n, e))
        n += 1

    for s in shops:
        add(t0, shop_config(s, f"{s}小店"))
    add(t0 + 5 * MIN, optout("e1", "b1", ["sms"]))
    add(t0 + 6 * MIN, optout("e2", "b2", ["all"]))
    orders = {}
    for i in range(norders):
        s = rng.choice(shops)
        b = f"b{rng.randrange(1, 9)}"
        created = t0 + rng.randrange(0, 48 * 60) * MIN
        kind = "flash_sale" if rng.random() < 0.12 else "normal"
        total = rng.choice([990, 4590, 12900, 29900, 49999, 50000, 59900, 128800])
        deadline = None
        if kind == "normal" and rng.random() < 0.12:
            deadline = created + rng.choice([3, 20, 30]) * H
        oid = f"o{i}"
        e = order(s, oid, b, created, total=total, title=rng.choice(TITLES),
                  name=NAMES[int(b[1:]) % len(NAMES)], kind=kind, deadline=deadline,
                  event_id=f"sim-c{i}")
        add(created, e)
        o = {"shop": s, "buyer": b, "created": created, "kind": kind, "total": total,
             "deadline": deadline or created + (30 * MIN if kind == "flash_sale" else 72 * H),
             "explicit_deadline": deadline is not None, "end": None}
        r = rng.random()
        if r < 0.45:
            at = created + rng.choice([5, 15, 25, 90, 300, 700, 1500, 2500]) * MIN
            add(at, paid(s, oid, at, buyer=b if rng.random() < 0.5 else None,
                         amount=total if rng.random() < 0.5 else None, event_id=f"sim-p{i}"))
            o["end"] = at
        elif r < 0.55:
            at = created + rng.choice([40, 600, 2000]) * MIN
            e = closed(s, oid, at, buyer=b if rng.random() < 0.5 else None)
            e["event_id"] = f"sim-x{i}"
            add(at, e)
            o["end"] = at
        orders[(s, oid)] = o
    end = t0 + (48 + tail_hours) * H
    k = 0
    for t in range(t0, end + 1, 20 * MIN):
        add(t + 0.5, clock(t, event_id=f"sim-t{k}"))  # after the events of the same minute
        k += 1
    timed.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in timed], orders


def action_set(stack):
    return {(a["action_id"], a["channel"], a["not_before"], a["text"]) for a in stack.actions()}


class ExactlyOnceTest(ReplayCase):
    """Each test runs the same scenario in its own Stack and compares with a reference run."""
    WORKER = WORKER
    GROUP = "pay-reminder"

    @classmethod
    def scenario(cls):
        events, cls.orders = scenario()
        return events

    action_set = staticmethod(action_set)

    def test_reference_run_obeys_the_rules(self):
        p = self.ref.procs[WORKER]
        self.assertIsNone(p.poll(), f"the reference worker died (status {p.returncode})")
        acts = self.ref.actions()
        self.assertEqual(len(self.ref_ids), len(set(self.ref_ids)))
        self.assertGreaterEqual(len(acts), 40, "the scenario should produce plenty of actions")
        self.assertEqual({a["channel"] for a in acts}, {"im", "sms", "phone"})
        # who is a repeat buyer when each order is created (orders created then paid before)
        paid_before = {}
        repeat = {}
        for e in self.events:
            key = (e.get("shop_id"), e.get("order_id"))
            if e["topic"] == "order.created":
                o = self.orders[key]
                repeat[key] = paid_before.get((o["shop"], o["buyer"]), 0) >= 1
            elif e["topic"] == "order.paid":
                o = self.orders[key]
                paid_before[(o["shop"], o["buyer"])] = paid_before.get((o["shop"], o["buyer"]), 0) + 1
        by_order, per_day = {}, {}
        for a in acts:
            key = (a["shop_id"], a["order_id"])
            o = self.orders[key]
            n = int(a["action_id"].rsplit(":", 1)[1])
            self.assertEqual(a["action_id"], aid(a["shop_id"], a["order_id"], n))
            self.assertIn(n, (1, 2))
            self.assertEqual(a["buyer_id"], o["buyer"])
            self.assertEqual((a["reason"], a["worker"]), ("payment_reminder", WORKER))
            self.assertEqual(a["deadline_at"], o["deadline"], a)
            self.assertLessEqual(a["not_before"], o["deadline"], a)
            self.assertGreaterEqual(a["not_before"], o["created"], a)
            if o["end"] is not None:
                self.assertLessEqual(a["not_before"], o["end"], f"sent after paid/closed: {a}")
            m = minute_of_day(a["not_before"])
            if a["channel"] == "sms":
                self.assertTrue(8 * 60 <= m < 22 * 60, f"sms in quiet hours: {a}")
                self.assertLessEqual(len(a["text"]), 70, a["text"])
                self.assertTrue(a["text"].endswith(SUFFIX), a["text"])
            if a["channel"] == "phone":
                self.assertTrue(in_phone_window(a["not_before"]), a)
            if o["buyer"] == "b1" and a["shop_id"] == "e1":
                self.assertNotEqual(a["channel"], "sms", f"opted out of sms: {a}")
            self.assertFalse(o["buyer"] == "b2" and a["shop_id"] == "e2", f"opted out: {a}")
            by_order.setdefault(key, {})[n] = a
            day = local(a["not_before"]).date()
            per_day.setdefault((a["shop_id"], a["buyer_id"], day), []).append(a["channel"])
        for (shop, buyer, day), chans in per_day.items():
            self.assertLessEqual(len(chans), 3, (shop, buyer, day, chans))
            self.assertLessEqual(chans.count("sms"), 1, (shop, buyer, day, chans))
            self.assertLessEqual(chans.count("phone"), 1, (shop, buyer, day, chans))
            week = sum(c.count("sms") for (s2, b2, d2), c in per_day.items()
                       if (s2, b2) == (shop, buyer) and 0 <= (day - d2).days < 7)
            self.assertLessEqual(week, 2, (shop, buyer, day))
        checked_table = 0
        for key, ns in by_order.items():
            o = self.orders[key]
            if 1 in ns and 2 in ns:
                self.assertNotEqual(ns[1]["channel"], ns[2]["channel"], ns)
            if o["kind"] == "flash_sale":
                if 1 in ns:
                    self.assertEqual((ns[1]["channel"], ns[1]["not_before"]),
                                     ("im", o["created"] + 10 * MIN))
                if 2 in ns:
                    self.assertEqual((ns[2]["channel"], ns[2]["not_before"]),
                                     ("sms", o["created"] + 20 * MIN))
                continue
            if 2 in ns:
                self.assertLessEqual(ns[2]["not_before"], o["deadline"] - 2 * H, ns[2])
                if 1 in ns:
                    self.assertGreaterEqual(ns[2]["not_before"], ns[1]["not_before"] + 4 * H)
            if 1 in ns and repeat[key]:
                self.assertEqual(ns[1]["template"], "payment_reminder/repeat")
                self.assertGreaterEqual(ns[1]["not_before"], o["deadline"] - 24 * H)
            elif 1 in ns and o["total"] < 50000:
                c = local(o["created"])
                mid = int(datetime(c.year, c.month, c.day, tzinfo=TZ).timestamp() * 1000)
                cm = c.hour * 60 + c.minute
                want = (mid + 10 * H if cm < 8 * 60 else mid + 14 * H if cm < 11 * 60
                        else o["created"] + 30 * MIN if cm < 15 * 60 else mid + 34 * H)
                self.assertEqual((ns[1]["channel"], ns[1]["not_before"]), ("im", want),
                                 f"order created {iso(o['created'])}: {ns[1]}")
                checked_table += 1
            elif 1 in ns:
                self.assertIn(ns[1]["channel"], ("phone", "sms"), ns[1])
        self.assertGreaterEqual(checked_table, 5)

    def test_two_processes_of_the_same_instance_never_double_fire(self):
        s = self.new_stack()
        k1 = s.start_worker(WORKER, "-i", "0", *FAST)
        k2 = s.start_worker(WORKER, "-i", "0", *FAST)
        self.assertNotEqual(k1, k2)
        self.pub(s, self.events)
        s.wait_applied(timeout=60)
        self.assertIsNone(s.procs[k1].poll())
        self.assertIsNone(s.procs[k2].poll())
        self.assert_same_as_reference(s)

    def test_kefuctl_sim_two_instances_and_a_kill_match_one_instance(self):
        sim = Stack(clock="simulated")  # only for its config file: kefuctl sim needs no stack
        sim.write_conf()
        r = sim.kefuctl("sim", "--orders", "60", "--seed", "3", "--tail", "72")
        sim.stop()
        if r.returncode != 0:
            self.skipTest(f"kefuctl sim unavailable: {r.stderr.strip()[:200]}")
        events = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
        self.assertGreater(len(events), 100)
        one = self.new_stack()
        one.start_worker(WORKER, *FAST)
        self.pub(one, events)
        one.wait_applied(timeout=60)
        two = self.new_stack()
        inst = ("-o", "pay-reminder.instances=2", *FAST)
        two.start_worker(WORKER, "-i", "0", *inst)
        k1 = two.start_worker(WORKER, "-i", "1", *inst)
        half = len(events) // 2
        self.pub(two, events[:half])
        two.kill(k1)
        self.pub(two, events[half:])
        two.start_worker(WORKER, "-i", "1", *inst)
        two.wait_applied(timeout=60)
        for st in (one, two):
            for k, p in st.procs.items():
                self.assertIsNone(p.poll(), f"{k} died (status {p.returncode})")
        ids = self.action_ids(two)
        self.assertEqual(len(ids), len(set(ids)), "an action_id appears twice")
        want = action_set(one)
        self.assertGreaterEqual(len(want), 5, "the simulation should remind someone")
        self.assertEqual(action_set(two), want)
        for a in one.actions():
            if a["channel"] == "sms":
                self.assertLessEqual(len(a["text"]), 70, a["text"])
                self.assertTrue(a["text"].endswith(SUFFIX), a["text"])


if __name__ == "__main__":
    unittest.main()
