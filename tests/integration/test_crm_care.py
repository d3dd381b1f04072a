"""kefu-crm-care end to end: the real broker, the worker and Redis on the simulated clock,
driven with kefuctl pub (workers/crm-care/README.md, DOMAIN.md §0 and §4, DESIGN.md §2, §3,
§6, §10).

Most tests share one Stack and one worker (SharedStackCase). The simulated clock only moves
forward, so every test takes its own days (alloc_days) after those of the tests before it, and
its own shop ids; timers of earlier tests' buyers (segments, birthdays, win-backs) fire in later
tests, which is why every check filters by shop. The caps shared with kefu-pay-reminder run in
a Stack of their own, and the exactly-once tests in theirs (ReplayCase).

Care timelines are written as in test_logistics: events at given times and the actions
expected, each with the time it must appear. The runner ticks the clock to one second before
and to each timer's time and to each event's time, and after every step compares the shop's
whole action set with the expected one (nothing early, nothing late, nothing extra, no
duplicate id), then checks every field of every action.

Ids (README "Care"): `care:<shop>:<order_id>:<kind>` for order care,
`care:<shop>:<buyer_id>:<kind>:<suffix>` for buyer care (the gift task too).
`kefuctl report care` is checked last (load_tests puts ReportTest at the end).
"""
import json
import random
import unittest
from collections import defaultdict
from datetime import date, datetime, timedelta

from kefu_harness import (DAY, MIN, SEC, TZ, H, Days, ReplayCase, SharedStackCase, Stack, clock,
                          iso, local, metric, optout, shop_config, wait_for)

WORKER = "kefu-crm-care"
GROUP = "crm-care"
FAST = ("-o", "log.heartbeat_ms=100")

ORDER_KINDS = ("shipped", "same_city", "out_for_delivery", "signed", "usage")
BUYER_KINDS = ("replenish", "birthday", "gift", "festival", "winback", "campaign")
KINDS = ORDER_KINDS + BUYER_KINDS
CHANNEL = {"shipped": "im", "same_city": "im", "out_for_delivery": "im", "signed": "im",
           "usage": "im", "replenish": "im", "birthday": "sms", "festival": "sms",
           "winback": "sms"}
CLASS = {"shipped": "transactional", "same_city": "transactional",
         "out_for_delivery": "transactional", "signed": "transactional",
         "usage": "transactional", "replenish": "marketing", "birthday": "marketing",
         "festival": "marketing", "winback": "marketing", "campaign": "marketing"}
OPTOUT_SUFFIX = "拒收请回复R"
SEGMENTS = ("champions", "loyal", "potential", "new", "at_risk", "hibernating", "lost")
LEVELS = ("regular", "silver", "gold", "platinum")


# ---------------------------------------------------------------------- event builders

def created(shop, oid, buyer, at, items=None, total=None, nick=None, name=None, city="杭州",
            kind="normal", event_id=None):
    """order.created; items: [(sku, title, qty, price_fen)]."""
    items = items or [("k1", "纯棉毛巾", 1, 5900)]
    b = {"buyer_id": buyer, "nick": nick or f"n{buyer}"}
    if name:
        b["name"] = name
    if city:
        b["city"] = city
    return {"topic": "order.created", "event_id": event_id or f"oc-{shop}-{oid}",
            "shop_id": shop, "order_id": oid, "buyer": b,
            "items": [{"sku_id": s, "title": t, "qty": q, "price_fen": p}
                      for s, t, q, p in items],
            "total_fen": total if total is not None else sum(q * p for _, _, q, p in items),
            "kind": kind, "created_at": iso(at)}


def paid(shop, oid, at, buyer=None, amount=None, event_id=None):
    """order.paid; buyer None: without buyer_id (the order's recorded partition)."""
    e = {"topic": "order.paid", "event_id": event_id or f"op-{shop}-{oid}", "shop_id": shop,
         "order_id": oid, "at": iso(at)}
    if buyer:
        e["buyer_id"] = buyer
    if amount is not None:
        e["amount_fen"] = amount
    return e


def bought(shop, oid, buyer, at, items=None, name=None, nick=None):
    """order.created and order.paid of one order at the same time."""
    return [created(shop, oid, buyer, at, items=items, name=name, nick=nick),
            paid(shop, oid, at, buyer)]


def history(shop, buyer, amounts, at, tag=""):
    """order.paid events (with buyer_id and amount_fen, no order.created) of a buyer."""
    return [paid(shop, f"{buyer}-{i}{tag}", at, buyer, amount=a) for i, a in enumerate(amounts)]


def shipped(shop, oid, at, buyer=None, carrier="中通", tracking=None, event_id=None):
    e = {"topic": "order.shipped", "event_id": event_id or f"os-{shop}-{oid}", "shop_id": shop,
         "order_id": oid, "carrier": carrier, "tracking_no": tracking or f"T{shop}{oid}".upper(),
         "shipped_at": iso(at), "to_city": "杭州", "to_province": "浙江"}
    if buyer:
        e["buyer_id"] = buyer
    return e


def scan(shop, tracking, state, at, oid=None, city="杭州", event_id=None):
    e = {"topic": "logistics.scan",
         "event_id": event_id or f"sc-{shop}-{tracking}-{state}-{at}", "shop_id": shop,
         "tracking_no": tracking, "carrier": "中通", "state": state, "city": city,
         "description": f"state {state} at {city}", "at": iso(at)}
    if oid:
        e["order_id"] = oid
    return e


def confirmed(shop, oid, at, buyer=None, event_id=None):
    e = {"topic": "order.confirmed", "event_id": event_id or f"of-{shop}-{oid}",
         "shop_id": shop, "order_id": oid, "at": iso(at)}
    if buyer:
        e["buyer_id"] = buyer
    return e


def closed(shop, oid, at, buyer=None, event_id=None):
    e = {"topic": "order.closed", "event_id": event_id or f"ol-{shop}-{oid}", "shop_id": shop,
         "order_id": oid, "at": iso(at), "reason": "refund"}
    if buyer:
        e["buyer_id"] = buyer
    return e


def profile(shop, buyer, birthday=None, tags=None, nick=None, name=None, event_id=None):
    e = {"topic": "buyer.profile", "event_id": event_id or f"bp-{shop}-{buyer}", "shop_id": shop,
         "buyer_id": buyer}
    if birthday:
        e["birthday"] = birthday
    if tags:
        e["tags"] = list(tags)
    if nick:
        e["nick"] = nick
    if name:
        e["name"] = name
    return e


def launch(shop, cid, segment=None, tags=None, level=None, template=None, channel=None,
           start=None, end=None, name=None, event_id=None):
    e = {"topic": "campaign.launch", "event_id": event_id or f"cl-{shop}-{cid}",
         "shop_id": shop}
    if cid is not None:
        e["campaign_id"] = cid
    for k, v in (("segment", segment), ("level", level), ("template", template),
                 ("channel", channel), ("name", name)):
        if v is not None:
            e[k] = v
    if tags:
        e["tags"] = list(tags)
    if start is not None:
        e["window_start_at"] = iso(start)
    if end is not None:
        e["window_end_at"] = iso(end)
    return e


def care_id(shop, who, kind, suffix=None):
    return f"care:{shop}:{who}:{kind}" + (f":{suffix}" if suffix is not None else "")


def split_id(action_id):
    """care:<shop>:<who>:<kind>[:<suffix...>] -> (shop, who, kind, suffix or None)."""
    parts = action_id.split(":")
    assert len(parts) >= 4 and parts[0] == "care", action_id
    return parts[1], parts[2], parts[3], (":".join(parts[4:]) if len(parts) > 4 else None)


def md(days, k):
    return f"{days.first + timedelta(days=k):%m-%d}"


def year(ms):
    return f"{local(ms).year}"


def ymd(ms):
    return f"{local(ms):%Y%m%d}"


def fnv_part(key):
    h = 2166136261
    for b in key.encode():
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h % 64


# ---------------------------------------------------------------------- the README's model

def level_of(spent):
    return ("platinum" if spent >= 500000 else "gold" if spent >= 200000
            else "silver" if spent >= 50000 else "regular")


def rfm_of(orders, spent, d):
    r = 5 if d < 30 * DAY else 4 if d < 60 * DAY else 3 if d < 90 * DAY else \
        2 if d < 180 * DAY else 1
    f = min(orders, 5)
    m = 5 if spent >= 500000 else 4 if spent >= 200000 else 3 if spent >= 50000 else \
        2 if spent >= 10000 else 1
    return r, f, m


def segment_of(r, f, m):
    if r == 1:
        return "lost"
    if r <= 3:
        return "at_risk" if f + m >= 5 else "hibernating"
    if f + m >= 8:
        return "champions"
    if f + m >= 6:
        return "loyal"
    if f == 1 and r == 5:
        return "new"
    return "potential"


def tags_of(orders, spent, d):
    t = []
    if orders == 1:
        t.append("new")
    if orders >= 2:
        t.append("repeat")
    if orders >= 5 or spent >= 200000:
        t.append("loyal")
    if 90 * DAY <= d < 180 * DAY:
        t.append("dormant")
    if d >= 180 * DAY:
        t.append("lost")
    return ",".join(t)


def model(orders, spent, last, now):
    """The profile fields the README derives, as the worker must show them at `now`."""
    d = now - last
    r, f, m = rfm_of(orders, spent, d)
    return {"orders": str(orders), "spent_fen": str(spent), "avg_fen": str(spent // orders),
            "tags": tags_of(orders, spent, d), "level": level_of(spent), "rfm": f"{r}{f}{m}",
            "segment": segment_of(r, f, m)}


class Want:
    """A care action the scenario must produce: it appears at `at` (a timer's time when
    timer=True, else the time of the event that raises it) and never before. `due` is when it
    was due (before holding; default at). who: the order (order care) or the buyer."""

    def __init__(self, shop, kind, who, at, suffix=None, due=None, timer=True, buyer=None,
                 channel=None, text_has=(), text_not=(), agents=None, text=None):
        self.shop, self.kind, self.who, self.at, self.suffix = shop, kind, who, at, suffix
        self.id = care_id(shop, who, kind, suffix)
        self.due = at if due is None else due
        self.timer, self.text_has, self.text_not = timer, tuple(text_has), tuple(text_not)
        self.order = who if kind in ORDER_KINDS else None
        self.buyer = buyer or (None if kind in ORDER_KINDS else who)
        self.channel = channel or CHANNEL.get(kind)
        self.agents = agents
        self.text = text

    def __repr__(self):
        return f"{self.id}@{iso(self.at)}"


# ---------------------------------------------------------------------- the shared stack

def tearDownModule():
    CcTest.stop_shared()


class CcTest(SharedStackCase):
    """Helpers over the shared stack."""
    WORKER = WORKER
    FIRST_DAY = date(2031, 3, 3)

    # -- reading
    def ids(self, shop, kinds=None):
        return {i for i in self.acts(shop) if kinds is None or split_id(i)[2] in kinds}

    def prof(self, shop, buyer):
        return self.s.profile(shop, buyer)

    def segs(self, shop):
        """kefu:crm:segs:{shop} without zero fields, as {field: int}."""
        return {k: int(v) for k, v in self.s.hash(f"kefu:crm:segs:{{{shop}}}").items()
                if int(v) != 0}

    def camp(self, shop, cid):
        return self.s.hash(f"kefu:crm:camp:{{{shop}}}:{cid}")

    def crmg(self, shop):
        return {k: int(v) for k, v in self.s.hash(f"kefu:stats:crmg:{{{shop}}}").items()}

    def stats_all_days(self, shop):
        out = {}
        for k in self.s.redis().scan_iter(f"kefu:stats:crm:{{{shop}}}:*"):
            out[k.decode().rsplit(":", 1)[1]] = {
                f.decode(): int(v) for f, v in self.s.redis().hgetall(k).items()}
        return out

    def total(self, shop, field):
        return sum(d.get(field, 0) for d in self.stats_all_days(shop).values())

    def blocked_for(self, shop, reason=None):
        """Sorted [(buyer, block)] of the shop's kefu:blocked entries (of one care reason)."""
        return sorted((e.get("buyer_id"), e.get("block")) for e in self.s.blocked()
                      if e.get("shop_id") == shop and (reason is None or e.get("reason") == reason))

    def index(self, shop):
        out = set()
        for p in range(64):
            out |= {m.decode() for m in
                    self.s.redis().zrange(f"kefu:crm:idx:{{{shop}}}:{p}", 0, -1)}
        return out

    # -- checking
    def check_sms_text(self, aid, text):
        self.assertTrue(text.endswith(OPTOUT_SUFFIX), f"{aid}: marketing sms without "
                                                      f"{OPTOUT_SUFFIX}: {text!r}")
        self.assertLessEqual(len(text), 70, f"{aid}: sms of {len(text)} characters: {text!r}")

    def check_want(self, topic, a, w):
        ctx = f"{w.id}: {a}"
        self.assertEqual(a.get("shop_id"), w.shop, ctx)
        self.assertEqual(a.get("worker"), WORKER, ctx)
        if w.buyer:
            self.assertEqual(a.get("buyer_id"), w.buyer, ctx)
        if w.kind == "gift":
            self.assertEqual(topic, "action.task", ctx)
            self.assertEqual(a.get("task_id"), w.id, ctx)
            self.assertEqual(a.get("event_id", w.id), w.id, ctx)
            self.assertEqual(a.get("kind"), "care_gift", ctx)
            self.assertEqual(a.get("severity"), "info", ctx)
            self.assertEqual(a.get("due_at"), w.due + DAY,
                             f"{w.id}: due_at {iso(a.get('due_at') or 0)}, want "
                             f"{iso(w.due + DAY)}")
            if "reason" in a:
                self.assertIn(a["reason"], ("care_gift", "care_birthday"), ctx)
            if w.agents:
                self.assertIn(a.get("agent_id"), w.agents, ctx)
            if "occurred_at" in a:
                self.assertEqual(a["occurred_at"], w.at, ctx)
            return
        self.assertEqual(topic, "action.contact", ctx)
        self.assertEqual(a.get("action_id"), w.id, ctx)
        self.assertEqual(a.get("event_id", w.id), w.id, ctx)
        if w.order:
            self.assertEqual(a.get("order_id"), w.order, ctx)
        else:
            self.assertIn(a.get("order_id"), (None, ""), f"buyer care names no order: {ctx}")
        self.assertEqual(a.get("channel"), w.channel, ctx)
        self.assertEqual(a.get("reason"), f"care_{w.kind}", ctx)
        self.assertEqual(a.get("template"), f"care_{w.kind}", ctx)
        self.assertEqual(a.get("contact_class"), CLASS[w.kind], ctx)
        self.assertEqual(a.get("occurred_at"), w.at,
                         f"{w.id}: occurred_at {iso(a.get('occurred_at') or 0)}, want {iso(w.at)}")
        nb = a.get("not_before")
        # held: "when it was due" read as the due time or the moment it was held to
        self.assertIn(nb, {w.due, w.at},
                      f"{w.id}: not_before {iso(nb or 0)}, want {iso(w.due)}"
                      + (f" (or {iso(w.at)})" if w.at != w.due else ""))
        text = a.get("text") or ""
        self.assertTrue(text, ctx)
        if w.text is not None:
            self.assertEqual(text, w.text, w.id)
        for s in w.text_has:
            self.assertIn(s, text, f"{w.id}: text {text!r}")
        for s in w.text_not:
            self.assertNotIn(s, text, f"{w.id}: text {text!r}")
        if w.channel == "sms" and CLASS[w.kind] == "marketing":
            self.check_sms_text(w.id, text)

    def assert_wants(self, shops, wants, pred, t, kinds=None):
        got = self.acts(*shops)
        have = {i for i in got if kinds is None or split_id(i)[2] in kinds}
        exp = {w.id: w for w in wants if pred(w) and (kinds is None or w.kind in kinds)}
        missing = sorted(set(exp) - have)
        extra = sorted(have - set(exp))
        if missing or extra:
            self.fail(f"at {iso(t)}: missing {[repr(exp[i]) for i in missing]}; unexpected "
                      f"{[(i, iso(got[i][1].get('occurred_at') or 0)) for i in extra]}")
        for i, w in exp.items():
            self.check_want(got[i][0], got[i][1], w)

    def run_timeline(self, shops, steps, wants, kinds=None, extra_ticks=(), checks=None,
                     end=None):
        """steps: [(t, [events])]; wants: [Want]. Ticks to every event time, to every timer
        want's time and one second before it, to extra_ticks and to end; after each step the
        shops' actions (of `kinds`) must be exactly the wants due by then. checks: {t: fn()}
        run after the events of time t."""
        evs = defaultdict(list)
        for t, es in steps:
            evs[t].extend(es)
        times = set(evs) | set(extra_ticks)
        for w in wants:
            if w.timer:
                times |= {w.at - SEC, w.at}
        if end is not None:
            times.add(end)
        ids = [w.id for w in wants]
        self.assertEqual(len(ids), len(set(ids)), "a want listed twice")
        for t in sorted(times):
            self.tick(t)
            self.assert_wants(shops, wants, lambda w: w.at < t or (w.at == t and w.timer), t,
                              kinds)
            if evs.get(t):
                self.pub(*evs[t])
                self.assert_wants(shops, wants, lambda w: w.at <= t, t, kinds)
            if checks and t in checks:
                checks[t]()

    def assert_profiles(self, shop, want, t):
        """want: {buyer: {field: value}}; compares those fields of each profile."""
        bad = []
        for b, exp in want.items():
            p = self.prof(shop, b)
            got = {k: p.get(k) for k in exp}
            if got != exp:
                bad.append(f"{b}: {got}, want {exp}")
        self.assertEqual(bad, [], f"profiles at {iso(t)}:\n" + "\n".join(bad))


# ---------------------------------------------------------------------- order care

class OrderCareTest(CcTest):
    def test_order_notices_at_once_and_usage_seven_days_after_signing(self):
        """shipped (with carrier and tracking number, at once even at night), same_city
        (1001), out_for_delivery (5), signed (3, 301-304): once per order, at once; usage 7
        days after the first signed scan or order.confirmed, held to working hours (09:00),
        not after order.closed; an order event without buyer_id and a scan without order_id
        find their partition; opt-out all blocks even the transactional notices; the shop's
        im templates (care_shipped, care_usage) with their placeholders."""
        D = self.alloc(9)
        sh = "oc"
        self.config(sh, agents=["a1"], templates=[
            {"kind": "care_shipped", "channel": "im",
             "text": "{buyer}您好，{shop}的{item}已由{carrier}发出，单号{tracking_no}"},
            {"kind": "care_usage", "channel": "im",
             "text": "{buyer}，您{order_time}买的{item}用着还好吗？"},
            {"kind": "care_usage", "channel": "sms", "text": "短信模板不该用于im"}])
        orders = {"o1": "b1", "o2": "b2", "o3": "b3", "o4": "b4", "o5": "b5", "o6": "b6"}
        t0 = D(0, "09:00")
        steps = [
            (D(0, "08:00"), [optout(sh, "b5", ["all"]), optout(sh, "b6", ["sms"])]),
            (t0, [e for o, b in orders.items()
                  for e in bought(sh, o, b, t0, items=[("k1", "纯棉毛巾", 1, 5900)])]),
            (D(0, "10:00"), [shipped(sh, "o1", D(0, "10:00"), "b1", "中通", "ZT1001"),
                             shipped(sh, "o4", D(0, "10:00"), "b4", tracking="ZT1004"),
                             shipped(sh, "o5", D(0, "10:00"), "b5", tracking="ZT1005"),
                             shipped(sh, "o6", D(0, "10:00"), "b6", tracking="ZT1006")]),
            # at night, without buyer_id: the notice goes at once, in o2's partition
            (D(0, "23:30"), [shipped(sh, "o2", D(0, "23:30"), None, "顺丰", "SF2002")]),
            (D(1, "08:00"), [scan(sh, "ZT1001", 1002, D(1, "08:00"), "o1")]),
            (D(1, "09:00"), [scan(sh, "ZT1001", 1001, D(1, "09:00"), "o1")]),
            (D(1, "09:30"), [scan(sh, "ZT1001", 1001, D(1, "09:30"), "o1"),  # not the first
                             scan(sh, "ZT1006", 1001, D(1, "09:30"))]),  # no order_id
            (D(1, "10:00"), [confirmed(sh, "o3", D(1, "10:00"), "b3")]),
            (D(1, "11:00"), [scan(sh, "ZT1001", 5, D(1, "11:00"), "o1")]),
            (D(1, "12:00"), [scan(sh, "ZT1004", 302, D(1, "12:00"), "o4")]),
            (D(1, "14:00"), [scan(sh, "ZT1001", 301, D(1, "14:00"), "o1")]),
            (D(1, "15:00"), [scan(sh, "ZT1001", 304, D(1, "15:00"), "o1")]),  # signed again
            (D(1, "23:00"), [scan(sh, "SF2002", 3, D(1, "23:00"))]),  # at night, no order_id
            (D(2, "10:00"), [closed(sh, "o4", D(2, "10:00"), "b4")]),  # no usage care for o4
            (D(3, "10:00"), [confirmed(sh, "o1", D(3, "10:00"), "b1")]),  # signed first: stays
        ]
        W = Want
        wants = [
            W(sh, "shipped", "o1", D(0, "10:00"), buyer="b1", timer=False,
              text="nb1您好，oc小店的纯棉毛巾已由中通发出，单号ZT1001"),
            W(sh, "shipped", "o4", D(0, "10:00"), buyer="b4", timer=False, text_has=("ZT1004",)),
            W(sh, "shipped", "o6", D(0, "10:00"), buyer="b6", timer=False, text_has=("ZT1006",)),
            W(sh, "shipped", "o2", D(0, "23:30"), buyer="b2", timer=False,
              text_has=("顺丰", "SF2002")),
            W(sh, "same_city", "o1", D(1, "09:00"), buyer="b1", timer=False),
            W(sh, "same_city", "o6", D(1, "09:30"), buyer="b6", timer=False),
            W(sh, "out_for_delivery", "o1", D(1, "11:00"), buyer="b1", timer=False),
            W(sh, "signed", "o4", D(1, "12:00"), buyer="b4", timer=False),
            W(sh, "signed", "o1", D(1, "14:00"), buyer="b1", timer=False),
            W(sh, "signed", "o2", D(1, "23:00"), buyer="b2", timer=False),
            W(sh, "usage", "o3", D(8, "10:00"), buyer="b3"),
            W(sh, "usage", "o1", D(8, "14:00"), buyer="b1",
              text=f"nb1，您{local(t0).month}月{local(t0).day}日买的纯棉毛巾用着还好吗？"),
            # due 23:00, outside the working hours: held to 09:00
            W(sh, "usage", "o2", D(9, "09:00"), due=D(8, "23:00"), buyer="b2"),
        ]

        def after_shipping():
            self.assertEqual(self.blocked_for(sh, "care_shipped"), [("b5", "optout")])
            p2 = fnv_part(f"{sh}:b2")
            self.assertEqual(self.s.hash(f"kefu:order:{{{sh}}}:o2").get(GROUP), str(p2))
            self.assertEqual(self.s.hash(f"kefu:track:{{{sh}}}:SF2002").get(GROUP), str(p2))

        self.run_timeline((sh,), steps, wants, extra_ticks=[D(8, "12:00"), D(8, "23:00")],
                          checks={D(0, "23:30"): after_shipping}, end=D(9, "12:00"))
        self.assertEqual(self.blocked_for(sh), [("b5", "optout")],
                         "b5 (opted out of every channel) only; b6's sms opt-out is not im")
        st = self.stats_all_days(sh)
        want = {0: {"sent:shipped": 4, "blocked:shipped:optout": 1, "paid_orders": 6,
                    "new_buyers": 6},
                1: {"sent:same_city": 2, "sent:out_for_delivery": 1, "sent:signed": 3},
                8: {"sent:usage": 2}, 9: {"sent:usage": 1}}
        for d, exp in want.items():
            row = st.get(D.ymd(d), {})
            self.assertEqual({k: row.get(k, 0) for k in exp}, exp, f"day {d}: {row}")
        self.assertEqual(self.total(sh, "held:usage"), 1, st)
        for k in ORDER_KINDS:
            self.assertEqual(self.total(sh, f"held:{k}"), 1 if k == "usage" else 0,
                             f"held:{k}: {st}")
        # neither the order notices nor usage care are care touches (README cared_at): every
        # buyer gets them
        p = self.prof(sh, "b1")
        self.assertFalse(p.get("cared_at"), p)
        self.assertEqual(p.get("last_contact"), str(D(8, "14:00")), p)
        self.assertFalse(self.prof(sh, "b4").get("cared_at"), "signed only: not cared")
        self.assertEqual(self.prof(sh, "b4").get("last_contact"), str(D(1, "12:00")))

    def test_history_sets_the_profile_and_plans_only_care_still_due(self):
        """Events of the past (their `at` before the clock): the profile takes their times
        (a buyer whose last order was 95 days ago is dormant and at_risk at once); care that
        came due longer ago than its limit is not planned (usage 7 + 3 days, replenishment
        3 days after due), care still ahead is."""
        D = self.alloc(8)
        sh = "hs"
        self.config(sh)
        t = D(0, "10:00")
        k9, k4 = [("k9", "洗衣凝珠", 1, 4990)], [("k4", "豆腐猫砂", 1, 6900)]
        evs = [paid(sh, "h1a", D(-100, "10:00"), "h1", 200000),
               paid(sh, "h1b", D(-95, "10:00"), "h1", 100000)]
        evs += bought(sh, "h2a", "h2", D(-21, "10:00")) + [confirmed(sh, "h2a", D(-20, "10:00"))]
        evs += bought(sh, "h3a", "h3", D(-6, "10:00")) + [confirmed(sh, "h3a", D(-5, "10:00"))]
        evs += (bought(sh, "h5a", "h5", D(-30, "06:00"), items=k9)
                + bought(sh, "h5b", "h5", D(-20, "06:00"), items=k9))
        evs += (bought(sh, "h6a", "h6", D(-12, "06:00"), items=k4)
                + bought(sh, "h6b", "h6", D(-2, "06:00"), items=k4))
        W = Want
        wants = [W(sh, "usage", "h3a", D(2, "10:00"), buyer="h3"),
                 W(sh, "replenish", "h6", D(6, "18:00"), "k4:2")]

        def imported():
            exp = dict(model(2, 300000, D(-95, "10:00"), t), first_order=str(D(-100, "10:00")),
                       last_order=str(D(-95, "10:00")))
            self.assertEqual(exp["tags"], "repeat,loyal,dormant")
            self.assert_profiles(sh, {"h1": exp}, t)
            self.assertEqual(self.prof(sh, "h2").get("last_order"), str(D(-21, "10:00")))

        self.run_timeline((sh,), [(t, evs)], wants, checks={t: imported}, end=D(8, "12:00"))


# ---------------------------------------------------------------------- replenishment

    def test_the_buyer_is_named_as_every_worker_names_them(self):
        """{buyer}: the name, else the nick, at most 6 characters, shortened with "…" as
        kefu-pay-reminder and kefu-logistics shorten it (kf_utf8_truncate: 5 characters and
        "…"); a later profile with a nick only never replaces a name."""
        D = self.alloc(2)
        sh = "bn"
        self.config(sh, templates=[{"kind": "care_shipped", "channel": "im",
                                    "text": "{buyer}您好，{item}已发出"}])
        steps = [
            (D(0, "09:00"), bought(sh, "n1", "u1", D(0, "09:00"), name="欧阳娜娜娜娜娜娜")
             + bought(sh, "n2", "u2", D(0, "09:00"), nick="abcdefgh")
             + bought(sh, "n3", "u3", D(0, "09:00"), name="王小美", nick="xm")
             + bought(sh, "n4", "u4", D(0, "09:00"), name="六个字的名字")),
            (D(0, "09:30"), [profile(sh, "u3", nick="zzzzzzzzz")]),
            (D(0, "10:00"), [shipped(sh, o, D(0, "10:00"), u)
                             for o, u in (("n1", "u1"), ("n2", "u2"), ("n3", "u3"),
                                          ("n4", "u4"))]),
        ]
        W = Want
        wants = [W(sh, "shipped", "n1", D(0, "10:00"), buyer="u1", timer=False,
                   text="欧阳娜娜娜…您好，纯棉毛巾已发出"),
                 W(sh, "shipped", "n2", D(0, "10:00"), buyer="u2", timer=False,
                   text="abcde…您好，纯棉毛巾已发出"),
                 W(sh, "shipped", "n3", D(0, "10:00"), buyer="u3", timer=False,
                   text="王小美您好，纯棉毛巾已发出"),
                 W(sh, "shipped", "n4", D(0, "10:00"), buyer="u4", timer=False,
                   text="六个字的名字您好，纯棉毛巾已发出")]
        self.run_timeline((sh,), steps, wants, kinds=("shipped",), end=D(0, "11:00"))
        p3 = self.prof(sh, "u3")
        self.assertEqual((p3.get("name"), p3.get("nick"), p3.get("bn")),
                         ("王小美", "zzzzzzzzz", "王小美"), p3)


class ReplenishTest(CcTest):
    def test_replenish_at_85_percent_of_the_interval_moved_by_a_new_purchase(self):
        """A sku bought twice 10 days apart: due 8.5 days after the last purchase (suffix
        <sku>:2); a third purchase before then moves it (I = 8 days, suffix <sku>:3); an
        interval under 7 days plans nothing; a due time at midnight is held to 09:00; an im
        opt-out blocks it."""
        D = self.alloc(23)
        sh = "rp"
        self.config(sh)
        k9 = [("k9", "洗衣凝珠", 1, 4990)]
        k8 = [("k8", "厨房纸巾", 2, 1990)]
        k6 = [("k6", "豆腐猫砂", 1, 6900)]
        steps = [
            (D(0, "01:00"), bought(sh, "r1a", "r1", D(0, "01:00"), items=k9)
             + bought(sh, "r2a", "r2", D(0, "01:00"), items=k9)
             + bought(sh, "r3a", "r3", D(0, "01:00"), items=k8)
             + bought(sh, "r4a", "r4", D(0, "01:00"), items=k9)),
            (D(0, "12:00"), bought(sh, "r6a", "r6", D(0, "12:00"), items=k6)),
            (D(1, "10:00"), [optout(sh, "r4", ["im"])]),
            (D(5, "01:00"), bought(sh, "r3b", "r3", D(5, "01:00"), items=k8)),
            (D(10, "01:00"), bought(sh, "r1b", "r1", D(10, "01:00"),
                                    items=k9 + [("k5", "晾衣架", 1, 2990)])
             + bought(sh, "r2b", "r2", D(10, "01:00"), items=k9)
             + bought(sh, "r4b", "r4", D(10, "01:00"), items=k9)),
            (D(10, "12:00"), bought(sh, "r6b", "r6", D(10, "12:00"), items=k6)),
            (D(16, "01:00"), bought(sh, "r2c", "r2", D(16, "01:00"), items=k9)),
        ]
        W = Want
        wants = [
            W(sh, "replenish", "r1", D(18, "13:00"), "k9:2", text_has=("洗衣凝珠",)),
            W(sh, "replenish", "r6", D(19, "09:00"), "k6:2", due=D(19, "00:00"),
              text_has=("豆腐猫砂",)),
            W(sh, "replenish", "r2", D(22, "20:12"), "k9:3", text_has=("洗衣凝珠",)),
        ]

        def items_after_second():
            it = self.s.hash(f"kefu:crm:items:{{{sh}}}:r1")
            self.assertEqual(it.get("k9"), f"2|{D(0, '01:00')}|{D(10, '01:00')}", it)
            self.assertEqual(it.get("k5"), f"1|{D(10, '01:00')}|{D(10, '01:00')}", it)
            self.assertEqual(self.s.hash(f"kefu:crm:items:{{{sh}}}:r3").get("k8"),
                             f"2|{D(0, '01:00')}|{D(5, '01:00')}")
            titles = self.s.hash(f"kefu:sku:{{{sh}}}")  # the titles, once per shop
            self.assertEqual((titles.get("k9"), titles.get("k5"), titles.get("k8")),
                             ("洗衣凝珠", "晾衣架", "厨房纸巾"), titles)

        self.run_timeline((sh,), steps, wants, kinds=("replenish",),
                          extra_ticks=[D(19, "00:00"), D(20, "12:00")],
                          checks={D(10, "01:00"): items_after_second}, end=D(22, "23:00"))
        self.assertEqual(self.blocked_for(sh, "care_replenish"), [("r4", "optout")])
        self.assertEqual(self.ids(sh) - {w.id for w in wants}, set(), "no other care")


# ---------------------------------------------------------------------- birthday, caps, opt-out

class BirthdayTest(CcTest):
    def test_birthday_sms_at_ten_gift_task_for_loyal_buyers_caps_and_optout(self):
        """Birthday sms at 10:00 on the day for buyers with a paid order (suffix the year);
        loyal ones (by ¥2000, by 5 orders) also get a care_gift task for an agent due 24 h
        later; blocked by an sms opt-out (optout), by 3 contacts that day (cap_daily: three
        transactional notices before 10:00) and by a marketing sms already sent that day
        (cap_sms_daily: a campaign sms at 09:00); transactional notices after the cap still
        go out."""
        D = self.alloc(3)
        sh = "bd"
        agents = ["g1", "g2"]
        self.config(sh, agents=agents)
        bday = md(D, 2)
        long_name = "欧阳娜娜娜娜娜娜"  # 8 characters: {buyer} is cut to 6, "…" the 6th
        t0 = D(0, "10:00")
        steps = [
            (t0, bought(sh, "u1a", "u1", t0, name=long_name)
             + [profile(sh, "u1", bday),
                profile(sh, "u2", bday)] + history(sh, "u2", [200000], t0)
             + history(sh, "u3", [1000] * 5, t0) + [profile(sh, "u3", bday)]
             + [profile(sh, "u4", bday)]  # no paid order: no birthday care
             + history(sh, "u5", [10000], t0) + [profile(sh, "u5", bday),
                                                 optout(sh, "u5", ["sms"])]
             + history(sh, "u7", [10000], t0) + [profile(sh, "u7", bday, tags=["vipx"])]),
            (D(1, "10:00"), bought(sh, "u6a", "u6", D(1, "10:00")) + [profile(sh, "u6", bday)]),
            (D(1, "12:00"), [launch(sh, "bdx", tags=["vipx"], channel="sms", name="会员日",
                                    start=D(2, "09:00"), end=D(2, "12:00"))]),
            (D(2, "08:00"), [shipped(sh, "u6a", D(2, "08:00"), "u6", tracking="YT6")]),
            (D(2, "08:30"), [scan(sh, "YT6", 1001, D(2, "08:30"), "u6a")]),
            (D(2, "09:00"), [scan(sh, "YT6", 5, D(2, "09:00"), "u6a")]),
            (D(2, "11:00"), [scan(sh, "YT6", 301, D(2, "11:00"), "u6a")]),
            (D(3, "11:00"), history(sh, "u1", [8800], D(3, "11:00"), tag="x")),
        ]
        b10 = D(2, "10:00")
        y = year(b10)
        W = Want
        wants = [
            W(sh, "campaign", "u7", D(2, "09:00"), "bdx", channel="sms", text_has=("会员日",)),
            W(sh, "birthday", "u1", b10, y, text_has=(long_name[:5] + "…亲", "bd小店"),
              text_not=(long_name,)),
            W(sh, "birthday", "u2", b10, y),
            W(sh, "birthday", "u3", b10, y),
            W(sh, "gift", "u2", b10, y, agents=agents),
            W(sh, "gift", "u3", b10, y, agents=agents),
            W(sh, "shipped", "u6a", D(2, "08:00"), buyer="u6", timer=False),
            W(sh, "same_city", "u6a", D(2, "08:30"), buyer="u6", timer=False),
            W(sh, "out_for_delivery", "u6a", D(2, "09:00"), buyer="u6", timer=False),
            W(sh, "signed", "u6a", D(2, "11:00"), buyer="u6", timer=False),
        ]

        def blocked_at_ten():
            self.assertEqual(self.blocked_for(sh, "care_birthday"),
                             [("u5", "optout"), ("u6", "cap_daily"), ("u7", "cap_sms_daily")])

        self.run_timeline((sh,), steps, wants, checks={b10: blocked_at_ten},
                          extra_ticks=[D(3, "10:00"), D(3, "12:00")], end=D(3, "20:00"))
        # a profile alone makes no level, tags or segment
        p4 = self.prof(sh, "u4")
        self.assertEqual(p4.get("birthday"), bday, p4)
        self.assertEqual([p4.get(k) for k in ("level", "segment", "rfm")], [None] * 3, p4)
        self.assertFalse(p4.get("tags"), p4)
        self.assertNotIn("u4", self.index(sh))
        # a care touch makes a buyer cared; an order notice does not
        p1 = self.prof(sh, "u1")
        self.assertEqual((p1.get("cared_at"), p1.get("name")), (str(b10), long_name), p1)
        self.assertEqual(self.prof(sh, "u7").get("cared_at"), str(D(2, "09:00")))
        self.assertFalse(self.prof(sh, "u6").get("cared_at"), self.prof(sh, "u6"))
        self.assertEqual(self.prof(sh, "u6").get("last_contact"), str(D(2, "11:00")))
        self.assertEqual(self.prof(sh, "u7").get("mtags"), "vipx")
        st = self.s.crm_stats(sh, D.ymd(2))
        exp = {"sent:birthday": 3, "blocked:birthday:optout": 1, "blocked:birthday:cap_daily": 1,
               "blocked:birthday:cap_sms_daily": 1, "sent:campaign": 1}
        self.assertEqual({k: st.get(k, 0) for k in exp}, exp, st)
        g = self.crmg(sh)
        exp = {"buyers": 6, "repeat": 2, "cared": 4, "cared_repeat": 1, "uncared_repeat": 0}
        self.assertEqual({k: g.get(k, 0) for k in exp}, exp, g)
        c = self.camp(sh, "bdx")
        self.assertEqual({k: c.get(k) for k in ("state", "parts_done", "matched", "sent")},
                         {"state": "done", "parts_done": "64", "matched": "1", "sent": "1"}, c)


class FestivalTest(CcTest):
    def test_festival_sms_at_ten_on_each_configured_date(self):
        """shop.config festivals ("MM-DD" and "YYYY-MM-DD"): an sms at 10:00 to every buyer
        with a paid order (suffix the date), listed as campaign festival-<yyyymmdd>; an sms
        opt-out blocks it; a shop without festivals and a buyer without an order get none."""
        D = self.alloc(5)
        sh, other = "fe", "fe2"
        fests = [{"date": md(D, 2), "name": "中秋节"},
                 {"date": D.iso_day(4), "name": "店庆日"}]
        self.config(sh, festivals=fests)
        self.config(other)
        t0 = D(0, "10:00")
        steps = [(t0, history(sh, "f1", [10000], t0) + history(sh, "f2", [300000, 5000], t0)
                  + history(sh, "f3", [10000], t0) + [optout(sh, "f3", ["sms"]),
                                                      profile(sh, "f4", md(D, 3))]
                  + history(other, "x1", [10000], t0))]
        W = Want
        wants = []
        for d, name in ((2, "中秋节"), (4, "店庆日")):
            for b in ("f1", "f2"):
                wants.append(W(sh, "festival", b, D(d, "10:00"), D.ymd(d),
                               text_has=(name, "fe小店")))
        self.run_timeline((sh, other), steps, wants, end=D(4, "18:00"))
        self.assertEqual(self.blocked_for(sh, "care_festival"), [("f3", "optout")] * 2)
        members = {m.decode() for m in self.s.redis().zrange("kefu:crm:campaigns", 0, -1)}
        for d in (2, 4):
            cid = f"festival-{D.ymd(d)}"
            self.assertIn(f"{sh}:{cid}", members)
            c = self.camp(sh, cid)
            exp = {"state": "done", "parts_done": "64", "sent": "2", "blocked": "1",
                   "blocked:optout": "1"}
            self.assertEqual({k: c.get(k) for k in exp}, exp, c)
        self.assertFalse([m for m in members if m.startswith(f"{other}:")], members)
        st = self.s.crm_stats(sh, D.ymd(2))
        self.assertEqual((st.get("sent:festival"), st.get("blocked:festival:optout")), (2, 1), st)


# ---------------------------------------------------------------------- profiles

# (buyer, paid amounts in fen): R = 5 for all (paid today)
PROFILE_ROWS = [
    ("n1", [5000]),              # new, regular, 511, new
    ("n2", [49999]),             # regular, M 2 (>= ¥100)
    ("n3", [50000]),             # silver at ¥500
    ("n4", [199999]),            # silver, not loyal
    ("n5", [200000]),            # gold at ¥2000, loyal by money, 514: F+M 5 -> new
    ("n6", [499999]),            # gold
    ("n7", [500000]),            # platinum at ¥5000, 515: F+M 6 -> loyal
    ("r1", [10000, 5000]),       # repeat, 522 -> potential
    ("r2", [30000, 30000]),      # silver, 523 -> potential
    ("r3", [30000, 30000, 10000]),  # 533 -> loyal
    ("l1", [1000] * 5),          # loyal by 5 orders, 551 -> loyal
    ("l2", [1000] * 4),          # 541 -> potential, not loyal
    ("l3", [100000, 100000]),    # ¥2000: loyal, gold, 524 -> loyal
    ("c1", [200000, 100000, 100000]),  # 534 -> loyal
    ("c2", [200000, 200000, 100000]),  # platinum, 535 -> champions
    ("c3", [50000] * 4),         # gold, 544 -> champions
    ("c4", [10000] * 6),         # silver, 553 -> champions
]


class ProfileTest(CcTest):
    def test_tags_levels_rfm_and_segments_of_hand_built_buyers(self):
        D = self.alloc(1)
        sh = "pf"
        self.config(sh)
        t9, t10 = D(0, "09:00"), D(0, "10:00")
        self.at(t9, *history(sh, "r1", [10000], t9))  # r1's first order an hour earlier
        evs = []
        for b, amounts in PROFILE_ROWS:
            evs += history(sh, b, amounts[1:] if b == "r1" else amounts, t10,
                           tag="b" if b == "r1" else "")
        # the order's total when order.paid has no amount; order.paid without buyer_id
        evs += [created(sh, "t1o", "t1", t10, items=[("k2", "真丝四件套", 1, 88800)],
                        name="王小美", nick="xiaomei"),
                paid(sh, "t1o", t10)]
        # one order paid twice (another event id): counted once
        evs += [paid(sh, "d1o", t10, "d1", amount=20000),
                paid(sh, "d1o", t10, "d1", amount=20000, event_id="op-pf-d1o-again")]
        evs += [profile(sh, "n1", "05-20", tags=["vip", "学生"]),
                profile(sh, "p0", "06-01", tags=["vip"])]  # a profile without an order
        self.at(t10, *evs)
        rows = dict(PROFILE_ROWS, t1=[88800], d1=[20000])
        want = {}
        for b, amounts in rows.items():
            exp = model(len(amounts), sum(amounts), t10, t10)
            exp["last_order"] = str(t10)
            exp["first_order"] = str(t9 if b == "r1" else t10)
            exp[GROUP] = str(fnv_part(f"{sh}:{b}"))
            want[b] = exp
        self.assert_profiles(sh, want, t10)
        n1 = self.prof(sh, "n1")
        self.assertEqual((n1.get("birthday"), n1.get("mtags"), n1.get("tags")),
                         ("05-20", "vip,学生", "new"), n1)
        t1 = self.prof(sh, "t1")
        self.assertEqual((t1.get("name"), t1.get("nick"), t1.get("city")),
                         ("王小美", "xiaomei", "杭州"), t1)
        p0 = self.prof(sh, "p0")
        self.assertEqual((p0.get("birthday"), p0.get("mtags")), ("06-01", "vip"), p0)
        self.assertEqual([p0.get(k) for k in ("level", "segment", "rfm", "orders")],
                         [None, None, None, None], p0)
        ttl = self.s.redis().ttl(f"kefu:buyer:{{{sh}}}:c2")
        self.assertTrue(400 * 86400 < ttl <= 411 * 86400, f"profile TTL {ttl} s: 410 days")
        # counts and index
        segs, lvls = defaultdict(int), defaultdict(int)
        for b, exp in want.items():
            segs[f"seg:{exp['segment']}"] += 1
            lvls[f"lvl:{exp['level']}"] += 1
        self.assertEqual(self.segs(sh), dict(segs, **lvls))
        self.assertEqual(set(segs), {f"seg:{s}" for s in ("champions", "loyal", "potential",
                                                           "new")})
        self.assertEqual(set(lvls), {f"lvl:{x}" for x in LEVELS})
        self.assertEqual(self.index(sh), set(rows), "kefu:crm:idx: buyers with a paid order")
        st = self.s.crm_stats(sh, D.ymd(0))
        n_orders = sum(len(a) for a in rows.values())
        self.assertEqual((st.get("paid_orders"), st.get("new_buyers")), (n_orders, len(rows)), st)
        g = self.crmg(sh)
        repeat = sum(1 for a in rows.values() if len(a) >= 2)
        exp = {"buyers": len(rows), "repeat": repeat, "cared": 0, "cared_repeat": 0,
               "uncared_repeat": repeat}
        self.assertEqual({k: g.get(k, 0) for k in exp}, exp, g)
        # manual tags are replaced by the next buyer.profile; automatic ones stay
        self.pub(profile(sh, "n1", "05-21", tags=["老客"], event_id="bp-pf-n1-2"))
        n1 = self.prof(sh, "n1")
        self.assertEqual((n1.get("birthday"), n1.get("mtags"), n1.get("tags"),
                          n1.get("segment")), ("05-21", "老客", "new", "new"), n1)


class TimeTest(CcTest):
    def test_segments_move_as_time_passes_dormant_at_90_lost_at_180_days(self):
        """No event but the clock: the seg timer moves R at last_order + 30, 60, 90 and 180
        days (checked one second before and at), tags dormant then lost, and the counts of
        kefu:crm:segs with them; at_risk buyers get a win-back sms, due at 23:00 and so held
        to 08:00, once (not again within 30 days; one blocked by an sms opt-out is tried
        again); a new order brings a dormant buyer back; the festival skips lost buyers; 400
        days after their last order buyers are forgotten."""
        D = self.alloc(401)
        sh = "tm"
        self.config(sh, festivals=[{"date": D.iso_day(185), "name": "周年庆"}])
        t0 = D(0, "23:00")
        buyers = {"a1": [200000, 100000], "a2": [10000], "a3": [200000, 200000, 100000],
                  "a4": [500000], "a5": [10000]}
        state = {b: [len(a), sum(a), t0] for b, a in buyers.items()}
        evs = [optout(sh, "a4", ["sms"])]
        for b, a in buyers.items():
            evs += history(sh, b, a, t0)
        t100 = D(100, "10:00")
        steps = [(t0, evs), (t100, history(sh, "a5", [5000], t100, tag="x"))]

        t400 = D(400, "23:00")

        def check_at(t):
            def f():
                if t >= t100:
                    state["a5"] = [2, 15000, t100]
                if t >= t400:  # forgotten 400 days after their last order
                    for b in ("a1", "a2", "a3", "a4"):
                        state.pop(b, None)
                        self.assertEqual(self.prof(sh, b), {}, f"{b} at {iso(t)}")
                        self.assertEqual(self.s.hash(f"kefu:crm:items:{{{sh}}}:{b}"), {})
                    self.assertEqual(self.index(sh), {"a5"})
                want = {b: dict(model(o, s, last, t), last_order=str(last))
                        for b, (o, s, last) in state.items()}
                self.assert_profiles(sh, want, t)
                cnt = defaultdict(int)
                for exp in want.values():
                    cnt[f"seg:{exp['segment']}"] += 1
                    cnt[f"lvl:{exp['level']}"] += 1
                self.assertEqual(self.segs(sh), dict(cnt), f"kefu:crm:segs at {iso(t)}")
            return f

        # (a5 bought again at D100: its thresholds D130, D160, D190 and D280 get a tick each;
        # one tick over several thresholds is test_one_clock_jump_passes_every_threshold's)
        probes = [D(30, "22:59:59"), D(30, "23:00"), D(60, "22:59:59"), D(60, "23:00"),
                  D(90, "22:59:59"), D(90, "23:00"), t100, D(130, "10:00"), D(160, "10:00"),
                  D(180, "22:59:59"), D(180, "23:00"), D(190, "10:00"), D(280, "10:00"),
                  t400 - SEC, t400]
        W = Want
        wants = [W(sh, "winback", b, D(61, "08:00"), D.ymd(60), due=D(60, "23:00"))
                 for b in ("a1", "a3")]
        wants.append(W(sh, "festival", "a5", D(185, "10:00"), D.ymd(185), text_has=("周年庆",)))
        checks = {t: check_at(t) for t in probes + [t0]}
        checks[D(61, "08:00")] = lambda: (
            self.assertEqual(self.blocked_for(sh, "care_winback"), [("a4", "optout")]),
            self.assertEqual(self.prof(sh, "a1").get("winback_at"), str(D(61, "08:00"))))
        checks[D(180, "23:00")] = lambda: (
            check_at(D(180, "23:00"))(),
            self.assertEqual(self.prof(sh, "a1").get("tags"), "repeat,loyal,lost"))
        self.run_timeline((sh,), steps, wants, extra_ticks=probes, checks=checks,
                          end=D(400, "23:30"))
        self.assertEqual(self.index(sh), {"a5"})
        # a4's win-back never went out (opted out of sms): tried again at 90 days
        self.assertEqual(self.blocked_for(sh, "care_winback"), [("a4", "optout")] * 2)


    def test_one_clock_jump_passes_every_threshold(self):
        """DESIGN §6: a sys.clock fires every timer due up to its now, in due order, before
        anything else. One tick 80 days after the last order passes the 30- and 60-day
        thresholds (hibernating at once); one 200 days after, the 90- and 180-day ones (lost)."""
        D = self.alloc(201)
        sh = "tj"
        self.config(sh)
        t0 = D(0, "10:00")
        self.at(t0, *history(sh, "j1", [10000], t0))
        self.assert_profiles(sh, {"j1": model(1, 10000, t0, t0)}, t0)
        for t in (D(80, "12:00"), D(200, "12:00")):
            self.tick(t)
            self.assert_profiles(sh, {"j1": model(1, 10000, t0, t)}, t)
        self.assertEqual(self.segs(sh), {"seg:lost": 1, "lvl:regular": 1})


# ---------------------------------------------------------------------- campaigns

class CampaignTest(CcTest):
    def test_campaign_reaches_exactly_the_matching_buyers(self):
        """20 buyers in four segments; a champions sms campaign reaches every champion but
        the one capped by a birthday sms that morning (cap_sms_daily) and the one opted out
        of sms; a second campaign filters segment + level, a third segment + tags (manual and
        automatic); progress in kefu:crm:camp; re-launching a campaign changes nothing."""
        D = self.alloc(1)
        sh = "cp"
        self.config(sh, agents=["g1"])
        rows = {}
        for b in ("ch1", "ch2", "ch3", "ch4", "ch7", "ch8"):
            rows[b] = [200000, 200000, 100000]  # champions, platinum
        for b in ("ch5", "ch6"):
            rows[b] = [50000] * 4  # champions, gold
        for b in ("ly1", "ly2"):
            rows[b] = [500000]  # loyal, platinum
        for b in ("ly3", "ly4"):
            rows[b] = [100000, 100000]  # loyal, gold
        for b in ("pt1", "pt2", "pt3", "pt4"):
            rows[b] = [10000, 5000]  # potential
        for b in ("nw1", "nw2", "nw3", "nw4"):
            rows[b] = [5000]  # new
        t0 = D(0, "08:30")
        evs = [optout(sh, "ch3", ["sms"]), profile(sh, "ch2", md(D, 0), nick="二号"),
               profile(sh, "ch1", tags=["vip"]), profile(sh, "ch4", tags=["vip"]),
               profile(sh, "ly1", tags=["vip"]), profile(sh, "ly3", tags=["vip"], nick="三号"),
               profile(sh, "pt1", tags=["vip"])]
        for b, a in rows.items():
            evs += history(sh, b, a, t0)
        segs = {b: model(len(a), sum(a), t0, t0) for b, a in rows.items()}
        self.assertEqual(sorted(b for b in rows if segs[b]["segment"] == "champions"),
                         sorted(b for b in rows if b.startswith("ch")))
        champions = sorted(b for b in rows if b.startswith("ch"))
        t11 = D(0, "11:00")
        im_text = "{buyer}您好，{shop}金卡会员日，{campaign}礼包已到账"
        steps = [
            (t0, evs),
            (D(0, "10:30"), [launch(sh, "spring", segment="champions", channel="sms",
                                    name="春季上新", start=t11, end=D(0, "20:00"))]),
            # no window: it starts at the clock (12:00); a second sys.clock at 12:00 fires
            # the batches due then
            (D(0, "12:00"), [launch(sh, "goldday", segment="loyal", level="gold",
                                    template=im_text, name="金卡日"), clock(D(0, "12:00"))]),
            (D(0, "12:30"), [launch(sh, "vipch", segment="champions", tags=["vip", "loyal"],
                                    channel="im", name="VIP专享", start=D(0, "13:00"))]),
            # the same campaign_id again, another segment: nothing changes
            (D(0, "14:00"), [launch(sh, "spring", segment="new", channel="im", name="重来",
                                    start=D(0, "14:00"), event_id="cl-cp-spring-again")]),
        ]
        W = Want
        b10 = D(0, "10:00")
        wants = [W(sh, "birthday", "ch2", b10, year(b10)),
                 W(sh, "gift", "ch2", b10, year(b10), agents=["g1"])]
        wants += [W(sh, "campaign", b, t11, "spring", channel="sms", text_has=("春季上新",))
                  for b in champions if b not in ("ch2", "ch3")]
        # goldday: default window from the clock at launch (12:00), its template is the text
        wants += [W(sh, "campaign", b, D(0, "12:00"), "goldday", channel="im", timer=False,
                    text_has=("金卡会员日", "金卡日礼包", "cp小店")) for b in ("ly3", "ly4")]
        wants += [W(sh, "campaign", b, D(0, "13:00"), "vipch", channel="im")
                  for b in ("ch1", "ch4")]

        def spring_before():
            c = self.camp(sh, "spring")
            self.assertEqual(c.get("state"), "scheduled", c)
            self.assertEqual(self.ids(sh, ("campaign",)), set())

        def spring_done():
            c = self.camp(sh, "spring")
            exp = {"name": "春季上新", "segment": "champions", "channel": "sms",
                   "start": str(t11), "end": str(D(0, "20:00")), "launched": str(D(0, "10:30")),
                   "state": "done", "parts_done": "64", "matched": str(len(champions)),
                   "sent": str(len(champions) - 2), "blocked": "2", "blocked:cap_sms_daily": "1",
                   "blocked:optout": "1"}
            self.assertEqual({k: c.get(k) for k in exp}, exp, c)
            self.assertIn(c.get("expired"), (None, "0"), c)
            self.assertEqual(self.blocked_for(sh, "care_campaign"),
                             [("ch2", "cap_sms_daily"), ("ch3", "optout")])

        ticks = [D(0, "12:00") + MIN, D(0, "14:00") + MIN, D(0, "20:00")]
        self.run_timeline((sh,), steps, wants, extra_ticks=ticks,
                          checks={D(0, "10:30"): spring_before, t11: spring_done},
                          end=D(0, "21:00"))
        spring = self.camp(sh, "spring")
        self.assertEqual((spring.get("segment"), spring.get("name"), spring.get("sent")),
                         ("champions", "春季上新", str(len(champions) - 2)), spring)
        g = self.camp(sh, "goldday")
        exp = {"segment": "loyal", "level": "gold", "channel": "im", "start": str(D(0, "12:00")),
               "end": str(D(1, "12:00")), "state": "done", "parts_done": "64", "matched": "2",
               "sent": "2"}
        self.assertEqual({k: g.get(k) for k in exp}, exp, g)
        v = self.camp(sh, "vipch")
        self.assertEqual({k: v.get(k) for k in ("matched", "sent", "state")},
                         {"matched": "2", "sent": "2", "state": "done"}, v)
        self.assertEqual(sorted((v.get("tags") or "").split(",")), ["loyal", "vip"], v)
        z = self.s.redis().zrange("kefu:crm:campaigns", 0, -1, withscores=True)
        listed = {m.decode(): int(sc) for m, sc in z}
        self.assertEqual({k: listed.get(k) for k in ("cp:spring", "cp:goldday", "cp:vipch")},
                         {"cp:spring": D(0, "10:30"), "cp:goldday": D(0, "12:00"),
                          "cp:vipch": D(0, "12:30")})
        # the broker's /stats and /metrics and kefuctl stat show the campaigns
        def listed_in_stats():
            for c in self.s.stats().get("campaigns") or []:
                if (c.get("shop_id"), c.get("campaign_id")) == (sh, "spring"):
                    return c
            return None
        c = wait_for(listed_in_stats, timeout=10, what="cp:spring in /stats campaigns")
        exp = {"state": "done", "parts_done": 64, "matched": 8, "sent": 6, "blocked": 2,
               "expired": 0, "blocked_by": {"cap_sms_daily": 1, "optout": 1}}
        self.assertEqual({k: c.get(k) for k in exp}, exp, c)
        self.assertEqual(metric(self.s.metrics(), "kefu_campaign_sent_total", shop=sh,
                                campaign="spring"), 6.0)
        r = self.s.kefuctl("stat")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("春季上新", r.stdout)
        st = self.s.crm_stats(sh, D.ymd(0))
        exp = {"sent:campaign": len(champions) - 2 + 4, "blocked:campaign:cap_sms_daily": 1,
               "blocked:campaign:optout": 1, "sent:birthday": 1}
        self.assertEqual({k: st.get(k, 0) for k in exp}, exp, st)

    def test_sms_campaigns_wait_for_8am_and_what_the_window_misses_expires(self):
        """An sms campaign whose window lies in the quiet hours (22:30-07:30) sends nothing
        and counts every buyer expired; one from 06:00 waits for 08:00 (one second before:
        nothing) and then reaches every matching buyer."""
        D = self.alloc(1)
        sh = "cq"
        self.config(sh)
        t0 = D(0, "10:00")
        buyers = [f"q{i}" for i in range(1, 6)]
        evs = [e for b in buyers for e in history(sh, b, [5000], t0)]
        steps = [
            (t0, evs),
            (D(0, "21:00"), [launch(sh, "night", segment="new", channel="sms", name="夜场",
                                    start=D(0, "22:30"), end=D(1, "07:30"))]),
            (D(1, "05:00"), [launch(sh, "morning", segment="new", channel="sms", name="早场",
                                    start=D(1, "06:00"), end=D(1, "12:00"))]),
            # a call: held to the next phone window (15:00-16:30)
            (D(1, "11:40"), [launch(sh, "call", segment="new", channel="phone", name="回访",
                                    start=D(1, "12:00"))]),
        ]
        wants = [Want(sh, "campaign", b, D(1, "08:00"), "morning", channel="sms",
                      due=D(1, "06:00"), text_has=("早场",)) for b in buyers]
        wants += [Want(sh, "campaign", b, D(1, "15:00"), "call", channel="phone",
                       due=D(1, "12:00"), text_has=("回访",)) for b in buyers]
        self.run_timeline((sh,), steps, wants,
                          extra_ticks=[D(0, "22:30"), D(1, "06:00"), D(1, "07:30"),
                                       D(1, "12:00")],
                          end=D(1, "16:00"))
        night = self.camp(sh, "night")
        exp = {"state": "done", "parts_done": "64", "sent": "0", "expired": "5"}
        self.assertEqual({k: night.get(k, "0") for k in exp}, exp, night)
        self.assertIn(night.get("matched", "0"), ("0", "5"), night)
        m = self.camp(sh, "morning")
        exp = {"state": "done", "parts_done": "64", "matched": "5", "sent": "5"}
        self.assertEqual({k: m.get(k) for k in exp}, exp, m)
        self.assertIn(m.get("expired", "0"), ("0",), m)
        self.assertEqual(self.blocked_for(sh), [])


# ---------------------------------------------------------------------- bad input

class BadEventTest(CcTest):
    def test_bad_events_are_counted_and_the_worker_keeps_working(self):
        D = self.alloc(1)
        sh = "bx"
        self.config(sh)
        t = D(0, "10:00")
        self.at(t, *history(sh, "x1", [5000], t))
        # campaign_id is required: the broker rejects it at the door (missing_field)
        seq = self.s.journal_seq()
        r = self.s.pub([launch(sh, None, segment="new", event_id="bx-nocid")])
        self.assertEqual(r.returncode, 1, f"campaign.launch without campaign_id: {r.stdout}")
        self.assertIn("missing_field", r.stdout + r.stderr)
        self.assertEqual(self.s.journal_seq(), seq)
        before = self.s.worker_stats(GROUP)
        long_sms = "亲爱的{buyer}，" + "本店全场大促销活动火热进行中" * 5
        bad = [launch(sh, "b1", segment="whales"),
               launch(sh, "b2", segment="new", level="diamond"),
               launch(sh, "b3", segment="new", start=D(0, "12:00"), end=D(0, "11:00")),
               launch(sh, "b4", segment="new", channel="sms", template=long_sms),
               # before their subject (DESIGN §3.10): kept, applied when it arrives
               paid(sh, "ghost", t, amount=1000),  # no buyer_id, never created
               scan(sh, "NOPE1", 1001, t)]  # no order_id, never shipped
        self.pub(*bad)
        want = {"rejected:bad_filter": 2, "rejected:bad_window": 1, "rejected:bad_template": 1,
                "early": 2}
        wait_for(lambda: all(self.s.worker_stats(GROUP).get(k, 0) - before.get(k, 0) >= n
                             for k, n in want.items()), timeout=10, what="the rejects counted")
        after = self.s.worker_stats(GROUP)
        self.assertEqual({k: after.get(k, 0) - before.get(k, 0) for k in want}, want, after)
        for c in ("b1", "b2", "b3", "b4"):
            self.assertEqual(self.camp(sh, c), {}, f"a rejected campaign {c} was recorded")
        self.assertIsNone(self.s.procs[WORKER].poll())
        # the worker goes on: a shipment notice, a campaign
        self.at(D(0, "11:00"), *bought(sh, "g1", "x2", D(0, "11:00")),
                shipped(sh, "g1", D(0, "11:00"), "x2", tracking="YT9"),
                launch(sh, "ok", segment="new", start=D(0, "11:30")))
        self.tick(D(0, "11:30"))
        self.assertEqual(self.ids(sh), {care_id(sh, "g1", "shipped"),
                                        care_id(sh, "x1", "campaign", "ok"),
                                        care_id(sh, "x2", "campaign", "ok")})
        self.assertEqual(self.prof(sh, "x1").get("orders"), "1")


# ---------------------------------------------------------------------- caps across workers

class FleetCapTest(unittest.TestCase):
    """kefu-pay-reminder and kefu-crm-care side by side (their own Stack): the caps are the
    fleet's. A flash-sale order's reminders (im at +10 min, sms at +20 min) come before a
    birthday sms at 10:00: one marketing sms a day (cap_sms_daily); with a shipment notice
    as well, three contacts (cap_daily)."""

    def test_caps_are_shared_with_the_payment_reminders(self):
        D = Days(date(2032, 6, 7), 2)
        s = Stack(clock="simulated").start()
        try:
            s.start_worker("kefu-pay-reminder", *FAST)
            s.start_worker(WORKER, *FAST)
            self._run(s, D)
        finally:
            s.stop()

    def _pub(self, s, *events):
        r = s.pub(list(events))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        s.wait_applied()

    def _acts(self, s, sh):
        return {i: a for _, i, a in s.action_entries() if a.get("shop_id") == sh}

    def _run(self, s, D):
        sh = "fl"
        bday = md(D, 0)
        t9 = D(0, "09:00")
        self._pub(s, shop_config(sh, "fl小店"), clock(D(0, "08:00")))
        evs = []
        for b in ("fb1", "fb2", "fb3"):
            evs += history(sh, b, [10000], D(0, "08:00"), tag="h") + [profile(sh, b, bday)]
        self._pub(s, *evs)
        self._pub(s, clock(t9), *[created(sh, f"fs{b}", b, t9, kind="flash_sale")
                                  for b in ("fb1", "fb2")],
                  *bought(sh, "sh2", "fb2", t9))
        for t in (D(0, "09:10"), D(0, "09:20")):
            self._pub(s, clock(t))
        self._pub(s, clock(D(0, "09:30")), shipped(sh, "sh2", D(0, "09:30"), "fb2"))
        acts = self._acts(s, sh)
        for b in ("fb1", "fb2"):
            self.assertEqual((acts.get(f"pay:{sh}:fs{b}:2") or {}).get("channel"), "sms",
                             f"pay-reminder's sms for {b}: {sorted(acts)}")
        self.assertIn(care_id(sh, "sh2", "shipped"), acts)
        self._pub(s, clock(D(0, "09:59:59")))
        self.assertFalse([i for i in self._acts(s, sh) if ":birthday:" in i])
        self._pub(s, clock(D(0, "10:00")))
        acts = self._acts(s, sh)
        y = year(D(0, "10:00"))
        self.assertEqual(sorted(i for i in acts if ":birthday:" in i),
                         [care_id(sh, "fb3", "birthday", y)])
        blocks = sorted((e.get("buyer_id"), e.get("block")) for e in s.blocked()
                        if e.get("shop_id") == sh and e.get("reason") == "care_birthday")
        self.assertEqual(blocks, [("fb1", "cap_sms_daily"), ("fb2", "cap_daily")])
        st = s.crm_stats(sh, D.ymd(0))
        self.assertEqual({k: st.get(k, 0) for k in ("sent:birthday", "blocked:birthday:cap_daily",
                                                    "blocked:birthday:cap_sms_daily")},
                         {"sent:birthday": 1, "blocked:birthday:cap_daily": 1,
                          "blocked:birthday:cap_sms_daily": 1}, st)
        for k in ("kefu-pay-reminder", WORKER):
            self.assertIsNone(s.procs[k].poll(), f"{k} died")


class FreshStackTest(unittest.TestCase):
    """A new stack whose first events are the shops' configs, before any sys.clock (as
    `kefuctl sim` prints them): festivals come on their dates, once."""

    def test_festivals_of_a_config_sent_before_the_first_clock(self):
        D = Days(date(2032, 9, 6), 3)
        s = Stack(clock="simulated").start()
        try:
            s.start_worker(WORKER, *FAST)
            sh = "fs"

            def pub(*events):
                r = s.pub(list(events))
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                s.wait_applied()
                self.assertIsNone(s.procs[WORKER].poll(), "the worker died")

            pub(shop_config(sh, "新店", festivals=[{"date": md(D, 2), "name": "开学季"}]))
            pub(clock(D(0, "09:00")))
            pub(clock(D(0, "10:00")), *history(sh, "f1", [10000], D(0, "10:00")),
                *history(sh, "f2", [20000], D(0, "10:00")))
            for t in (D(1, "10:00"), D(2, "09:00"), D(2, "09:59:59")):
                pub(clock(t))
            acts = {i: a for _, i, a in s.action_entries()}
            self.assertEqual(sorted((i, iso(a.get("occurred_at") or 0)) for i, a in acts.items()),
                             [], "nothing before the festival's day")
            pub(clock(D(2, "10:00")))
            acts = {i: a for _, i, a in s.action_entries()}
            self.assertEqual(sorted(acts), [care_id(sh, b, "festival", D.ymd(2))
                                            for b in ("f1", "f2")])
            for a in acts.values():
                self.assertEqual((a.get("occurred_at"), a.get("channel")),
                                 (D(2, "10:00"), "sms"), a)
                self.assertIn("开学季", a.get("text", ""))
        finally:
            s.stop()


# ---------------------------------------------------------------------- exactly once

NAMES = ["王小美", "李雷", "韩梅梅", "张伟", "刘洋", "陈静", "杨帆", "赵敏"]
SKUS = [("k1", "纯棉毛巾"), ("k2", "洗衣凝珠"), ("k3", "厨房纸巾"), ("k4", "豆腐猫砂"),
        ("k5", "真丝四件套"), ("k6", "不锈钢保温杯")]
SHOP_AGENTS = {"e1": ["a1", "a2"], "e2": ["a9"], "e3": []}
OPTED = {("e1", "b3"): ["all"], ("e2", "b4"): ["sms"], ("e3", "b5"): ["im"]}


def cc_scenario(seed=11, first=date(2034, 1, 2), nbuyers=36, days=75):
    """A deterministic scenario in three shops over `days` days: buyers with 1-5 orders
    (repeat skus every 7.5-12 days, so replenishment comes due; some large, so some turn
    at_risk and are won back), order.paid with and without buyer_id and amount, shipments
    with scans (1002, 1001, 5, signed codes; some without order_id), confirmations, closes,
    profiles with birthdays and manual tags, opt-outs, festivals, campaigns (sms in the quiet
    hours, im, tag and level filters), bad events; sys.clock every 3 h for 45 days, then
    every 12 h."""
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

    def day(k):
        return first + timedelta(days=k)

    add(t0 - 1, clock(t0, event_id="g-t-start"))  # a clock before the configs: see FreshStackTest
    add(t0, shop_config("e1", "一号店", agents=SHOP_AGENTS["e1"],
                        festivals=[{"date": f"{day(4):%m-%d}", "name": "元宵节"}]))
    add(t0, shop_config("e2", "二号店", agents=SHOP_AGENTS["e2"],
                        festivals=[{"date": f"{day(12):%Y-%m-%d}", "name": "店庆日"}]))
    add(t0, shop_config("e3", "三号店", templates=[
        {"kind": "care_shipped", "channel": "im", "text": "{buyer}，您在{shop}的{item}已由"
                                                          "{carrier}发出，单号{tracking_no}"}]))
    for (s, b), ch in OPTED.items():
        add(t0 + H, optout(s, b, ch))
    shops = list(SHOP_AGENTS)
    for i in range(nbuyers):
        s, b = shops[i % 3], f"b{i}"
        name = rng.choice(NAMES)
        fav = rng.choice(SKUS)
        whale = i % 7 == 0
        norders = 1 if whale else rng.choice([1, 2, 2, 3, 3, 4, 5])
        t = t0 + rng.randrange(2 * 60, 12 * 24 * 60) * MIN
        if whale or rng.random() < 0.4:  # whales are loyal: their birthday brings a gift
            add(t - 30 * MIN, profile(s, b, f"{day(rng.randrange(2, 40)):%m-%d}",
                                      tags=["vip"] if rng.random() < 0.5 else None))
        for k in range(norders):
            oid = f"{b}o{k}"
            items = [(fav[0], fav[1], 1, rng.choice([1990, 4990, 12900, 59900]))]
            if rng.random() < 0.3:
                other = rng.choice(SKUS)
                if other != fav:
                    items.append((other[0], other[1], 1, 2990))
            total = 260000 if whale else sum(p for _, _, _, p in items)
            add(t, created(s, oid, b, t, items=items, total=total, name=name))
            tp = t + rng.randrange(1, 60) * MIN
            add(tp, paid(s, oid, tp, b if rng.random() < 0.7 else None,
                         amount=total if rng.random() < 0.5 else None))
            x = rng.random()
            if x < 0.8:
                ts = tp + rng.randrange(4, 30) * H
                tr = f"T{s}{oid}".upper()
                add(ts, shipped(s, oid, ts, b if rng.random() < 0.7 else None,
                                rng.choice(["中通", "顺丰", "圆通"]), tr))
                sc = ts
                for st, p in ((1002, 0.9), (1001, 0.7), (5, 0.7),
                              (rng.choice([3, 301, 302, 304]), 0.85)):
                    sc += rng.randrange(3, 20) * H
                    if rng.random() < p:
                        add(sc, scan(s, tr, st, sc, oid if rng.random() < 0.8 else None))
                if rng.random() < 0.1:
                    add(sc + 2 * H, closed(s, oid, sc + 2 * H, b))
                elif rng.random() < 0.3:
                    add(sc + 3 * DAY, confirmed(s, oid, sc + 3 * DAY, b))
            elif x < 0.9:
                add(tp + 5 * DAY, confirmed(s, oid, tp + 5 * DAY, b))
            t = tp + rng.choice([7.5, 9, 10, 12]) * DAY
            t = int(t // MIN * MIN)
    add(t0 + 14 * DAY + 21 * H, launch("e1", "c-new", segment="new", channel="sms",
                                       name="新客礼", start=t0 + 14 * DAY + 22 * H + 30 * MIN,
                                       end=t0 + 15 * DAY + 12 * H, event_id="g-camp1"))
    add(t0 + 20 * DAY + 10 * H, launch("e2", "c-pot", segment="potential", channel="im",
                                       name="回购季", event_id="g-camp2"))
    add(t0 + 25 * DAY + 10 * H, launch("e3", "c-rep", tags=["repeat"], level="regular",
                                       channel="im", name="老客日", event_id="g-camp3"))
    add(t0 + 26 * DAY + 10 * H, launch("e1", "c-vip", tags=["vip"], channel="sms",
                                       name="VIP日", start=t0 + 26 * DAY + 11 * H,
                                       event_id="g-camp4"))
    add(t0 + 30 * DAY, launch("e2", "c-bad", segment="whales", event_id="g-bad1"))
    add(t0 + 30 * DAY, paid("e2", "ghost", t0 + 30 * DAY, amount=100, event_id="g-bad2"))
    add(t0 + 30 * DAY, scan("e3", "NOPE", 1001, t0 + 30 * DAY, event_id="g-bad3"))
    k = 0
    t = t0
    while t <= end:
        add(t + 0.5, clock(t, event_id=f"g-t{k}"))  # after the events of the same time
        k += 1
        t += 3 * H if t < t0 + 45 * DAY else 12 * H
    timed.sort(key=lambda x: (x[0], x[1]))
    return [e for _, _, e in timed]


ACTION_FIELDS = ("buyer_id", "order_id", "channel", "reason", "contact_class", "template",
                 "text", "not_before", "occurred_at", "kind", "agent_id", "due_at", "severity")


class ExactlyOnceTest(ReplayCase):
    """Each test runs the same scenario in its own Stack and compares with a reference run:
    the action sets, and the profiles, segment counts and campaign progress."""
    WORKER = WORKER
    GROUP = GROUP
    ACTION_FIELDS = ACTION_FIELDS

    @classmethod
    def scenario(cls):
        return cc_scenario()

    @staticmethod
    def state(stack):
        """Every crm hash (profiles, items, segment counts, campaigns, results) by key."""
        r = stack.redis()
        out = {}
        for pat in ("kefu:buyer:*", "kefu:crm:items:*", "kefu:crm:segs:*", "kefu:crm:camp:*",
                    "kefu:stats:crm:*", "kefu:stats:crmg:*"):
            for k in r.scan_iter(pat, count=1000):
                out[k.decode()] = stack.hash(k.decode())
        return out

    def assert_same_as_reference(self, s):
        super().assert_same_as_reference(s)
        ref, got = self.state(self.ref), self.state(s)
        self.assertEqual(sorted(ref), sorted(got), "crm keys differ")
        diff = [k for k in ref if ref[k] != got[k]]
        self.assertEqual(diff, [], "crm state differs: " + "; ".join(
            f"{k}: {ref[k]} != {got[k]}" for k in diff[:3]))

    def test_events_applied_after_a_restart_see_the_simulated_clock(self):
        """Killed between two sys.clock events, restarted: the events it then catches up on
        (a profile with a birthday, a campaign launched without a window) are applied on the
        simulated clock where it stood (README: "the clock" is the simulated clock's now),
        not on a clock that starts again at 0."""
        s = self.new_stack()
        k = s.start_worker(WORKER, *FAST)
        D = Days(date(2035, 5, 6), 3)
        sh, t0 = "rs", D(0, "10:00")
        self.pub(s, [shop_config(sh, "重启小店"), clock(t0)] + history(sh, "b1", [10000], t0))
        s.wait_applied()
        s.kill(k)
        self.pub(s, [profile(sh, "b1", md(D, 1)), launch(sh, "c1", segment="new", name="回归")])
        s.start_worker(WORKER, *FAST)
        s.wait_applied()
        c = s.hash(f"kefu:crm:camp:{{{sh}}}:c1")
        self.assertEqual({k: c.get(k) for k in ("launched", "start", "end")},
                         {"launched": str(t0), "start": str(t0), "end": str(t0 + DAY)}, c)
        self.pub(s, [clock(D(0, "10:30")), clock(D(1, "09:59:59"))])
        s.wait_applied()
        ids = self.action_ids(s)
        self.assertEqual(ids, [care_id(sh, "b1", "campaign", "c1")])
        self.pub(s, [clock(D(1, "10:00"))])
        s.wait_applied()
        self.assertEqual(self.action_ids(s)[1:], [care_id(sh, "b1", "birthday", year(t0))])

    def test_reference_run_obeys_the_rules(self):
        p = self.ref.procs[WORKER]
        self.assertIsNone(p.poll(), f"the reference worker died (status {p.returncode})")
        self.assertEqual(len(self.ref_ids), len(set(self.ref_ids)), "an action id twice")
        kinds, problems = defaultdict(int), []
        times = [int(datetime.fromisoformat(e["now"]).timestamp() * 1000) for e in self.events
                 if e["topic"] == "sys.clock"]
        first_ms, last_ms = min(times), max(times)
        fest_days = {}
        for e in self.events:
            if e["topic"] == "shop.config":
                for f in e.get("festivals", []):
                    d = f["date"] if len(f["date"]) == 10 else \
                        f"{local(first_ms).year}-{f['date']}"
                    fest_days.setdefault(e["shop_id"], set()).add(d.replace("-", ""))

        def expect(ok, what, a):
            if not ok:
                problems.append(f"{what}: {a}")

        for t, i, a in self.ref.action_entries():
            shop, who, kind, suffix = split_id(i)
            kinds[kind] += 1
            expect(kind in KINDS, "unknown kind", i)
            expect(a.get("shop_id") == shop and a.get("worker") == WORKER, "shop/worker", a)
            b = a.get("buyer_id")
            if kind == "gift":
                expect(t == "action.task" and a.get("kind") == "care_gift", "gift task", a)
                expect(a.get("agent_id") in SHOP_AGENTS[shop] if SHOP_AGENTS[shop]
                       else not a.get("agent_id"), "gift agent", a)
                continue
            expect(t == "action.contact", "topic", i)
            expect(a.get("reason") == f"care_{kind}", "reason", a)
            expect(a.get("contact_class") == CLASS[kind], "class", a)
            if kind != "campaign":
                expect(a.get("channel") == CHANNEL[kind], "channel", a)
            ch = a.get("channel")
            oo = OPTED.get((shop, b), [])
            expect("all" not in oo and ch not in oo, "an opted-out channel", a)
            if kind in ORDER_KINDS:
                expect(a.get("order_id") == who and suffix is None, "order care id", a)
            else:
                expect(who == b and suffix, "buyer care id", a)
            expect(first_ms <= (a.get("occurred_at") or 0) <= last_ms, "occurred_at outside the "
                   "scenario", a)
            if kind == "festival":
                expect(suffix in fest_days.get(shop, ()), "festival on another date", a)
            hm = local(a.get("occurred_at") or 0)
            minute = hm.hour * 60 + hm.minute
            if ch == "sms":
                expect(8 * 60 <= minute < 22 * 60, "sms in the quiet hours", a)
                expect((a.get("text") or "").endswith(OPTOUT_SUFFIX)
                       and len(a.get("text")) <= 70, "marketing sms text", a)
            if kind in ("usage", "replenish") or (kind == "campaign" and ch == "im"):
                expect(9 * 60 <= minute < 22 * 60, "care im outside the working hours", a)
            if kind in ("birthday", "festival"):
                expect((hm.hour, hm.minute) == (10, 0), "birthday/festival at 10:00", a)
        self.assertEqual(problems, [], f"{len(problems)} problems:\n" + "\n".join(problems[:20]))
        missing = [k for k in KINDS if not kinds.get(k)]
        self.assertEqual(missing, [], f"kinds never seen: {missing} ({dict(kinds)})")


# ---------------------------------------------------------------------- kefuctl report care

class ReportTest(CcTest):
    """Runs last (load_tests): `kefuctl report care` is being written alongside. Its --json
    members are those of workers/crm-care/crm_care_kefuctl.c (segments, care, repeat,
    campaigns)."""

    def test_kefuctl_report_care(self):
        D = self.alloc(3)
        sh = "rc"
        self.config(sh)
        t0 = D(0, "10:00")
        evs = (history(sh, "g1", [10000], t0) + history(sh, "g2", [300000, 300000], t0)
               + history(sh, "g3", [60000], t0) + history(sh, "g4", [5000], t0)
               + history(sh, "g5", [5000], t0)
               + [profile(sh, b, md(D, 1)) for b in ("g1", "g2", "g3")]
               + [optout(sh, "g3", ["sms"])])
        self.at(t0, *evs)
        self.at(D(1, "10:00"))  # birthdays: g1, g2 sent, g3 blocked (optout)
        self.at(D(2, "10:00"), *history(sh, "g1", [7000], D(2, "10:00"), tag="x"),
                *history(sh, "g4", [7000, 8000], D(2, "10:00"), tag="x"),
                launch(sh, "rc-c", segment="loyal", name="老客回馈", start=D(2, "11:00")))
        self.at(D(2, "11:00"))  # the campaign: g2 (loyal), already cared
        # g1 potential (2 orders, ¥170), g2 loyal (F2 M5), g3 new, g4 potential, g5 new
        want_segs = dict.fromkeys(SEGMENTS, 0)
        want_segs.update(potential=2, loyal=1, new=2)
        want_lvls = dict.fromkeys(LEVELS, 0)
        want_lvls.update(regular=3, silver=1, platinum=1)
        g = self.crmg(sh)
        self.assertEqual({k: g.get(k, 0) for k in ("buyers", "repeat", "cared", "cared_repeat",
                                                   "uncared_repeat")},
                         {"buyers": 5, "repeat": 3, "cared": 2, "cared_repeat": 1,
                          "uncared_repeat": 1}, g)
        r = self.s.kefuctl("report", "care", "--shop", sh, "--json")
        if r.returncode != 0 and "not built" in r.stderr:
            self.fail("kefuctl report care: not built yet (" + r.stderr.strip() + ")")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        doc = json.loads(r.stdout)
        self.assertEqual(doc.get("kind"), "care", doc)
        self.assertLessEqual({"campaigns", "care", "kind", "repeat", "segments"}, set(doc), doc)
        for k in ("segments", "care", "repeat", "campaigns"):
            self.assertEqual({row.get("shop") for row in doc[k]}, {sh}, f"--shop {sh}: {k}")
        seg = doc["segments"][0]
        self.assertEqual((seg.get("buyers"), seg.get("segments"), seg.get("levels")),
                         (5, want_segs, want_lvls), seg)
        care = doc["care"][0]
        exp = {"days": 3, "first_day": D.iso_day(0), "last_day": D.iso_day(2),
               "paid_orders": 9, "new_buyers": 5, "sent": 3, "held": 0, "blocked": 1,
               "blocked_by": {"optout": 1}}
        self.assertEqual({k: care.get(k) for k in exp}, exp, care)
        kinds = {k["kind"]: k for k in care.get("kinds", [])}
        self.assertEqual(sorted(kinds), ["birthday", "campaign"], care)
        self.assertEqual({k: kinds["birthday"].get(k) for k in ("sent", "held", "blocked",
                                                                 "blocked_by")},
                         {"sent": 2, "held": 0, "blocked": 1, "blocked_by": {"optout": 1}})
        self.assertEqual((kinds["campaign"].get("sent"), kinds["campaign"].get("blocked")),
                         (1, 0), kinds["campaign"])
        rep = doc["repeat"][0]
        exp = {"buyers": 5, "repeat": 3, "cared": 2, "cared_repeat": 1, "not_cared": 3,
               "not_cared_repeat": 1}
        self.assertEqual({k: rep.get(k) for k in exp}, exp, rep)
        self.assertAlmostEqual(rep.get("cared_rate"), 0.5, places=4)
        self.assertAlmostEqual(rep.get("not_cared_rate"), 1 / 3, places=4)
        camps = {c["campaign_id"]: c for c in doc["campaigns"]}
        self.assertEqual(sorted(camps), ["rc-c"], doc["campaigns"])
        c = camps["rc-c"]
        exp = {"name": "老客回馈", "state": "done", "segment": "loyal", "channel": "im",
               "start": iso(D(2, "11:00")), "end": iso(D(3, "11:00")),
               "launched": iso(D(2, "10:00")), "parts_done": 64, "matched": 1, "sent": 1,
               "blocked": 0, "expired": 0}
        self.assertEqual({k: c.get(k) for k in exp}, exp, c)
        # one day: the counts of that day only; the current state stays whole
        r = self.s.kefuctl("report", "care", "--shop", sh, "--from", D.iso_day(1), "--to",
                           D.iso_day(1), "--json")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        day = json.loads(r.stdout)
        care = day["care"][0]
        self.assertEqual({k: care.get(k) for k in ("days", "paid_orders", "sent", "blocked")},
                         {"days": 1, "paid_orders": 0, "sent": 2, "blocked": 1}, care)
        self.assertEqual(day["segments"], doc["segments"])
        # the table for people names the shop, its segments and the campaign
        r = self.s.kefuctl("report", "care", "--shop", sh)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        for word in (sh, "birthday", "rc-c", "potential", "老客回馈"):
            self.assertIn(word, r.stdout.lower())


def load_tests(loader, tests, pattern):
    """The module's tests in the usual order, ReportTest last."""
    suite = unittest.TestSuite()
    last = unittest.TestSuite()
    for group in tests:
        for t in (group if isinstance(group, unittest.TestSuite) else [group]):
            (last if isinstance(t, ReportTest) else suite).addTest(t)
    suite.addTests(last)
    return suite


if __name__ == "__main__":
    unittest.main()
