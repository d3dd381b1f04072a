"""Real traffic (issue 11; DESIGN §3.10, DOMAIN §0): imported history, stale facts, holds and
events in any order, through the real broker, workers and redis-server.

The real-clock tests cannot choose the wall clock, so they choose the shop's UTC offset: a
shop whose local time is now 03:00 is inside the quiet hours and outside every phone window.
"""
import json
import os
import random
import subprocess
import time
import unittest
from datetime import date, datetime, timedelta, timezone

from kefu_harness import (BIN, DAY, FAST, MIN, SEC, Days, H, Stack, clock, iso, shop_config,
                          wait_for)

WORKERS = ("kefu-pay-reminder", "kefu-logistics", "kefu-review-repair", "kefu-crm-care")
GROUPS = ("pay-reminder", "logistics", "review-repair", "crm-care")


def now_ms():
    return int(time.time() * 1000)


def offset_for_local(hour, minute=0):
    """The UTC offset (minutes) at which the local time now is about hour:minute."""
    utc = datetime.now(timezone.utc)
    mins = utc.hour * 60 + utc.minute
    off = (hour * 60 + minute - mins) % 1440
    return off - 1440 if off > 720 else off


def local_of(ms, off):
    return datetime.fromtimestamp(ms / 1000, timezone(timedelta(minutes=off)))


def sim_lines(*args):
    r = subprocess.run([os.path.join(BIN, "kefuctl"), "sim", *args], capture_output=True,
                       text=True, check=True)
    return [json.loads(x) for x in r.stdout.splitlines() if x.strip()]


def ev(topic, eid, shop, **kw):
    e = {"topic": topic, "event_id": eid, "shop_id": shop}
    e.update(kw)
    return e


def start_fleet(clock_mode):
    s = Stack(clock=clock_mode).start()
    for w in WORKERS:
        s.start_worker(w, *FAST)
    return s


def quiet(s, seconds=1.5, timeout=20):
    """Waits until kefu:actions and kefu:blocked stop growing for `seconds` (real-clock timers
    fire on the workers' 1 s ticks)."""
    r = s.redis()
    last, since, t0 = None, time.time(), time.time()
    while time.time() - t0 < timeout:
        cur = (r.xlen("kefu:actions"), r.xlen("kefu:blocked"))
        if cur != last:
            last, since = cur, time.time()
        elif time.time() - since >= seconds:
            return cur
        time.sleep(0.1)
    raise AssertionError(f"actions/blocks still growing after {timeout}s: {last}")


def held_counts(s, what):
    """{reason: n} of the workers' `<what>:<reason>` counters (what: stale, backfill)."""
    out = {}
    for g in GROUPS:
        for k, v in s.worker_stats(g).items():
            if k.startswith(what + ":"):
                out[k[len(what) + 1:]] = out.get(k[len(what) + 1:], 0) + v
    return out


def stale_counts(s):
    return held_counts(s, "stale")


def backfill_counts(s):
    return held_counts(s, "backfill")


# ---------------------------------------------------------------------- history import

class HistoryImportTest(unittest.TestCase):
    """A shop's day 60 days ago and the 48 h after it (kefuctl sim, the sys.clock lines left
    out), published to a real-clock stack: nothing reaches a buyer, an agent or an operator
    about those facts; the state is built all the same."""

    @classmethod
    def setUpClass(cls):
        start = (datetime.now(timezone(timedelta(hours=8))) - timedelta(days=60)).date()
        cls.history = [e for e in sim_lines("--start", start.isoformat(), "--days", "1",
                                            "--tail", "48")
                       if e["topic"] != "sys.clock"]

    def setUp(self):
        self.s = start_fleet("real")

    def tearDown(self):
        self.s.stop()

    def publish(self, *extra):
        r = self.s.pub(self.history, "--quiet", *extra)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.s.wait_applied(timeout=60)
        quiet(self.s)

    def assert_state_built(self):
        r = self.s.redis()
        profiles = list(r.scan_iter("kefu:buyer:{s1}:*", count=1000))
        self.assertGreater(len(profiles), 200, "crm-care profiles not built")
        self.assertGreater(len(list(r.scan_iter("kefu:order:{s1}:*", count=1000))), 500)
        segs = self.s.hash("kefu:crm:segs:{s1}")
        self.assertTrue(any(k.startswith("seg:") and int(v) > 0 for k, v in segs.items()), segs)
        # kefuctl stat shows the timers Redis holds, on the real clock too
        pending = sum(r.zcard(k) for k in r.scan_iter("kefu:timers:crm-care:*"))
        self.assertGreater(pending, 0)

        def shown():
            st = json.loads(self.s.kefuctl("stat", "--json", check=True).stdout)
            return [f for f in st["fleet"] if f["daemon"] == "kefu-crm-care"
                    and int(f.get("timers_pending", 0)) == pending]
        wait_for(shown, timeout=10, what=f"kefu-crm-care timers_pending {pending} in stat")

    def test_without_backfill_nothing_stale_goes_out(self):
        self.publish()
        self.assertEqual(self.s.actions(), [], "actions about facts 60 days old")
        stale = stale_counts(self.s)
        for kind in ("care_shipped", "care_same_city", "logistics_lost", "logistics_stalled",
                     "logistics_overdue_shipping"):
            self.assertGreater(stale.get(kind, 0), 0, (kind, stale))
        blocked = self.s.blocked()
        st = [b for b in blocked if b["block"] == "stale"]
        self.assertEqual(len(st), sum(stale.values()))
        now = now_ms()
        for b in st:  # every stale block names its fact, older than any window
            self.assertLess(int(b["fact_at"]), now - 12 * H, b)
        self.assert_state_built()
        self.assert_reports_true()

    def assert_reports_true(self):
        """The reports after an import: rates never over 100%, ages from the facts, no
        anomaly dated today, no rows of zeros."""
        doc = json.loads(self.s.kefuctl("report", "logistics", "--json", check=True).stdout)
        self.assertTrue(doc["carriers"])
        for c in doc["carriers"]:
            self.assertLessEqual(c["anomalies"], c["shipments"], c)
        for o in doc["open"]:
            self.assertGreater(o["oldest_hours"], 50 * 24, o)
        today = datetime.now(timezone(timedelta(hours=8))).date().isoformat()
        self.assertFalse([d for d in doc["days"] if d["day"] == today], doc["days"])
        pay = json.loads(self.s.kefuctl("report", "payments", "--json", check=True).stdout)
        for row in pay["rows"]:
            self.assertTrue(row["unpaid"] or row["reminded"] or row.get("blocked"), row)

    def test_backfill_builds_state_and_emits_nothing(self):
        self.publish("--backfill")
        self.assertEqual(self.s.actions(), [])
        bf = backfill_counts(self.s)
        self.assertGreater(bf.get("care_shipped", 0), 300, bf)
        # the journal keeps the flag
        r = self.s.kefuctl("tail", "--from-seq", "1", "--count", "1", "--idle-exit", "3")
        self.assertTrue(json.loads(r.stdout.splitlines()[0]).get("backfill"), r.stdout)
        self.assert_state_built()
        self.assert_reports_true()

    def test_what_a_backfill_plans_fires_while_fresh(self):
        """A flash sale created 9 min 55 s ago, imported with --backfill: its first reminder is
        due 10 min after creation, still fresh, and goes out on time."""
        t = now_ms() - 9 * MIN - 55 * SEC
        order = ev("order.created", "bf-o1", "bf", order_id="bf-o1",
                   buyer={"buyer_id": "bb1", "nick": "小林"}, kind="flash_sale", total_fen=9900,
                   items=[{"sku_id": "k1", "title": "毛巾", "qty": 1, "price_fen": 9900}],
                   created_at=iso(t))
        r = self.s.pub([shop_config("bf", name="bf小店"), order], "--backfill")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        wait_for(lambda: any(a.get("action_id") == "pay:bf:bf-o1:1" for a in self.s.actions()),
                 timeout=20, what="the reminder planned by a backfilled order")
        a = next(a for a in self.s.actions() if a.get("action_id") == "pay:bf:bf-o1:1")
        self.assertEqual(a["fact_at"], t)


# ---------------------------------------------------------------------- HTTP backfill

class HttpBackfillTest(unittest.TestCase):
    def test_query_backfill_sets_the_flag_and_a_bad_query_is_rejected(self):
        with Stack(clock="real") as s:
            s.start_worker("kefu-crm-care", *FAST)
            t = now_ms()
            s.pub([shop_config("hb", name="hb小店")] + [
                ev("order.created", f"hb-c{i}", "hb", order_id=f"o{i}",
                   buyer={"buyer_id": f"b{i}", "nick": "小周"}, total_fen=100,
                   items=[{"sku_id": "k", "title": "袜子", "qty": 1, "price_fen": 100}],
                   created_at=iso(t)) for i in (1, 2)])

            def ship(i):
                return json.dumps(ev("order.shipped", f"hb-s{i}", "hb", order_id=f"o{i}",
                                     buyer_id=f"b{i}", carrier="中通", tracking_no=f"T{i}",
                                     shipped_at=iso(t)), ensure_ascii=False)
            code, body = s.http("POST", "/v1/events/order.shipped?backfill=1", ship(1))
            self.assertEqual(code, 200, body)
            code, body = s.http("POST", "/v1/events/order.shipped", ship(2))
            self.assertEqual(code, 200, body)
            code, body = s.http("POST", "/v1/events/order.shipped?backfill=maybe", ship(3))
            self.assertEqual(code, 400, body)
            self.assertIn("invalid_field", body)
            s.wait_applied()
            ids = {a["action_id"] for a in s.actions()}
            self.assertEqual(ids, {"care:hb:o2:shipped"})  # o1 was imported: no notice
            self.assertEqual(s.worker_stats("crm-care").get("backfill:care_shipped"), 1)


# ---------------------------------------------------------------------- reviews and holds

def review(shop, rid, rating, at, text="质量太差了，线头很多", order=None):
    return ev("review.posted", f"rv-{shop}-{rid}", shop, review_id=rid, order_id=order or rid,
              buyer={"buyer_id": f"b-{rid}", "nick": "小王"}, sku_id="k1", rating=rating,
              text=text, at=iso(at), item_title="真丝枕套")


class ReviewRealClockTest(unittest.TestCase):
    """Old reviews on the real clock, in a shop where it is now 03:00."""

    def test_old_reviews_and_night_holds(self):
        off = offset_for_local(3)
        with Stack(clock="real") as s:
            s.start_worker("kefu-review-repair", *FAST)
            sh = "rq"
            s.pub([shop_config(sh, name="rq小店", agents=["a1"], utc_offset_minutes=off)])
            now = now_ms()
            r = s.pub([review(sh, "old45", "bad", now - 45 * DAY),
                       review(sh, "old10", "bad", now - 10 * DAY),
                       review(sh, "new2", "bad", now - 2 * DAY)])
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            s.wait_applied()
            quiet(s, seconds=2.5)
            acts = {a.get("action_id") or a.get("task_id"): a for a in s.actions()}
            # 45 days: past the 30-day window; 10 days: past the first contact's 7 days
            self.assertFalse([k for k in acts if ":old45:" in k or ":old10:" in k], acts)
            case45 = s.hash(f"kefu:case:{{{sh}}}:rv:{sh}:old45")
            self.assertEqual(case45.get("status"), "expired", case45)
            self.assertEqual(s.hash(f"kefu:case:{{{sh}}}:rv:{sh}:old10").get("status"), "open")
            # 2 days: the first-contact task, due now (never created overdue) ...
            task = acts.get(f"rv:{sh}:new2:contact")
            self.assertIsNotNone(task, acts)
            self.assertGreaterEqual(task["due_at"], now)
            # ... and no phone call at 03:00: held to the next phone window (10:00 local)
            self.assertFalse([a for a in acts.values() if a.get("channel") in ("phone", "sms")],
                             acts)
            due = s.redis().zscore("kefu:timers:review-repair:" + str(self.part(s, sh)),
                                   f"rv:{sh}:new2:phone1")
            self.assertIsNotNone(due, "the call is not planned")
            lt = local_of(int(due), off)
            self.assertEqual((lt.hour, lt.minute), (10, 0), lt)
            self.assertGreater(int(due), now)
            stale = stale_counts(s)
            self.assertGreaterEqual(stale.get("review_repair", 0), 3, stale)

    @staticmethod
    def part(s, shop):
        return s.hash(f"kefu:case:{{{shop}}}:rv:{shop}:new2").get("review-repair") or next(
            k.decode().rsplit(":", 1)[1] for k in s.redis().scan_iter("kefu:timers:review-repair:*")
            if s.redis().zscore(k, f"rv:{shop}:new2:phone1") is not None)


class PayReminderHoldTest(unittest.TestCase):
    """Reminders planned from orders that arrive late (imported, or the worker was down): a
    repeat buyer's call came due in a phone window that is over now. It is never made outside
    the phone windows: held to the next one while that is within 6 h of its time (DOMAIN §0),
    else dropped as stale."""

    def order(self, sh, off, hh, mm):
        """A repeat buyer's order whose call (deadline - 24 h) is due today at hh:mm local."""
        lt = local_of(now_ms(), off)
        call = int(lt.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp() * 1000)
        created = call - 2 * DAY
        buyer = {"buyer_id": f"{sh}-b1", "nick": "老顾客", "name": "李娜"}
        items = [{"sku_id": "k1", "title": "羊毛被", "qty": 1, "price_fen": 29900}]
        return call, [shop_config(sh, name=f"{sh}小店", utc_offset_minutes=off),
                      ev("order.created", f"{sh}-o0", sh, order_id="o0", buyer=buyer,
                         items=items, total_fen=29900, created_at=iso(created - 30 * DAY)),
                      ev("order.paid", f"{sh}-p0", sh, order_id="o0", buyer_id=buyer["buyer_id"],
                         at=iso(created - 30 * DAY + H)),
                      ev("order.created", f"{sh}-o1", sh, order_id="o1", buyer=buyer,
                         items=items, total_fen=29900, created_at=iso(created))]

    def test_a_late_call_is_held_to_the_next_phone_window_or_dropped(self):
        with Stack(clock="real") as s:
            s.start_worker("kefu-pay-reminder", *FAST)
            day_off = offset_for_local(11, 45)   # the 10:00-11:30 window just closed
            night_off = offset_for_local(23, 0)  # quiet hours
            day_call, day = self.order("pd", day_off, 11, 0)
            _, night = self.order("pn", night_off, 20, 0)
            r = s.pub(day + night)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            s.wait_applied()
            quiet(s, seconds=2.5)
            self.assertFalse([a for a in s.actions() if a.get("channel") == "phone"], s.actions())
            part = s.hash("kefu:order:{pd}:o1").get("pay-reminder")
            due = s.redis().zscore(f"kefu:timers:pay-reminder:{part}", "pd:o1:1")
            self.assertIsNotNone(due, "the call is not planned any more")
            at = local_of(int(due), day_off)
            self.assertEqual((at.hour, at.minute), (15, 0), at)  # the next window, same day
            self.assertLessEqual(int(due) - day_call, 6 * H)
            night_blocks = [b for b in s.blocked() if b["shop_id"] == "pn"]
            self.assertEqual([(b["channel"], b["block"]) for b in night_blocks],
                             [("phone", "stale")], night_blocks)


# ---------------------------------------------------------------------- order of arrival

def scenario(shop, D):
    """One buyer's order from creation to a bad review that is then changed, with a profile
    and an opt-out, on the simulated clock: (events in time order)."""
    b = f"{shop}-b1"
    o = f"{shop}-o1"
    tr = f"T{shop}1".upper()
    buyer = {"buyer_id": b, "nick": "小美", "name": "王丽", "city": "乌鲁木齐"}
    items = [{"sku_id": "k1", "title": "纯棉毛巾", "qty": 2, "price_fen": 4950}]

    def scan(state, at, city):
        return ev("logistics.scan", f"{shop}-sc{state}", shop, tracking_no=tr, order_id=o,
                  carrier="中通", state=state, city=city, at=iso(at))
    return [
        ev("buyer.profile", f"{shop}-bp", shop, buyer_id=b, birthday="07-01", tags=["VIP"],
           nick="小美", name="王丽"),
        ev("buyer.optout", f"{shop}-oo", shop, buyer_id=b, channels=["sms"]),
        ev("order.created", f"{shop}-oc", shop, order_id=o, buyer=buyer, items=items,
           total_fen=9900, kind="normal", created_at=iso(D(0, "09:00"))),
        ev("order.paid", f"{shop}-op", shop, order_id=o, at=iso(D(0, "09:40"))),
        # a second order, closed unpaid before its first reminder (14:00)
        ev("order.created", f"{shop}-oc2", shop, order_id=f"{shop}-o2", buyer=buyer, items=items,
           total_fen=9900, kind="normal", created_at=iso(D(0, "09:50"))),
        ev("order.closed", f"{shop}-ox2", shop, order_id=f"{shop}-o2", reason="buyer",
           at=iso(D(0, "10:30"))),
        ev("order.shipped", f"{shop}-os", shop, order_id=o, carrier="中通", tracking_no=tr,
           shipped_at=iso(D(0, "16:00"))),
        scan(103, D(0, "18:00"), "南京"),
        scan(1002, D(1, "02:00"), "西安"),
        scan(1001, D(3, "08:00"), "乌鲁木齐"),
        scan(5, D(3, "10:00"), "乌鲁木齐"),
        scan(301, D(3, "15:00"), "乌鲁木齐"),
        ev("order.confirmed", f"{shop}-of", shop, order_id=o, at=iso(D(4, "10:00"))),
        review(shop, "r1", "bad", D(5, "10:00"), order=o),
        ev("case.updated", f"{shop}-cu", shop, case_id=f"rv:{shop}:r1", agent_id="a1",
           status="contacted", at=iso(D(5, "11:00"))),
        ev("review.modified", f"{shop}-rm", shop, review_id="r1", order_id=o, rating="good",
           text="客服处理很及时，好评", at=iso(D(6, "10:00"))),
    ]


class OrderOfArrivalTest(unittest.TestCase):
    """DESIGN §3.10: the same actions whatever order related events arrive in (payment or close
    before the order, scans before the shipment and out of order, a review change and a case update
    before the review, the opt-out and the profile before the first order). Each permutation
    runs as its own shop in one stack; the action sets are compared with the shop id taken
    out."""

    def test_random_permutations_give_the_same_actions(self):
        D = Days(date(2031, 6, 2), 10)
        rng = random.Random(11)
        orders = {"p0": None, "p1": "reversed"}
        for k in range(2, 6):
            orders[f"p{k}"] = rng.random()
        with start_fleet("simulated") as s:
            s.pub([clock(D(0))])
            events = []
            for sh, how in orders.items():
                s.pub([shop_config(sh, name="排列小店", agents=["a1"])])
                evs = scenario(sh, D)
                if how == "reversed":
                    evs.reverse()
                elif how is not None:
                    random.Random(how).shuffle(evs)
                events.append(evs)
            # interleaved shop by shop, all before the clock moves past any of them
            for evs in events:
                r = s.pub(evs)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            s.pub([clock(D(0) + k * H) for k in range(1, 24 * 12)])
            s.wait_applied(timeout=60)
            got = {}
            for a in s.actions():
                sh = a["shop_id"]
                key = json.dumps({k: (v.replace(sh, "<S>").replace(sh.upper(), "<S>")
                                      if isinstance(v, str) else v)
                                  for k, v in a.items()
                                  if k not in ("event_id", "shop_id", "worker")},
                                 sort_keys=True, ensure_ascii=False)
                got.setdefault(sh, set()).add(key)
            ref = got.get("p0", set())
            kinds = {json.loads(x).get("reason") for x in ref}
            # the scenario means something: order notices, usage care, review repair
            for want in ("care_shipped", "care_same_city", "care_signed", "care_usage",
                         "review_repair"):
                self.assertIn(want, kinds, sorted(kinds))
            for sh in orders:
                self.assertEqual(got.get(sh, set()) ^ ref, set(), f"{sh} differs from p0")
            # the payment came first in some: no reminder anywhere, the order paid
            self.assertFalse([x for x in ref if "payment_reminder" in x])
            for sh in orders:
                self.assertEqual(s.hash(f"kefu:order:{{{sh}}}:{sh}-o1").get("pr_st"), "paid")
                self.assertEqual(s.hash(f"kefu:order:{{{sh}}}:{sh}-o2").get("pr_st"), "closed")
                self.assertEqual(s.hash(f"kefu:case:{{{sh}}}:rv:{sh}:r1").get("status"),
                                 "resolved")
                self.assertEqual(s.profile(sh, f"{sh}-b1").get("orders"), "1")
            self.assertFalse(list(s.redis().scan_iter("kefu:early:*")), "early facts left over")


class FreshnessOverrideTest(unittest.TestCase):
    """A shop's shop.config `freshness` overrides a window by reason (care_shipped) or by group
    (logistics); a window must be positive (the broker rejects it)."""

    def test_per_shop_windows(self):
        D = Days(date(2031, 8, 1), 2)
        with Stack(clock="simulated") as s:
            s.start_worker("kefu-crm-care", *FAST)
            s.start_worker("kefu-logistics", *FAST)
            t = D(0, "12:00")
            tight = [{"kind": "care_shipped", "minutes": 30}, {"kind": "logistics", "minutes": 60}]
            s.pub([clock(t), shop_config("fd", name="fd小店"),
                   shop_config("ft", name="ft小店", freshness=tight)])
            bad = dict(shop_config("fx", name="fx小店", freshness=[{"kind": "logistics",
                                                                    "minutes": 0}]))
            r = s.pub([bad])
            self.assertEqual(r.returncode, 1, r.stdout)
            self.assertIn("invalid_field", r.stdout + r.stderr)
            evs = []
            for sh in ("fd", "ft"):
                evs += [ev("order.created", f"{sh}-c", sh, order_id="o1",
                           buyer={"buyer_id": "b1", "nick": "小许"}, total_fen=100,
                           items=[{"sku_id": "k", "title": "碗", "qty": 1, "price_fen": 100}],
                           created_at=iso(t - 5 * H)),
                        ev("order.paid", f"{sh}-p", sh, order_id="o1", at=iso(t - 5 * H)),
                        # shipped 2 h ago, out of area 2 h ago: facts 2 h old
                        ev("order.shipped", f"{sh}-s", sh, order_id="o1", carrier="中通",
                           tracking_no=f"T{sh}", shipped_at=iso(t - 2 * H)),
                        ev("logistics.scan", f"{sh}-207", sh, order_id="o1", tracking_no=f"T{sh}",
                           carrier="中通", state=207, city="杭州", at=iso(t - 2 * H))]
            s.pub(evs)
            s.wait_applied()
            got = {(a["shop_id"], a.get("reason")) for a in s.actions()}
            self.assertIn(("fd", "care_shipped"), got)
            self.assertIn(("fd", "logistics_out_of_area"), got)
            self.assertFalse([g for g in got if g[0] == "ft"], got)
            stale = stale_counts(s)
            self.assertEqual(stale.get("care_shipped"), 1, stale)
            self.assertEqual(stale.get("logistics_out_of_area"), 2, stale)  # task and contact


class TruthfulTextTest(unittest.TestCase):
    """DOMAIN §0 truthful texts: names, not ids or empty placeholders, in what agents read; the
    review's date in the repair script; an sms that leaves a private item out."""

    def test_summaries_scripts_and_private_items(self):
        D = Days(date(2031, 9, 1), 4)
        with Stack(clock="simulated") as s:
            for w in ("kefu-logistics", "kefu-review-repair", "kefu-pay-reminder"):
                s.start_worker(w, *FAST)
            sh = "tt"
            t0 = D(0, "09:00")
            buyer = {"buyer_id": "b1", "nick": "小许", "name": "许文"}
            s.pub([clock(t0), shop_config(sh, name="tt小店", agents=["a1"],
                                          private_skus=["k-private"])])
            s.pub([ev("order.created", "tt-c1", sh, order_id="o1", buyer=buyer, total_fen=100,
                      items=[{"sku_id": "k", "title": "碗", "qty": 1, "price_fen": 100}],
                      created_at=iso(t0)),
                   ev("order.paid", "tt-p1", sh, order_id="o1", at=iso(t0)),
                   ev("order.created", "tt-c2", sh, order_id="o2",
                      buyer={"buyer_id": "b2", "nick": "小江", "name": "江月"}, total_fen=9900,
                      items=[{"sku_id": "k-private", "title": "私密护理液", "qty": 1,
                              "price_fen": 9900}], created_at=iso(t0)),
                   # at 22:00 (outside working hours): a call at the next phone window
                   review(sh, "r1", "bad", D(0, "22:00"), order="o9")])
            s.pub([clock(t0 + k * H) for k in range(1, 72)])
            s.wait_applied()
            acts = {a.get("action_id") or a.get("task_id") or a.get("alert_id"): a
                    for a in s.actions()}
            task = acts[f"lg:{sh}:o1:overdue_shipping:task"]
            self.assertEqual(task["summary"], "overdue_shipping: 订单 o1 · 许文", task)
            call = acts[f"rv:{sh}:r1:phone1"]
            self.assertIn("您9月1日对真丝枕套的评价", call["text"])
            reminders = [a for a in s.actions() if a.get("order_id") == "o2"
                         and a.get("reason") == "payment_reminder"]
            sms = [a for a in reminders if a["channel"] == "sms"]
            im = [a for a in reminders if a["channel"] == "im"]
            self.assertTrue(sms and im, reminders)
            self.assertNotIn("私密护理液", sms[0]["text"])
            self.assertIn("宝贝", sms[0]["text"])
            self.assertIn("私密护理液", im[0]["text"])  # a chat is private; an sms is not


# ---------------------------------------------------------------------- operator figures

class ErrorReasonTest(unittest.TestCase):
    """Every event a worker cannot apply is counted by reason: in its heartbeat, /stats,
    /metrics and kefuctl stat, and logged once per reason per minute."""

    def test_errors_by_reason_everywhere_and_logged_once(self):
        with Stack(clock="real") as s:
            key = s.start_worker("kefu-crm-care", *FAST)
            t = now_ms()
            bad = [ev("campaign.launch", f"bf-{i}", "er", campaign_id=f"c{i}", segment="whales",
                      channel="im", template="{buyer}亲，新品上市~", window_start_at=iso(t),
                      window_end_at=iso(t + H)) for i in range(5)]  # no such segment
            r = s.pub(bad)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            s.wait_applied()

            def fleet():
                return next((f for f in s.stats()["fleet"]
                             if f["daemon"] == "kefu-crm-care"), {})
            wait_for(lambda: fleet().get("errors_by_reason", {}).get("bad_filter") == 5,
                     timeout=10, what="errors_by_reason in /stats")
            self.assertEqual(fleet()["errors"], 5)
            self.assertIn('kefu_fleet_errors_total{daemon="kefu-crm-care",instance="0",'
                          'reason="bad_filter"} 5', s.metrics())
            out = s.kefuctl("stat", check=True).stdout
            self.assertIn("errors kefu-crm-care/0: bad_filter=5", out)
            lines = [x for x in s.log(key).splitlines() if "(bad_filter)" in x]
            self.assertEqual(len(lines), 1, lines)
            self.assertIn("whales", lines[0])
            self.assertEqual(s.worker_stats("crm-care").get("rejected:bad_filter"), 5)


# ---------------------------------------------------------------------- destinations

class DestinationTest(unittest.TestCase):
    """DOMAIN §2 by destination: the buyer's city in order.created when order.shipped names
    none, mapped to its province."""

    def test_remote_buyer_city_and_area_delay_by_destination(self):
        D = Days(date(2031, 7, 1), 6)
        with Stack(clock="simulated") as s:
            s.start_worker("kefu-logistics", *FAST)
            sh = "dz"
            s.pub([clock(D(0)), shop_config(sh, name="dz小店", agents=["a1"])])

            def order(o, city):
                return [ev("order.created", f"{o}-c", sh, order_id=o,
                           buyer={"buyer_id": f"b{o}", "nick": "小赵", "city": city},
                           items=[{"sku_id": "k", "title": "杯子", "qty": 1, "price_fen": 100}],
                           total_fen=100, created_at=iso(D(0, "08:00"))),
                        ev("order.paid", f"{o}-p", sh, order_id=o, at=iso(D(0, "08:10"))),
                        ev("order.shipped", f"{o}-s", sh, order_id=o, carrier="中通",
                           tracking_no=f"T{o}", shipped_at=iso(D(0, "10:00")))]

            def scan(o, state, at, city):
                return ev("logistics.scan", f"{o}-{state}", sh, tracking_no=f"T{o}",
                          order_id=o, carrier="中通", state=state, city=city, at=iso(at))
            s.pub(order("xj", "乌鲁木齐市") + order("hz", "杭州") + order("bj", "北京") +
                  [scan("xj", 1002, D(0, "12:00"), "南京"),
                   scan("hz", 1002, D(0, "12:00"), "南京"),
                   scan("bj", 1002, D(0, "12:00"), "上海")])
            s.pub([clock(D(0, "13:00")),
                   ev("logistics.area_delay", "ad-bj", sh, cities=["北京"],
                      until=iso(D(3, "12:00")), reason="weather")])
            s.pub([clock(D(0, "12:00") + k * H) for k in range(2, 100)])
            s.wait_applied()
            stalled = {a["order_id"]: a["occurred_at"] for a in s.actions()
                       if a.get("alert_id", "").endswith(":stalled:alert")}
            self.assertEqual(stalled.get("hz"), D(0, "12:00") + 48 * H, stalled)
            self.assertEqual(stalled.get("xj"), D(0, "12:00") + 72 * H, stalled)  # remote
            self.assertEqual(stalled.get("bj"), D(3, "12:00"), stalled)  # muted until then
            notices = {a["order_id"] for a in s.actions()
                       if a.get("reason") == "logistics_area_delay"}
            self.assertEqual(notices, {"bj"})
            self.assertEqual(s.hash(f"kefu:order:{{{sh}}}:xj").get("to_province"), "新疆")


if __name__ == "__main__":
    unittest.main()
