"""kefu-review-repair end to end: the real broker, the worker and Redis on the simulated clock,
driven with kefuctl pub (workers/review-repair/README.md, DOMAIN.md §0 and §3).

Most tests share one Stack and one worker (SharedStackCase). The simulated clock only moves
forward, so every test takes its own days (alloc_days) after those of the tests before it, and
its own shop ids; timers of earlier tests' cases (reassignment, day 25, day 30) fire in later
tests, which is why every check filters by shop. The exactly-once tests run their own Stacks.

Ids (README "Cases"): case `rv:<shop>:<review_id>`; tasks `<case>:contact`, `<case>:reassign`,
`<case>:explain`; contacts `<case>:im`, `<case>:phone1`.
"""
import json
import random
import re
import signal
import time
import unittest
from datetime import date, datetime

from kefu_harness import (DAY, MIN, SEC, TZ, H, ReplayCase, SharedStackCase, clock, iso, local,
                          optout, shop_config, wait_for)

WORKER = "kefu-review-repair"
GROUP = "review-repair"

CAUSES = ("product", "subjective", "service", "logistics", "malicious", "other")
# the plan of each cause (README "Plan"), as a marker the task summary must carry
PLAN_MARK = {"product": "补发", "subjective": "优惠券", "service": "道歉", "logistics": "道歉",
             "malicious": "保留证据"}
STAT_FIELDS = ("reviews", "good", "neutral", "bad", "opened", "malicious", "resolved",
               "modified", "deleted", "expired", "explained", "failed")


# ---------------------------------------------------------------------- event builders

def review(shop, rid, rating, text, at, buyer=None, order=None, sku="k1", topic="review.posted",
           event_id=None, title="纯棉毛巾", nick=None):
    e = {"topic": topic, "event_id": event_id or f"{topic[7:]}-{shop}-{rid}", "shop_id": shop,
         "review_id": rid, "order_id": order or f"o-{rid}", "sku_id": sku, "rating": rating,
         "at": iso(at), "item_title": title}
    if buyer is not False:
        b = buyer or f"b-{rid}"
        e["buyer"] = {"buyer_id": b, "nick": nick or f"nick{b}"}
    if text is not None:
        e["text"] = text
    return e


def modified(shop, rid, rating, text, at, buyer=None, order=None, sku="k1", event_id=None):
    return review(shop, rid, rating, text, at, buyer=buyer, order=order, sku=sku,
                  topic="review.modified", event_id=event_id)


def deleted(shop, rid, at, event_id=None, order=None):
    return {"topic": "review.deleted", "event_id": event_id or f"deleted-{shop}-{rid}",
            "shop_id": shop, "review_id": rid, "order_id": order or f"o-{rid}", "at": iso(at)}


def case_upd(shop, rid, status, at, agent=None, note=None, comp=None, event_id=None, case=None):
    e = {"topic": "case.updated", "event_id": event_id or f"cu-{shop}-{rid}-{status}-{at}",
         "shop_id": shop, "case_id": case or cid(shop, rid), "status": status, "at": iso(at)}
    if agent:
        e["agent_id"] = agent
    if note:
        e["note"] = note
    if comp is not None:
        e["compensation_fen"] = comp
    return e


def cid(shop, rid):
    return f"rv:{shop}:{rid}"


def rid_of(action_id):
    """rv:<shop>:<review>:<what> -> (shop, review, what)."""
    parts = action_id.split(":")
    assert len(parts) == 4 and parts[0] == "rv", action_id
    return parts[1], parts[2], parts[3]


def causes_of(s):
    return [c for c in re.split(r"[\s,;|/+，、]+", s or "") if c]


def truthy(v):
    return v not in (None, "", "0", "false", "no")


_ZERO = re.compile(r"[¥￥]\s*0(?:\.0+)?(?![\d.])|(?<![\d.])0(?:\.0+)?\s*(?:元|分|fen)"
                   r"|(?:补偿|compensation\w*)\s*[:：=]?\s*0(?![\d.])")


def summary_amounts(summary):
    """The money amounts a task summary names, in fen: ¥10, ￥10.00, 10元, 1000分/fen."""
    out = set()
    for m in re.finditer(r"[¥￥]\s*(\d+(?:\.\d+)?)", summary):
        out.add(round(float(m.group(1)) * 100))
    for m in re.finditer(r"(?<![\d.])(\d+(?:\.\d+)?)\s*元", summary):
        out.add(round(float(m.group(1)) * 100))
    for m in re.finditer(r"(?<![\d.])(\d+)\s*(?:分|fen)", summary):
        out.add(int(m.group(1)))
    if _ZERO.search(summary):
        out.add(0)
    return out


# ---------------------------------------------------------------------- the shared stack

def tearDownModule():
    RvTest.stop_shared()


class RvTest(SharedStackCase):
    """Helpers over the shared stack."""
    WORKER = WORKER
    FIRST_DAY = date(2029, 1, 1)

    # -- reading
    def ids(self, shop, whats=None):
        return {i for i in self.acts(shop) if whats is None or rid_of(i)[2] in whats}

    def case(self, shop, rid):
        return self.s.hash(f"kefu:case:{{{shop}}}:{cid(shop, rid)}")

    def loads(self, shop):
        """ZSET kefu:agents:{shop} as {agent: open cases} (zero entries dropped)."""
        z = self.s.redis().zrange(f"kefu:agents:{{{shop}}}", 0, -1, withscores=True)
        return {m.decode(): int(v) for m, v in z if int(v) != 0}

    def stats(self, shop, day):
        h = self.s.redis().hgetall(f"kefu:stats:rv:{{{shop}}}:{self.days.ymd(day)}")
        return {k.decode(): int(v) for k, v in h.items()}

    def stats_all_days(self, shop):
        """{yyyymmdd: {field: n}} of every kefu:stats:rv day hash of the shop."""
        out = {}
        for k in self.s.redis().scan_iter(f"kefu:stats:rv:{{{shop}}}:*"):
            out[k.decode().rsplit(":", 1)[1]] = {
                f.decode(): int(v) for f, v in self.s.redis().hgetall(k).items()}
        return out

    def total(self, shop, field):
        return sum(d.get(field, 0) for d in self.stats_all_days(shop).values())

    def agent_stats(self, shop):
        return {k: int(v) for k, v in self.s.hash(f"kefu:stats:rvagent:{{{shop}}}").items()}

    def open_tasks(self, prefix):
        """Members of ZSET kefu:tasks starting with prefix, as {task_id: due ms}."""
        z = self.s.redis().zrange("kefu:tasks", 0, -1, withscores=True)
        return {m.decode(): int(v) for m, v in z if m.decode().startswith(prefix)}

    # -- checking
    def check_task(self, topic, a, shop, rid, what="contact", agent=None, severity=None,
                   due=None, at=None, kind=None, buyer=None, order=None):
        ctx = f"{cid(shop, rid)}:{what}: {a}"
        tid = f"{cid(shop, rid)}:{what}"
        self.assertEqual(topic, "action.task", ctx)
        self.assertEqual(a.get("task_id"), tid, ctx)
        self.assertEqual(a.get("event_id", tid), tid, ctx)
        self.assertEqual(a.get("shop_id"), shop, ctx)
        self.assertEqual(a.get("case_id"), cid(shop, rid), ctx)
        self.assertEqual(a.get("worker"), WORKER, ctx)
        if what == "contact":
            self.assertEqual(a.get("reason"), "review_repair", ctx)
        elif "reason" in a:  # not pinned for reassign/explain: the repair or the task's kind
            self.assertIn(a.get("reason"), ("review_repair", a.get("kind")), ctx)
        if kind:
            self.assertEqual(a.get("kind"), kind, ctx)
        if agent is not None:
            if agent:
                self.assertEqual(a.get("agent_id"), agent, ctx)
            else:
                self.assertFalse(a.get("agent_id"), f"unassigned: no agent_id: {ctx}")
        if severity:
            self.assertEqual(a.get("severity"), severity, ctx)
        if due is not None:
            self.assertIsInstance(a.get("due_at"), int, ctx)
            self.assertEqual(a["due_at"], due,
                             f"{tid}: due_at {iso(a['due_at'])}, want {iso(due)}")
        if at is not None:
            self.assertIn("occurred_at", a, ctx)
            self.assertEqual(a["occurred_at"], at,
                             f"{tid}: occurred_at {iso(a['occurred_at'])}, want {iso(at)}")
        if buyer:
            self.assertEqual(a.get("buyer_id"), buyer, ctx)
        if order:
            self.assertEqual(a.get("order_id"), order, ctx)

    def check_summary(self, a, causes, comp, text=None):
        s = a.get("summary") or ""
        self.assertTrue(s, f"no summary: {a}")
        if text:
            s = s.replace(text, "")  # a quoted review text names no suggestion
        for c in causes:
            if c in PLAN_MARK:
                self.assertIn(PLAN_MARK[c], s, f"{a['task_id']}: plan of {c} not in {s!r}")
        if "malicious" in causes:
            self.assertIn("不予补偿", s, f"{a['task_id']}: {s!r}")
        amounts = summary_amounts(s)
        self.assertIn(comp, amounts, f"{a['task_id']}: compensation {comp} fen not in summary "
                                     f"{s!r} (amounts read: {amounts})")
        if comp == 0:
            self.assertEqual(amounts, {0}, f"{a['task_id']}: a malicious case suggests "
                                           f"money: {s!r}")

    def check_contact(self, topic, a, shop, rid, channel, due, buyer=None, order=None):
        suffix = "im" if channel == "im" else "phone1"
        aid = f"{cid(shop, rid)}:{suffix}"
        ctx = f"{aid}: {a}"
        self.assertEqual(topic, "action.contact", ctx)
        self.assertEqual(a.get("action_id"), aid, ctx)
        self.assertEqual(a.get("event_id", aid), aid, ctx)
        self.assertEqual(a.get("shop_id"), shop, ctx)
        self.assertEqual(a.get("case_id"), cid(shop, rid), ctx)
        self.assertEqual(a.get("channel"), channel, ctx)
        self.assertEqual(a.get("reason"), "review_repair", ctx)
        self.assertEqual(a.get("contact_class"), "transactional", ctx)
        self.assertEqual(a.get("worker"), WORKER, ctx)
        self.assertEqual(a.get("buyer_id"), buyer or f"b-{rid}", ctx)
        self.assertEqual(a.get("order_id"), order or f"o-{rid}", ctx)
        self.assertEqual(a.get("not_before"), due,
                         f"{aid}: not_before {iso(a.get('not_before') or 0)}, want {iso(due)}")
        self.assertEqual(a.get("occurred_at"), due,
                         f"{aid}: occurred_at {iso(a.get('occurred_at') or 0)}, want {iso(due)}")
        self.assertTrue(a.get("text"), ctx)


# ---------------------------------------------------------------------- opening a case

class OpenTest(RvTest):
    def test_bad_and_neutral_reviews_open_a_case_and_a_task_at_once(self):
        D = self.alloc(1)
        sh = "op"
        self.config(sh, agents=["a1", "a2"])
        t1, t2, t3 = D(0, "10:00"), D(0, "10:05"), D(0, "10:07")
        self.at(t1, review(sh, "r1", "bad", "物流太慢了，等了一个星期才到", t1, buyer="b1",
                           order="o1", sku="k7"))
        # the case, its task and the im contact, in the same simulated second
        acts = self.acts(sh)
        c1 = cid(sh, "r1")
        self.assertEqual(set(acts), {f"{c1}:contact", f"{c1}:im"})
        self.check_task(*acts[f"{c1}:contact"], sh, "r1", agent="a1", severity="high",
                        due=t1 + 30 * MIN, at=t1, kind="review_repair", buyer="b1", order="o1")
        self.check_summary(acts[f"{c1}:contact"][1], ["logistics"], 1000)
        self.check_contact(*acts[f"{c1}:im"], sh, "r1", "im", t1, buyer="b1", order="o1")
        c = self.case(sh, "r1")
        self.assertEqual((c.get("status"), c.get("buyer"), c.get("sku"), c.get("rating"),
                          c.get("agent"), c.get("opened")),
                         ("open", "b1", "k7", "bad", "a1", str(t1)), c)
        with self.subTest("the case hash names review_id and order_id as the README does"):
            self.assertEqual((c.get("review_id"), c.get("order_id")), ("r1", "o1"), c)
        self.assertEqual(causes_of(c.get("causes")), ["logistics"], c)
        self.assertFalse(truthy(c.get("malicious")), c)
        self.assertTrue(any(re.fullmatch(r"[0-9a-f]{8,}", v) for v in c.values()),
                        f"no text hash in the case: {c}")
        ttl = self.s.redis().ttl(f"kefu:case:{{{sh}}}:{c1}")
        self.assertTrue(50 * DAY // 1000 < ttl <= 61 * DAY // 1000, f"case TTL {ttl} s: 60 days")
        rb = self.s.hash(f"kefu:rvbuyer:{{{sh}}}:b1")
        self.assertEqual(rb.get("bad"), "1", rb)
        ttl = self.s.redis().ttl(f"kefu:rvbuyer:{{{sh}}}:b1")
        self.assertTrue(390 * DAY // 1000 < ttl <= 401 * DAY // 1000, f"buyer TTL {ttl} s")
        self.assertEqual(self.loads(sh), {"a1": 1})
        # a neutral review: warn, ¥5, the other agent (a1 has one open case)
        self.at(t2, review(sh, "r2", "neutral", "尺码偏大，穿着不好看", t2, buyer="b2", order="o2"))
        acts = self.acts(sh)
        c2 = cid(sh, "r2")
        self.assertEqual(set(acts), {f"{c1}:contact", f"{c1}:im", f"{c2}:contact", f"{c2}:im"})
        self.check_task(*acts[f"{c2}:contact"], sh, "r2", agent="a2", severity="warn",
                        due=t2 + 30 * MIN, at=t2, kind="review_repair", buyer="b2", order="o2")
        self.check_summary(acts[f"{c2}:contact"][1], ["subjective"], 500)
        self.check_contact(*acts[f"{c2}:im"], sh, "r2", "im", t2, buyer="b2", order="o2")
        self.assertEqual(self.case(sh, "r2").get("rating"), "neutral")
        self.assertEqual(self.loads(sh), {"a1": 1, "a2": 1})
        before = (self.stats(sh, 0), self.case(sh, "r1"), self.loads(sh))
        # the same review posted again (another event id): nothing changes
        self.at(t3, review(sh, "r1", "bad", "物流太慢了，等了一个星期才到", t1, buyer="b1",
                           order="o1", sku="k7", event_id="again-r1"))
        self.assertEqual(len(self.acts(sh)), 4)
        self.assertEqual((self.stats(sh, 0), self.case(sh, "r1"), self.loads(sh)), before)
        # a good review opens nothing: it only counts
        self.pub(review(sh, "r3", "good", "质量很好，物流也快，好评", t3, buyer="b3", order="o3"))
        self.assertEqual(len(self.acts(sh)), 4)
        self.assertEqual(self.case(sh, "r3"), {})
        self.assertEqual(self.loads(sh), {"a1": 1, "a2": 1})
        self.assertFalse(truthy(self.s.hash(f"kefu:rvbuyer:{{{sh}}}:b3").get("bad")))
        st = self.stats(sh, 0)
        # "a second posting of the same review_id changes nothing": a good one too
        self.pub(review(sh, "r3", "good", "质量很好，物流也快，好评", t3, buyer="b3", order="o3",
                        event_id="again-r3"))
        with self.subTest("a re-posted good review is not counted again"):
            self.assertEqual(self.stats(sh, 0), st)
        self.assertEqual({k: st.get(k, 0) for k in ("reviews", "good", "neutral", "bad", "opened",
                                                      "malicious", "cause:logistics",
                                                      "cause:subjective", "cause:product")},
                         {"reviews": 3, "good": 1, "neutral": 1, "bad": 1, "opened": 2,
                          "malicious": 0, "cause:logistics": 1, "cause:subjective": 1,
                          "cause:product": 0}, st)
        ag = self.agent_stats(sh)
        self.assertEqual((ag.get("a1:cases"), ag.get("a2:cases")), (1, 1), ag)
        sku = {k: int(v) for k, v in self.s.hash(f"kefu:stats:rvsku:{{{sh}}}").items()}
        self.assertEqual({k: v for k, v in sku.items() if not k.startswith("k1:good")},
                         {"k7:bad:logistics": 1, "k1:neutral:subjective": 1}, sku)

    def test_outside_working_hours_the_task_is_due_after_the_start_and_the_call_waits(self):
        """Working hours 09:00-22:00: inside, due +30 min and im at once; outside, due 30 min
        after the next start and a phone call at the next phone window (10:00)."""
        D = self.alloc(2)
        sh = "ph"
        self.config(sh, agents=["a1"])
        rows = [  # review, posted, task due, channel, contact due
            ("p06", D(0, "06:00"), D(0, "09:30"), "phone", D(0, "10:00")),
            ("p0859", D(0, "08:59"), D(0, "09:30"), "phone", D(0, "10:00")),
            ("p09", D(0, "09:00"), D(0, "09:30"), "im", D(0, "09:00")),
            ("p2159", D(0, "21:59"), D(0, "22:29"), "im", D(0, "21:59")),
            ("p2230", D(0, "22:30"), D(1, "09:30"), "phone", D(1, "10:00")),
            ("pdel", D(0, "23:00"), D(1, "09:30"), None, None),  # deleted before its call
        ]
        texts = ["质量不行，有线头", "客服态度恶劣", "物流太慢", "尺码偏小", "太贵了，不值",
                 "有色差"]
        steps = {}
        for i, (r, t, due, ch, cdue) in enumerate(rows):
            steps.setdefault(t, []).append(review(sh, r, "bad", texts[i], t))
        steps.setdefault(D(1, "08:00"), []).append(deleted(sh, "pdel", D(1, "08:00")))
        times = set(steps) | {D(0, "09:59:59"), D(0, "10:00"), D(1, "09:59:59"), D(1, "10:00"),
                              D(1, "12:00")}
        contact_of = {r: (ch, cdue) for r, _, _, ch, cdue in rows if ch}
        for t in sorted(times):
            self.tick(t)
            if t in steps:
                self.pub(*steps[t])
            acts = self.acts(sh)
            want = {f"{cid(sh, r)}:{'im' if ch == 'im' else 'phone1'}"
                    for r, (ch, cdue) in contact_of.items() if cdue <= t}
            # (a second call, 24 h after an unanswered first one, is test_at_most_two_calls')
            got = {i for i in acts if rid_of(i)[2] in ("im", "phone1")}
            self.assertEqual(sorted(got), sorted(want), f"contacts at {iso(t)}")
            for r, posted, due, ch, cdue in rows:
                if posted <= t:
                    k = f"{cid(sh, r)}:contact"
                    self.assertIn(k, acts, f"at {iso(t)}")
                    self.check_task(*acts[k], sh, r, agent="a1", severity="high", due=due,
                                    at=posted, kind="review_repair")
                if ch and cdue <= t:
                    self.check_contact(*acts[f"{cid(sh, r)}:{'im' if ch == 'im' else 'phone1'}"],
                                       sh, r, ch, cdue)
        self.assertEqual(self.case(sh, "pdel").get("status"), "resolved")

    def test_at_most_two_calls_and_none_after_the_first_contact(self):
        D = self.alloc(5)
        sh = "p2"
        self.config(sh, agents=["a1"])
        t = D(0, "23:00")
        self.at(t, review(sh, "q1", "bad", "质量不行", t), review(sh, "q2", "bad", "质量不行", t))
        self.at(D(1, "09:59:59"))
        self.assertEqual(self.ids(sh, ("im", "phone1", "phone2")), set())
        self.at(D(1, "10:00"))
        acts = self.acts(sh)
        for r in ("q1", "q2"):
            self.check_contact(*acts[f"{cid(sh, r)}:phone1"], sh, r, "phone", D(1, "10:00"))
        self.at(D(1, "12:00"), case_upd(sh, "q2", "contacted", D(1, "12:00"), agent="a1"))
        for d in (2, 3, 4):
            self.at(D(d, "12:00"))
        acts = self.acts(sh)
        calls = {r: sorted(i for i in acts if rid_of(i)[1] == r and rid_of(i)[2] not in
                           ("contact", "reassign", "explain")) for r in ("q1", "q2")}
        self.assertEqual(calls["q2"], [f"{cid(sh, 'q2')}:phone1"], "no call after contact")
        self.assertIn(calls["q1"], ([f"{cid(sh, 'q1')}:phone1"],
                                    [f"{cid(sh, 'q1')}:phone1", f"{cid(sh, 'q1')}:phone2"]))
        p2 = acts.get(f"{cid(sh, 'q1')}:phone2")
        if p2:  # a second attempt: a call, on a later day, in a phone window
            self.assertEqual(p2[1].get("channel"), "phone", p2)
            nb = p2[1].get("not_before")
            self.assertGreaterEqual(nb, D(2, "00:00"), p2)
            m = local(nb).hour * 60 + local(nb).minute
            self.assertTrue(any(a <= m < b for a, b in ((600, 690), (900, 990), (1170, 1230))),
                            p2)

    def test_the_shops_hours_windows_and_amounts(self):
        """shop.config working_hours 08:00-20:00, one phone window 08:30-09:00, ¥20 bad, ¥8
        neutral."""
        D = self.alloc(2)
        sh = "cf"
        self.config(sh, agents=["k1"], working_hours={"start": "08:00", "end": "20:00"},
                    phone_windows=[{"start": "08:30", "end": "09:00"}],
                    compensation_bad_fen=2000, compensation_neutral_fen=800)
        self.at(D(0, "07:00"), review(sh, "c1", "bad", "质量不行", D(0, "07:00")))
        self.at(D(0, "08:10"), review(sh, "c2", "bad", "客服态度恶劣", D(0, "08:10")))
        self.at(D(0, "08:29:59"))
        self.assertNotIn(f"{cid(sh, 'c1')}:phone1", self.acts(sh))
        self.at(D(0, "08:30"))
        self.at(D(0, "20:30"), review(sh, "c3", "neutral", "物流太慢", D(0, "20:30")))
        self.at(D(1, "08:29:59"))
        acts = self.acts(sh)
        self.assertNotIn(f"{cid(sh, 'c3')}:phone1", acts)
        self.at(D(1, "08:30"))
        acts = self.acts(sh)
        self.check_task(*acts[f"{cid(sh, 'c1')}:contact"], sh, "c1", due=D(0, "08:30"),
                        at=D(0, "07:00"), severity="high", agent="k1")
        self.check_task(*acts[f"{cid(sh, 'c2')}:contact"], sh, "c2", due=D(0, "08:40"),
                        at=D(0, "08:10"), severity="high", agent="k1")
        self.check_task(*acts[f"{cid(sh, 'c3')}:contact"], sh, "c3", due=D(1, "08:30"),
                        at=D(0, "20:30"), severity="warn", agent="k1")
        self.check_summary(acts[f"{cid(sh, 'c1')}:contact"][1], ["product"], 2000)
        self.check_summary(acts[f"{cid(sh, 'c3')}:contact"][1], ["logistics"], 800)
        self.check_contact(*acts[f"{cid(sh, 'c1')}:phone1"], sh, "c1", "phone", D(0, "08:30"))
        self.check_contact(*acts[f"{cid(sh, 'c2')}:im"], sh, "c2", "im", D(0, "08:10"))
        self.check_contact(*acts[f"{cid(sh, 'c3')}:phone1"], sh, "c3", "phone", D(1, "08:30"))
        self.assertEqual(self.ids(sh, ("im", "phone1")),
                         {f"{cid(sh, 'c1')}:phone1", f"{cid(sh, 'c2')}:im",
                          f"{cid(sh, 'c3')}:phone1"})


# ---------------------------------------------------------------------- assignment

class AssignTest(RvTest):
    def test_least_loaded_agent_ties_to_the_first_and_closing_frees_the_slot(self):
        D = self.alloc(1)
        sh = "as"
        self.config(sh, agents=["a1", "a2", "a3"])
        self.config("as0")  # no agents: unassigned
        want = {}

        def post(minute, r, rating="bad"):
            t = D(0, f"10:{minute:02d}")
            self.at(t, review(sh, r, rating, "质量不行", t))
            a = self.acts(sh)[f"{cid(sh, r)}:contact"]
            want[r] = a[1].get("agent_id")
            self.assertEqual(self.case(sh, r).get("agent"), want[r])

        post(0, "r1")
        post(1, "r2", "neutral")
        post(2, "r3")
        post(3, "r4")
        self.assertEqual([want[r] for r in ("r1", "r2", "r3", "r4")], ["a1", "a2", "a3", "a1"])
        self.assertEqual(self.loads(sh), {"a1": 2, "a2": 1, "a3": 1})
        self.at(D(0, "10:05"), deleted(sh, "r2", D(0, "10:05")))
        self.assertEqual(self.loads(sh), {"a1": 2, "a3": 1})
        post(6, "r5")
        self.assertEqual(want["r5"], "a2")
        self.at(D(0, "10:07"), case_upd(sh, "r3", "failed", D(0, "10:07"), agent="a3",
                                        note="买家拒绝沟通"))
        self.assertEqual(self.case(sh, "r3").get("status"), "failed")
        self.assertEqual(self.loads(sh), {"a1": 2, "a2": 1})
        post(8, "r6")
        self.assertEqual(want["r6"], "a3")
        self.at(D(0, "10:09"), case_upd(sh, "r1", "resolved", D(0, "10:09"), agent="a1"))
        self.assertEqual(self.loads(sh), {"a1": 1, "a2": 1, "a3": 1})
        post(10, "r7")
        self.assertEqual(want["r7"], "a1")  # a tie of three: the first in the list
        self.assertEqual(self.loads(sh), {"a1": 2, "a2": 1, "a3": 1})
        ag = self.agent_stats(sh)
        self.assertEqual({k: ag.get(k, 0) for k in ("a1:cases", "a2:cases", "a3:cases",
                                                     "a1:resolved", "a2:resolved",
                                                     "a3:resolved")},
                         {"a1:cases": 3, "a2:cases": 2, "a3:cases": 2, "a1:resolved": 1,
                          "a2:resolved": 1, "a3:resolved": 0}, ag)
        # a shop without agents: the task has no agent
        self.at(D(0, "10:11"), review("as0", "u1", "bad", "质量不行", D(0, "10:11")))
        a = self.acts("as0")
        self.check_task(*a[f"{cid('as0', 'u1')}:contact"], "as0", "u1", agent="",
                        at=D(0, "10:11"), due=D(0, "10:41"))
        self.assertFalse(self.case("as0", "u1").get("agent"))
        self.assertIn(f"{cid('as0', 'u1')}:im", a)

    def test_reassigned_once_after_two_hours_untouched_not_when_contacted(self):
        D = self.alloc(1)
        sh = "rs"
        self.config(sh, agents=["a1", "a2", "a3"])
        for i, r in enumerate(("r1", "r2", "r3", "r4")):
            t = D(0, f"10:{i * 10:02d}")
            self.at(t, review(sh, r, "bad", "客服态度恶劣", t))
        agents = {r: self.case(sh, r).get("agent") for r in ("r1", "r2", "r3", "r4")}
        self.assertEqual(agents, {"r1": "a1", "r2": "a2", "r3": "a3", "r4": "a1"})
        self.at(D(0, "11:00"), case_upd(sh, "r2", "contacted", D(0, "11:00"), agent="a2"))
        # r1 (10:00) goes at 12:00 to the least-loaded other agent: a2 and a3 have one each
        # -> a2; r2 was contacted: stays; r3 (10:20) at 12:20: a1 has 1 (r4), a2 2 -> a1;
        # r4 (10:30) at 12:30: a2 has 2, a3 none -> a3 (the reassigned case moves the load)
        plan = [("r1", D(0, "12:00"), "a2"), ("r3", D(0, "12:20"), "a1"),
                ("r4", D(0, "12:30"), "a3")]
        ticks = sorted({t for _, t, _ in plan} | {t - SEC for _, t, _ in plan}
                       | {D(0, "12:10"), D(0, "13:00"), D(0, "16:00")})
        for t in ticks:
            self.tick(t)
            got = self.ids(sh, ("reassign",))
            self.assertEqual(sorted(got), sorted(f"{cid(sh, r)}:reassign"
                                                 for r, due, _ in plan if due <= t),
                             f"reassignments at {iso(t)}")
        acts = self.acts(sh)
        for r, due, agent in plan:
            self.check_task(*acts[f"{cid(sh, r)}:reassign"], sh, r, "reassign", agent=agent,
                            at=due)
            self.assertEqual(self.case(sh, r).get("agent"), agent, f"{r}: {self.case(sh, r)}")
        self.assertEqual(self.case(sh, "r2").get("agent"), "a2")
        self.assertEqual(self.loads(sh), {"a1": 1, "a2": 2, "a3": 1})
        # a new case after all that: the least loaded is a1 (tie with a3, first in the list)
        self.at(D(0, "16:00"), review(sh, "r5", "bad", "客服态度恶劣", D(0, "16:00")))
        self.assertEqual(self.case(sh, "r5").get("agent"), "a1")
        self.at(D(0, "20:00"))
        self.assertEqual(len(self.ids(sh, ("reassign",))), 4)  # r5 at 18:00; none twice


    def test_reassignment_goes_to_an_agent_on_duty_now(self):
        """shop.config `agents` are the agents on duty: one taken off duty after a case opened
        gets no reassignment."""
        D = self.alloc(1)
        sh = "od"
        self.config(sh, agents=["a1", "a2", "a3"])
        for i, r in enumerate(("r1", "r2", "r3", "r4")):
            t = D(0, f"10:0{i}")
            self.at(t, review(sh, r, "bad", "客服态度恶劣", t))
        self.assertEqual({r: self.case(sh, r).get("agent") for r in ("r1", "r2", "r3", "r4")},
                         {"r1": "a1", "r2": "a2", "r3": "a3", "r4": "a1"})
        t = D(0, "10:30")
        self.at(t, case_upd(sh, "r2", "resolved", t, agent="a2"),
                case_upd(sh, "r3", "contacted", t, agent="a3"),
                case_upd(sh, "r4", "contacted", t, agent="a1"))
        self.assertEqual(self.loads(sh), {"a1": 2, "a3": 1})
        # a2 goes off duty (the least loaded, with no open case)
        self.pub(dict(shop_config(sh, f"{sh}小店", agents=["a1", "a3"]), event_id="cfg-od-2"))
        self.at(D(0, "12:00"))
        acts = self.acts(sh)
        self.assertIn(f"{cid(sh, 'r1')}:reassign", acts)
        self.check_task(*acts[f"{cid(sh, 'r1')}:reassign"], sh, "r1", "reassign", agent="a3",
                        at=D(0, "12:00"))
        self.assertEqual(self.case(sh, "r1").get("agent"), "a3")


# ---------------------------------------------------------------------- causes

# (review, rating, text, buyer, causes). Real-style texts; each only holds the words of its
# causes (none of the DOMAIN §3 words of the others, nor 差/少/味...).
CAUSE_ROWS = [
    ("p1", "bad", "收到就发现有线头，做工质量太差", None, ["product"]),
    ("p2", "neutral", "有色差，和图片不一样", None, ["product"]),
    ("p3", "bad", "买的是假货吧，还过期了", None, ["product"]),
    ("s1", "neutral", "尺码偏大，穿着不好看", None, ["subjective"]),
    ("s2", "bad", "太贵了，不值这个价", None, ["subjective"]),
    ("v1", "bad", "客服态度恶劣，问了半天不理人", None, ["service"]),
    ("v2", "neutral", "申请退款三天了售后还没处理", None, ["service"]),
    ("l1", "neutral", "物流太慢了，等了一个星期才到", None, ["logistics"]),
    ("m1", "bad", "快递包装压坏了，杯子都裂了", None, ["product", "logistics"]),
    ("m2", "bad", "颜色不喜欢想换，客服一直不回复", None, ["subjective", "service"]),
    ("m3", "neutral", "质量还行就是尺码偏小，物流也慢", None,
     ["product", "subjective", "logistics"]),
    ("x1", "bad", "东西是假的，给钱就改评价，不然天天给差评", None, ["product", "malicious"]),
    ("x2", "neutral", "物流慢，返现20元我就改好评", None, ["logistics", "malicious"]),
    ("x3", "bad", "客服不理人，赔偿我100块，否则曝光你们", None, ["service", "malicious"]),
    ("o1", "neutral", "就这样吧", None, ["other"]),
    ("c1", "bad", "看着有点土气", None, ["subjective"]),  # the shop's own word
    # a buyer with a record: two earlier neutral/bad reviews (a good one does not count):
    # marked repeat_complainer, not malicious (DOMAIN §3: malicious only on evidence)
    ("h1", "bad", "物流太慢了", "bh", ["logistics"]),
    ("h2", "neutral", "尺码偏小", "bh", ["subjective"]),
    ("h3", "good", "很好，下次还来", "bh", None),
    ("h4", "bad", "包装压坏了", "bh", ["product", "logistics"]),
    # two bad reviews in another shop do not make a record here
    ("z3", "bad", "物流太慢了", "bz", ["logistics"]),
]


class CauseTest(RvTest):
    def test_causes_plans_and_malicious_reviews(self):
        D = self.alloc(1)
        sh, other = "cz", "cz2"
        self.config(sh, agents=["a1", "a2"],
                    cause_keywords=[{"cause": "subjective", "words": ["土气"]}])
        self.config(other, agents=["a1"])
        t = D(0, "10:00")
        self.tick(t)
        self.pub(review(other, "z1", "bad", "质量不行", t, buyer="bz"),
                 review(other, "z2", "bad", "质量不行", t, buyer="bz"),
                 review(other, "c1", "bad", "看着有点土气", t))
        evs = []
        for r, rating, text, buyer, _ in CAUSE_ROWS:
            evs.append(review(sh, r, rating, text, t, buyer=buyer,
                              sku="kg" if rating == "good" else f"k{len(evs) % 3}"))
        self.pub(*evs)
        acts = self.acts(sh)
        problems = []
        want_stats = {"reviews": 0, "good": 0, "neutral": 0, "bad": 0, "opened": 0,
                      "malicious": 0}
        want_sku = {}
        for (r, rating, text, buyer, causes), e in zip(CAUSE_ROWS, evs):
            want_stats["reviews"] += 1
            want_stats[rating] += 1
            c = self.case(sh, r)
            if causes is None:
                if c or any(rid_of(i)[1] == r for i in acts):
                    problems.append(f"{r}: a good review opened something: {c}")
                continue
            want_stats["opened"] += 1
            mal = "malicious" in causes
            want_stats["malicious"] += mal
            for k in causes:
                want_stats[f"cause:{k}"] = want_stats.get(f"cause:{k}", 0) + 1
                key = f"{e['sku_id']}:{rating}:{k}"
                want_sku[key] = want_sku.get(key, 0) + 1
            got = causes_of(c.get("causes"))
            if got != causes:
                problems.append(f"{r} {text!r}: causes {got}, want {causes}")
            if truthy(c.get("malicious")) != mal:
                problems.append(f"{r} {text!r}: malicious {c.get('malicious')!r}, want {mal}")
            task = acts.get(f"{cid(sh, r)}:contact")
            if not task:
                problems.append(f"{r}: no task")
                continue
            comp = 0 if mal else {"bad": 1000, "neutral": 500}[rating]
            try:
                self.check_task(*task, sh, r, severity="high" if rating == "bad" else "warn",
                                due=t + 30 * MIN, at=t, kind="review_repair")
                self.check_summary(task[1], causes, comp, text)
            except AssertionError as ex:
                problems.append(f"{r} {text!r}: {ex}")
            contacts = sorted(i for i in acts if rid_of(i)[1] == r and
                              rid_of(i)[2] in ("im", "phone1", "phone2"))
            want_c = [] if mal else [f"{cid(sh, r)}:im"]
            if contacts != want_c:
                problems.append(f"{r} {text!r}: contacts {contacts}, want {want_c}")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))
        # the same word means nothing in a shop without it
        self.assertEqual(causes_of(self.case(other, "c1").get("causes")), ["other"])
        self.assertEqual(self.s.hash(f"kefu:rvbuyer:{{{sh}}}:bh").get("bad"), "3")
        self.assertEqual({r: self.case(sh, r).get("repeat_complainer") for r in ("h1", "h2", "h4")},
                         {"h1": "0", "h2": "0", "h4": "1"})
        self.assertEqual(self.s.hash(f"kefu:rvbuyer:{{{other}}}:bz").get("bad"), "2")
        st = self.stats(sh, 0)
        self.assertEqual({k: st.get(k, 0) for k in set(want_stats) | {"cause:other"}},
                         dict({"cause:other": 0}, **want_stats), st)
        sku = {k: int(v) for k, v in self.s.hash(f"kefu:stats:rvsku:{{{sh}}}").items()
               if not k.startswith("kg:")}
        self.assertEqual(sku, want_sku)


# ---------------------------------------------------------------------- case.updated

class CaseUpdateTest(RvTest):
    def test_first_contact_compensation_resolved_and_failed(self):
        D = self.alloc(1)
        sh = "fc"
        self.config(sh, agents=["a1", "a2"])
        t0 = D(0, "10:00")
        self.at(t0, review(sh, "r1", "bad", "质量不行", t0),
                review(sh, "r2", "neutral", "物流太慢", t0))
        self.assertEqual((self.case(sh, "r1").get("agent"), self.case(sh, "r2").get("agent")),
                         ("a1", "a2"))
        fc = f"kefu:rv:fc:{{{sh}}}:"
        self.at(D(0, "10:20"), case_upd(sh, "r1", "contacted", D(0, "10:20"), agent="a1"))
        c = self.case(sh, "r1")
        self.assertEqual(c.get("status"), "contacted", c)
        first = c.get("first_contact")
        self.assertIn(first, (str(D(0, "10:20")), str(20 * MIN)), c)
        self.assertEqual(self.s.redis().lrange(fc + "a1", 0, -1), [str(20 * MIN).encode()])
        self.at(D(0, "10:40"), case_upd(sh, "r1", "contacted", D(0, "10:40"), agent="a1"))
        self.assertEqual(self.case(sh, "r1").get("first_contact"), first, "the first one only")
        self.assertEqual(self.s.redis().llen(fc + "a1"), 1)
        self.at(D(0, "10:50"), case_upd(sh, "r2", "contacted", D(0, "10:50"), agent="a2"))
        self.assertEqual(self.s.redis().lrange(fc + "a2", 0, -1), [str(50 * MIN).encode()])
        self.at(D(0, "11:00"), case_upd(sh, "r1", "promised", D(0, "11:00"), agent="a1",
                                        note="买家答应追评", comp=300))
        c = self.case(sh, "r1")
        self.assertEqual(c.get("status"), "promised", c)
        with self.subTest("case field compensation_fen (README) adds up case.updated's"):
            self.assertEqual(c.get("compensation_fen"), "300", c)
        self.assertEqual(self.open_tasks(cid(sh, "r1")), {f"{cid(sh, 'r1')}:contact": t0 + 30 * MIN})
        self.at(D(0, "11:30"), case_upd(sh, "r2", "failed", D(0, "11:30"), agent="a2",
                                        note="买家态度坚决"))
        self.at(D(0, "12:00"), case_upd(sh, "r1", "resolved", D(0, "12:00"), agent="a1",
                                        comp=200))
        c = self.case(sh, "r1")
        self.assertEqual(c.get("status"), "resolved", c)
        with self.subTest("case field compensation_fen (README) adds up case.updated's"):
            self.assertEqual(c.get("compensation_fen"), "500", c)
        self.assertEqual(self.case(sh, "r2").get("status"), "failed")
        rb = self.s.hash(f"kefu:rvbuyer:{{{sh}}}:b-r2")
        self.assertTrue(any("firm" in f or "firm" in v for f, v in rb.items()),
                        f"failed: the buyer is marked firm: {rb}")
        self.assertEqual(self.loads(sh), {})
        ag = self.agent_stats(sh)
        self.assertEqual({k: ag.get(k, 0) for k in ("a1:cases", "a1:resolved", "a1:comp_fen",
                                                     "a2:cases", "a2:resolved", "a2:comp_fen")},
                         {"a1:cases": 1, "a1:resolved": 1, "a1:comp_fen": 500,
                          "a2:cases": 1, "a2:resolved": 0, "a2:comp_fen": 0}, ag)
        st = self.stats(sh, 0)
        self.assertEqual({k: st.get(k, 0) for k in STAT_FIELDS},
                         {"reviews": 2, "good": 0, "neutral": 1, "bad": 1, "opened": 2,
                          "malicious": 0, "resolved": 1, "modified": 0, "deleted": 0,
                          "expired": 0, "explained": 0, "failed": 1}, st)
        # closed cases leave the open-task registry; nothing more happens to them
        self.assertEqual(self.open_tasks(f"rv:{sh}:"), {})
        self.at(D(0, "16:00"))
        self.assertEqual(self.ids(sh), {f"{cid(sh, r)}:{w}" for r in ("r1", "r2")
                                        for w in ("contact", "im")})


# ---------------------------------------------------------------------- window and outcome

class WindowTest(RvTest):
    def test_day_25_explanation_day_30_close_and_outcomes(self):
        D = self.alloc(31)
        sh = "wd"
        self.config(sh, agents=["a1"])
        t0 = D(0, "10:00")
        texts = {"r1": "质量不行", "r2": "有线头", "r3": "物流太慢", "r4": "尺码偏小",
                 "r5": "客服不理人", "r6": "太贵了", "r7": "有色差"}
        rating = {r: "neutral" if r == "r4" else "bad" for r in texts}
        steps = [
            (t0, [review(sh, r, rating[r], x, t0) for r, x in texts.items()]),
            (D(0, "10:30"), [case_upd(sh, r, "contacted", D(0, "10:30"), agent="a1")
                             for r in texts]),
            (D(1, "01:00"), [review(sh, "r8", "bad", "质量不行", D(1, "01:00"))]),
            (D(1, "02:00"), [deleted(sh, "r8", D(1, "02:00"))]),
            (D(2, "10:00"), [case_upd(sh, "r5", "failed", D(2, "10:00"), agent="a1")]),
            (D(3, "10:00"), [modified(sh, "r3", "good", "客服很负责，已解决，好评", D(3, "10:00"))]),
            (D(4, "10:00"), [modified(sh, "r6", "good", texts["r6"], D(4, "10:00"))]),
            (D(5, "10:00"), [modified(sh, "r7", "neutral", texts["r7"], D(5, "10:00"))]),
            (D(10, "10:00"), [deleted(sh, "r4", D(10, "10:00"))]),
            (D(26, "10:00"), [case_upd(sh, "r2", "explained", D(26, "10:00"), agent="a1",
                                       note="已回复解释")]),
        ]
        base = {f"{cid(sh, r)}:{w}" for r in texts for w in ("contact", "im")}
        base.add(f"{cid(sh, 'r8')}:contact")
        explain = {f"{cid(sh, r)}:explain" for r in ("r1", "r2", "r7")}
        d25, d30 = D(25, "10:00"), D(30, "10:00")
        checkpoints = {D(1, "10:00"), d25 - SEC, d25, d30 - SEC, d30, D(31, "12:00")}
        evs = dict(steps)
        for t in sorted(set(evs) | checkpoints):
            self.at(t, *evs.get(t, []))
            want = {i for i in base if t >= D(1, "01:00") or ":r8:" not in i}
            want |= explain if t >= d25 else set()
            self.assertEqual(sorted(self.ids(sh)), sorted(want), f"actions at {iso(t)}")
            if t == D(3, "10:00"):
                self.assertEqual(self.open_tasks(cid(sh, "r3") + ":"), {},
                                 "a resolved case leaves kefu:tasks")
                self.assertIn(f"{cid(sh, 'r1')}:contact", self.open_tasks(cid(sh, "r1") + ":"))
            if t == d25:
                acts = self.acts(sh)
                for r in ("r1", "r2", "r7"):
                    self.check_task(*acts[f"{cid(sh, r)}:explain"], sh, r, "explain", agent="a1",
                                    due=d30, at=d25, kind="review_explanation")
                    self.assertEqual(self.open_tasks(f"{cid(sh, r)}:explain"),
                                     {f"{cid(sh, r)}:explain": d30})
            if t == d30 - SEC:
                self.assertEqual(self.case(sh, "r1").get("status"), "contacted")
        status = {r: self.case(sh, r).get("status") for r in list(texts) + ["r8"]}
        self.assertEqual(status, {"r1": "expired", "r2": "explained", "r3": "resolved",
                                  "r4": "resolved", "r5": "failed", "r6": "resolved",
                                  "r7": "expired", "r8": "resolved"})
        notes = {r: self.case(sh, r).get("note") for r in ("r3", "r6", "r7")}
        self.assertEqual(notes["r6"], "rating_changed_text_unchanged", notes)
        with self.subTest("bad -> neutral, same text: the rating changed, the text did not"):
            self.assertEqual(notes["r7"], "rating_changed_text_unchanged", notes)
        self.assertNotEqual(notes["r3"], "rating_changed_text_unchanged", notes)
        self.assertEqual(self.open_tasks(f"rv:{sh}:"), {}, "closed cases leave kefu:tasks")
        self.assertEqual(self.loads(sh), {})
        # results by the day of the event
        got = self.stats_all_days(sh)
        want = {0: {"reviews": 7, "bad": 6, "neutral": 1, "opened": 7},
                1: {"reviews": 1, "bad": 1, "opened": 1, "deleted": 1, "resolved": 1},
                2: {"failed": 1}, 3: {"modified": 1, "resolved": 1},
                4: {"modified": 1, "resolved": 1}, 5: {"modified": 1, "resolved": 0},
                10: {"deleted": 1, "resolved": 1}, 30: {"expired": 2}}
        for d, exp in want.items():
            row = got.get(D.ymd(d), {})
            self.assertEqual({k: row.get(k, 0) for k in exp}, exp, f"day {d}: {row}")
        self.assertEqual(sum(r.get("explained", 0) for r in got.values()), 1, got)
        self.assertEqual(sum(r.get("expired", 0) for r in got.values()), 2, got)
        self.assertEqual(sum(r.get("resolved", 0) for r in got.values()), 4, got)
        ag = self.agent_stats(sh)
        self.assertEqual((ag.get("a1:cases"), ag.get("a1:resolved")), (8, 4), ag)
        fc = self.s.redis().lrange(f"kefu:rv:fc:{{{sh}}}:a1", 0, -1)
        self.assertEqual(sorted(int(x) for x in fc), [30 * MIN] * 7)


# ---------------------------------------------------------------------- the task registry

class TaskRegistryTest(RvTest):
    def test_tasks_are_registered_and_leave_with_their_case(self):
        D = self.alloc(1)
        sh = "tk"
        self.config(sh, agents=["a1", "a2"])
        t1 = D(0, "10:00")
        self.at(t1, review(sh, "r1", "bad", "质量不行", t1),
                review(sh, "g1", "good", "很好", t1))
        c1 = cid(sh, "r1")
        self.assertEqual(self.open_tasks(f"rv:{sh}:"), {f"{c1}:contact": t1 + 30 * MIN})
        j = self.s.redis().get(f"kefu:task:{c1}:contact")
        self.assertIsNotNone(j, "kefu:task:<task_id> holds the task")
        self.assertEqual(json.loads(j).get("task_id"), f"{c1}:contact")
        self.at(D(0, "10:10"), deleted(sh, "r1", D(0, "10:10")))
        self.assertEqual(self.open_tasks(f"rv:{sh}:"), {})
        self.assertIsNone(self.s.redis().get(f"kefu:task:{c1}:contact"))
        # outside working hours; reassigned at 01:00; both tasks go when the review turns good
        t2 = D(0, "23:00")
        c2 = cid(sh, "r2")
        self.at(t2, review(sh, "r2", "bad", "质量不行", t2))
        self.assertEqual(self.open_tasks(f"rv:{sh}:"), {f"{c2}:contact": D(1, "09:30")})
        self.at(D(1, "01:00"))
        self.assertIn(f"{c2}:reassign", self.open_tasks(f"rv:{sh}:"))
        self.at(D(1, "02:00"), modified(sh, "r2", "good", "卖家处理很及时，好评", D(1, "02:00")))
        self.assertEqual(self.open_tasks(f"rv:{sh}:"), {})
        self.assertEqual(self.case(sh, "r2").get("status"), "resolved")
        self.at(D(1, "10:00"))
        self.assertNotIn(f"{c2}:phone1", self.ids(sh), "the call of a resolved case")


# ---------------------------------------------------------------------- bad input

class BadEventTest(RvTest):
    def test_bad_events_are_rejected_and_the_worker_keeps_working(self):
        D = self.alloc(1)
        sh = "bd"
        self.config(sh, agents=["a1"])
        t = D(0, "10:00")
        self.tick(t)
        good = review(sh, "r1", "bad", "质量不行", t)
        variants = [dict(good, event_id="bad-1", rating="terrible"),
                    dict(good, event_id="bad-2", at="yesterday"),
                    dict(good, event_id="bad-6", buyer="b1"),
                    case_upd(sh, "r1", "maybe", t, event_id="bad-7"),
                    case_upd(sh, "r1", "contacted", t, comp=-5, event_id="bad-8")]
        for f, n in (("review_id", 3), ("order_id", 4), ("rating", 5)):
            e = dict(good, event_id=f"bad-{n}")
            del e[f]
            variants.append(e)
        e = case_upd(sh, "r1", "contacted", t, event_id="bad-9")
        del e["case_id"]
        variants.append(e)
        e = case_upd(sh, "r1", "contacted", t, event_id="bad-10")
        del e["status"]
        variants.append(e)
        seq = self.s.journal_seq()
        for v in variants:
            r = self.s.pub([v])
            self.assertEqual(r.returncode, 1, f"{v['event_id']} accepted: {r.stdout}")
        self.assertEqual(self.s.journal_seq(), seq)
        # accepted by the broker, odd for the worker: counted or skipped, nothing breaks
        # (updates of cases not open yet: kept for their review, DESIGN §3.10)
        before = self.s.worker_stats(GROUP).get("early", 0)
        self.pub(case_upd(sh, "nope", "contacted", t),
                 case_upd(sh, "x", "resolved", t, case="rv:bd:ghost"))
        wait_for(lambda: self.s.worker_stats(GROUP).get("early", 0) == before + 2,
                 timeout=3, what="early += 2")
        self.pub(modified(sh, "ghost", "good", "好", t), deleted(sh, "ghost2", t),
                 review(sh, "nobuyer", "bad", "质量不行", t, buyer=False),
                 review(sh, "notext", "neutral", None, t),
                 clock(D(0, "01:00")))  # the clock never goes back
        self.assertIsNone(self.s.procs[WORKER].poll())
        self.pub(good)
        acts = self.acts(sh)
        self.check_task(*acts[f"{cid(sh, 'r1')}:contact"], sh, "r1", agent="a1", at=t,
                        due=t + 30 * MIN)
        self.check_contact(*acts[f"{cid(sh, 'r1')}:im"], sh, "r1", "im", t)
        self.assertEqual(causes_of(self.case(sh, "notext").get("causes")), ["other"])
        self.assertEqual(self.case(sh, "ghost"), {})


# ---------------------------------------------------------------------- kefuctl report reviews

def walk(doc):
    """Every dict inside a JSON document."""
    if isinstance(doc, dict):
        yield doc
        for v in doc.values():
            yield from walk(v)
    elif isinstance(doc, list):
        for v in doc:
            yield from walk(v)


class ReportTest(RvTest):
    def test_results_and_kefuctl_report_reviews(self):
        D = self.alloc(2)
        sh = "rp"
        self.config(sh, agents=["a1"])
        t0, t1 = D(0, "10:00"), D(1, "10:00")
        self.at(t0, review(sh, "r1", "bad", "质量不行", t0), review(sh, "r2", "neutral", "物流太慢", t0),
                review(sh, "r3", "good", "很好", t0))
        self.at(D(0, "10:20"), case_upd(sh, "r1", "contacted", D(0, "10:20"), agent="a1"))
        self.at(D(0, "10:40"), case_upd(sh, "r2", "contacted", D(0, "10:40"), agent="a1"))
        self.at(D(0, "11:00"), case_upd(sh, "r1", "resolved", D(0, "11:00"), agent="a1", comp=500))
        self.at(t1, review(sh, "r4", "bad", "给钱就改评价，不然天天给差评", t1),
                review(sh, "r5", "neutral", "尺码偏小", t1))
        self.at(D(1, "11:00"), deleted(sh, "r5", D(1, "11:00")))
        want = {0: {"reviews": 3, "good": 1, "neutral": 1, "bad": 1, "opened": 2, "malicious": 0,
                    "resolved": 1, "deleted": 0},
                1: {"reviews": 2, "good": 0, "neutral": 1, "bad": 1, "opened": 2, "malicious": 1,
                    "resolved": 1, "deleted": 1}}
        for d, exp in want.items():
            st = self.stats(sh, d)
            self.assertEqual({k: st.get(k, 0) for k in exp}, exp, f"day {d}: {st}")
        ag = self.agent_stats(sh)
        self.assertEqual({k: ag.get(k, 0) for k in ("a1:cases", "a1:resolved", "a1:comp_fen")},
                         {"a1:cases": 4, "a1:resolved": 2, "a1:comp_fen": 500}, ag)
        r = self.s.kefuctl("report", "reviews", "--shop", sh, "--json")
        if r.returncode != 0 and "not built" in r.stderr:
            self.skipTest("kefuctl report reviews: not built yet")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        doc = json.loads(r.stdout)
        rows = {}
        for d in walk(doc):
            if d.get("day") in (D.iso_day(0), D.iso_day(1), D.ymd(0), D.ymd(1)) and \
                    d.get("shop", sh) == sh:
                rows[d["day"].replace("-", "")] = d
        self.assertEqual(sorted(rows), [D.ymd(0), D.ymd(1)], doc)
        matched = 0
        for day, exp in want.items():
            row = rows[D.ymd(day)]
            for k, v in exp.items():
                if k in row:
                    matched += 1
                    self.assertEqual(row[k], v, f"{D.iso_day(day)} {k}: {row}")
        self.assertGreaterEqual(matched, 8, f"the day rows name few of the README's fields: {rows}")
        by_cause = {0: {"logistics": 1, "product": 1}, 1: {"malicious": 1, "subjective": 1}}
        for day, exp in by_cause.items():
            row = rows[D.ymd(day)]
            if "by_cause" in row:
                self.assertEqual({k: v for k, v in row["by_cause"].items() if v}, exp, row)
            else:
                got = {k.split(":", 1)[1]: v for k, v in row.items()
                       if k.startswith("cause:") and v}
                if got:
                    self.assertEqual(got, exp, row)
        skus = [d for d in walk(doc) if d.get("sku_id", d.get("sku")) == "k1"]
        for d in skus:  # per product: neutral/bad counts (r1..r5 are all k1)
            for k, v in (("neutral", 2), ("bad", 2)):
                if isinstance(d.get(k), int):
                    self.assertEqual(d[k], v, d)
        agents = [d for d in walk(doc) if d.get("agent", d.get("agent_id")) == "a1"]
        self.assertTrue(agents, f"no per-agent row: {doc}")
        a = agents[0]
        self.assertEqual(a.get("cases"), 4, a)
        self.assertEqual(a.get("resolved"), 2, a)
        if "rate" in a:
            self.assertIn(a["rate"], (0.5, 50, 50.0), a)
        comp = [v for k, v in a.items() if "comp" in k]
        self.assertTrue(comp and comp[0] in (500, 5, 5.0), a)
        first = [v for k, v in a.items() if "first" in k]
        # median of 20 and 40 minutes: 30 min (20 or 40 taking the lower or upper one)
        ok = {m * f for m in (20, 30, 40) for f in (1, 60, 60000)} | {m / 60 for m in (20, 30, 40)}
        self.assertTrue(first and any(x in ok for x in first), a)


# ---------------------------------------------------------------------- exactly once

TEXTS = ["质量不行，有线头", "有色差", "尺码偏大", "太贵了，不值", "客服态度恶劣", "申请退款没人理",
         "物流太慢了", "快递包装压坏了", "就这样吧", "给钱就改评价，不然天天给差评", "很好，下次还来",
         "看着有点土气", "质量还行就是尺码偏小，物流也慢"]
SHOP_AGENTS = {"e1": ["a1", "a2", "a3"], "e2": ["a9"], "e3": []}


def rv_scenario(seed=7, first=date(2030, 1, 7), nreviews=70, days=33):
    """A deterministic scenario in three shops: reviews over three days at any hour (inside
    and outside working hours), re-posted reviews, case updates (contacted, promised with
    compensation, resolved, failed, explained), modifications (rating only, to good, with a
    new text) and deletions over the 30-day window, an opt-out, unknown cases; sys.clock every
    3 hours to past day 30."""
    rng = random.Random(seed)
    t0 = int(datetime(first.year, first.month, first.day, tzinfo=TZ).timestamp() * 1000)
    end = t0 + days * DAY
    timed = []
    n = [0]

    def add(t, e):
        if t <= end:
            e["event_id"] = e.get("event_id") or f"g{n[0]}"
            timed.append((t, n[0], e))
            n[0] += 1

    add(t0, shop_config("e1", "一号店", agents=SHOP_AGENTS["e1"]))
    add(t0, shop_config("e2", "二号店", agents=SHOP_AGENTS["e2"], compensation_bad_fen=2000))
    add(t0, shop_config("e3", "三号店", cause_keywords=[{"cause": "subjective",
                                                         "words": ["土气"]}]))
    add(t0 + 5 * MIN, optout("e1", "b4", ["phone"]))
    for i in range(nreviews):
        s = rng.choice(list(SHOP_AGENTS))
        b, r = f"b{rng.randrange(1, 9)}", f"r{i}"
        t = t0 + rng.randrange(0, 72 * 60) * MIN
        rating = rng.choices(["good", "neutral", "bad"], [3, 3, 4])[0]
        text = rng.choice(TEXTS)
        e = review(s, r, rating, text, t, buyer=b, sku=f"k{rng.randrange(1, 4)}",
                   event_id=f"g-r{i}")
        add(t, e)
        if rng.random() < 0.1:
            add(t + 40 * MIN, dict(e, event_id=f"g-rr{i}"))
        if rating == "good":
            continue
        agent = rng.choice(SHOP_AGENTS[s]) if SHOP_AGENTS[s] else None
        u = t
        for st in rng.choice([[], ["contacted"], ["contacted", "promised"],
                              ["contacted", "promised", "resolved"], ["contacted", "failed"],
                              ["explained"], ["promised", "contacted"]]):
            u += rng.choice([20, 90, 150, 600, 3000]) * MIN
            comp = rng.choice([None, 300, 500]) if st in ("promised", "resolved") else None
            add(u, case_upd(s, r, st, u, agent=agent, comp=comp, event_id=f"g-u{i}-{st}"))
        x = rng.random()
        tm = t + rng.randrange(1, 29 * 24) * H
        if x < 0.15:
            add(tm, modified(s, r, "good", "卖家处理很好，改好评", tm, buyer=b, event_id=f"g-m{i}"))
        elif x < 0.25:
            add(tm, modified(s, r, rng.choice(["good", "neutral", "bad"]), text, tm, buyer=b,
                             event_id=f"g-m{i}"))
        elif x < 0.35:
            add(tm, deleted(s, r, tm, event_id=f"g-d{i}"))
    add(t0 + 50 * H, case_upd("e1", "ghost", "contacted", t0 + 50 * H, event_id="g-ghost"))
    k = 0
    for t in range(t0, end + 1, 3 * H):
        add(t + 0.5, clock(t, event_id=f"g-t{k}"))  # after the events of the same time
        k += 1
    timed.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in timed]


ACTION_FIELDS = ("case_id", "order_id", "buyer_id", "agent_id", "kind", "severity", "due_at",
                 "channel", "not_before", "reason", "contact_class", "summary", "text",
                 "occurred_at")


class ExactlyOnceTest(ReplayCase):
    """Each test runs the same scenario in its own Stack and compares with a reference run."""
    WORKER = WORKER
    GROUP = "review-repair"
    ACTION_FIELDS = ACTION_FIELDS

    @classmethod
    def scenario(cls):
        return rv_scenario()

    def test_reference_run_obeys_the_rules(self):
        p = self.ref.procs[WORKER]
        self.assertIsNone(p.poll(), f"the reference worker died (status {p.returncode})")
        self.assertEqual(len(self.ref_ids), len(set(self.ref_ids)), "an action id twice")
        whats, problems = set(), []

        def expect(ok, what, a):
            if not ok:
                problems.append(f"{what}: {a}")

        posted = {}
        for e in self.events:
            if e["topic"] == "review.posted":
                posted.setdefault((e["shop_id"], e["review_id"]), e)
        for t, i, a in self.ref.action_entries():
            shop, r, what = rid_of(i)
            whats.add(what)
            e = posted.get((shop, r))
            expect(e and e["rating"] != "good", "an action for no neutral/bad review", i)
            expect(a.get("case_id") == cid(shop, r), "case_id", a)
            if what in ("im", "phone1", "phone2"):
                expect(t == "action.contact", "topic", i)
                expect(e and "给钱" not in e.get("text", ""), "a contact for a money demand", a)
                expect((a.get("reason"), a.get("contact_class")) ==
                       ("review_repair", "transactional"), "reason/class", a)
                expect(a.get("channel") == ("im" if what == "im" else "phone"), "channel", a)
            else:
                expect(t == "action.task", "topic", i)
                expect(what in ("contact", "reassign", "explain"), "task kind", i)
                expect(isinstance(a.get("due_at"), int), "due_at", a)
                agents = SHOP_AGENTS[shop]
                if agents:
                    expect(a.get("agent_id") in agents, "agent_id not one of the shop's", a)
                else:
                    expect(not a.get("agent_id"), "agent_id in a shop without agents", a)
                if what == "explain" and e:
                    day25 = int(datetime.fromisoformat(e["at"]).timestamp() * 1000) + 25 * DAY
                    expect(a.get("kind") == "review_explanation", "explain kind", a)
                    expect((a.get("occurred_at"), a.get("due_at")) == (day25, day25 + 5 * DAY),
                           "explain at day 25, due day 30", a)
        self.assertEqual(problems, [], f"{len(problems)} problems:\n" + "\n".join(problems[:20]))
        self.assertTrue({"contact", "im", "phone1", "reassign", "explain"} <= whats, whats)


if __name__ == "__main__":
    unittest.main()
