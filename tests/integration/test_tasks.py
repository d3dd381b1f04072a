"""kefuctl tasks: the open tasks of every worker, oldest due first.

Fixtures are written straight into Redis in the workers' format (common/kf_worker.lua,
K.task_open): the ZSET kefu:tasks scores each task id by its due time in epoch ms, and
kefu:task:<task_id> holds the task's flat JSON (times in epoch ms). One end-to-end check runs
the real kefu-logistics worker when it is built.
"""
import json
import os
import unittest
from datetime import datetime, timedelta, timezone

from kefu_harness import BIN, Stack

TZ = timezone(timedelta(hours=8))
MIN = 60 * 1000
H = 60 * MIN
DAY = 24 * H
COLUMNS = ["DUE", "AGENT", "KIND", "SEVERITY", "ORDER", "CASE", "SUMMARY"]


def ms(s):
    return int(datetime.fromisoformat(s).timestamp() * 1000)


def iso(t):
    return datetime.fromtimestamp(t / 1000, TZ).isoformat()


def task(tid, due, **kw):
    t = {"topic": "action.task", "task_id": tid, "event_id": tid, "shop_id": "s1",
         "occurred_at": due - H, "due_at": due, "priority": 2, "worker": "test"}
    t.update(kw)
    return t


LONG = "product, logistics: 补发/部分退款后请求修改; 道歉+补偿+改进物流; 建议补偿¥10 (差评)"
T_REVIEW = task("rv:s1:r1:contact", ms("2026-11-12T10:00:00+08:00"), agent_id="a1",
                kind="review_repair", severity="high", order_id="s1-20261110-00001",
                case_id="rv:s1:r1", reason="review_repair", summary=LONG)
T_STALLED = task("lg:s1:o2:stalled:task", ms("2026-11-11T09:30:00+08:00"), kind="stalled",
                 severity="warn", order_id="o2", reason="logistics_stalled",
                 summary="stalled: 中通 ZT123")
T_A2 = task("rv:s2:r9:contact", ms("2026-11-13T21:05:00+08:00"), agent_id="a2",
            kind="review_repair", severity="warn", order_id="s2-o9", case_id="rv:s2:r9",
            summary="subjective: 优惠券或小额补偿")


def parse(out):
    lines = out.rstrip("\n").split("\n")
    assert lines[0].split() == COLUMNS, lines[0]
    starts = [lines[0].index(c) for c in COLUMNS]
    rows = []
    for line in lines[1:]:
        # the cells start where their headers start (all left-aligned); DUE holds a space
        cells = [line[:starts[1]].strip()] + line[starts[1]:].split(None, 5)
        rows.append(dict(zip(COLUMNS, cells)))
    return rows


class TasksTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def setUp(self):
        self.r = self.stack.redis()
        self.r.flushdb()

    def put(self, *tasks):
        for t in tasks:
            self.r.zadd("kefu:tasks", {t["task_id"]: t["due_at"]})
            self.r.set("kefu:task:" + t["task_id"], json.dumps(t, ensure_ascii=False))

    def tasks(self, *args, rc=0):
        r = self.stack.kefuctl("tasks", *args)
        self.assertEqual(r.returncode, rc, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def test_table_oldest_due_first_with_every_column(self):
        self.put(T_REVIEW, T_A2, T_STALLED)
        r = self.tasks()
        rows = parse(r.stdout)
        self.assertEqual([x["DUE"] for x in rows], ["11-11 09:30", "11-12 10:00", "11-13 21:05"])
        self.assertEqual(rows[0], {"DUE": "11-11 09:30", "AGENT": "-", "KIND": "stalled",
                                   "SEVERITY": "warn", "ORDER": "o2", "CASE": "-",
                                   "SUMMARY": "stalled: 中通 ZT123"})
        self.assertEqual(rows[1]["AGENT"], "a1")
        self.assertEqual(rows[1]["CASE"], "rv:s1:r1")
        self.assertEqual(rows[1]["SEVERITY"], "high")
        # 40 characters, cut on a character boundary, the last one an ellipsis
        self.assertEqual(len(rows[1]["SUMMARY"]), 40)
        self.assertEqual(rows[1]["SUMMARY"], LONG[:39] + "…")
        self.assertEqual(r.stderr, "")

    def test_agent_filter(self):
        self.put(T_REVIEW, T_A2, T_STALLED)
        rows = parse(self.tasks("--agent", "a2").stdout)
        self.assertEqual([x["CASE"] for x in rows], ["rv:s2:r9"])
        self.assertEqual(self.tasks("--agent", "nobody").stdout, "no open tasks\n")

    def test_json_is_the_tasks_with_rfc3339_times(self):
        self.put(T_REVIEW, T_STALLED)
        doc = json.loads(self.tasks("--json").stdout)
        self.assertEqual([t["task_id"] for t in doc], [T_STALLED["task_id"], T_REVIEW["task_id"]])
        want = dict(T_REVIEW, due_at="2026-11-12T10:00:00+08:00",
                    occurred_at="2026-11-12T09:00:00+08:00")
        self.assertEqual(doc[1], want)
        self.assertEqual(json.loads(self.tasks("--json", "--agent", "a1").stdout), [want])
        self.assertEqual(json.loads(self.tasks("--json", "--agent", "zz").stdout), [])

    def test_none_says_so(self):
        self.assertEqual(self.tasks().stdout, "no open tasks\n")
        self.assertEqual(json.loads(self.tasks("--json").stdout), [])

    def test_missing_and_broken_task_bodies_are_skipped(self):
        self.put(T_REVIEW)
        self.r.zadd("kefu:tasks", {"gone": 1, "broken": 2})  # no body / not JSON
        self.r.set("kefu:task:broken", "{nope")
        r = self.tasks()
        self.assertEqual([x["CASE"] for x in parse(r.stdout)], ["rv:s1:r1"])
        self.assertIn("kefu:task:broken", r.stderr)
        self.assertNotIn("gone", r.stderr)

    def test_many_tasks_in_batches(self):
        base = ms("2026-11-11T00:00:00+08:00")
        ts = [task(f"t{i:04d}", base + (999 - i) * MIN, agent_id="a1", kind="k",
                   severity="info", summary=str(i)) for i in range(1000)]
        pipe = self.r.pipeline()
        for t in ts:
            pipe.zadd("kefu:tasks", {t["task_id"]: t["due_at"]})
            pipe.set("kefu:task:" + t["task_id"], json.dumps(t))
        pipe.execute()
        doc = json.loads(self.tasks("--json").stdout)
        self.assertEqual(len(doc), 1000)
        self.assertEqual(doc[0]["task_id"], "t0999")
        self.assertEqual(doc[-1]["task_id"], "t0000")

    def test_usage_errors_exit_2(self):
        for args in (["--agent"], ["--bogus"], ["extra"], ["--agent", ""]):
            r = self.tasks(*args, rc=2)
            self.assertEqual(r.stdout, "")
            self.assertIn("usage: kefuctl tasks", r.stderr)

    def test_redis_down_exits_1(self):
        with Stack() as stack:
            stack.stop_redis()
            r = stack.kefuctl("tasks")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertIn("refused", r.stderr)


@unittest.skipUnless(os.path.exists(os.path.join(BIN, "kefu-logistics")),
                     "kefu-logistics is not built")
class TasksFromTheLogisticsWorkerTest(unittest.TestCase):
    def test_a_difficult_delivery_task_shows_until_the_parcel_is_signed(self):
        t0 = ms("2027-05-10T00:00:00+08:00")
        with Stack(clock="simulated") as s:
            s.start_worker("kefu-logistics", "-o", "log.heartbeat_ms=100")

            def pub(*events):
                r = s.pub(list(events))
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                s.wait_applied()

            def sc(state, at):
                return {"topic": "logistics.scan", "event_id": f"sc-{state}", "shop_id": "tk",
                        "tracking_no": "TTK1", "carrier": "中通", "order_id": "o1",
                        "state": state, "city": "杭州", "description": "x", "at": iso(at)}

            pub({"topic": "sys.clock", "now": iso(t0)})
            pub({"topic": "shop.config", "event_id": "cfg-tk", "shop_id": "tk",
                 "name": "tk小店", "agents": ["agx"]})
            pub({"topic": "order.paid", "event_id": "p-o1", "shop_id": "tk", "order_id": "o1",
                 "at": iso(t0 + H), "buyer_id": "b1"},
                {"topic": "order.shipped", "event_id": "s-o1", "shop_id": "tk",
                 "order_id": "o1", "carrier": "中通", "tracking_no": "TTK1",
                 "shipped_at": iso(t0 + 2 * H), "buyer_id": "b1"})
            self.assertEqual(s.kefuctl("tasks", check=True).stdout, "no open tasks\n")
            pub(sc(206, t0 + 10 * H))
            rows = parse(s.kefuctl("tasks", check=True).stdout)
            self.assertEqual(len(rows), 1, rows)
            self.assertEqual(rows[0]["KIND"], "difficult")
            self.assertEqual(rows[0]["ORDER"], "o1")
            self.assertEqual(rows[0]["DUE"], "05-11 10:00")  # 24 h after the scan
            doc = json.loads(s.kefuctl("tasks", "--json", check=True).stdout)
            self.assertEqual(doc[0]["task_id"], "lg:tk:o1:difficult:task")
            self.assertEqual(doc[0]["due_at"], "2027-05-11T10:00:00+08:00")
            pub(sc(301, t0 + 20 * H))
            self.assertEqual(s.kefuctl("tasks", check=True).stdout, "no open tasks\n")


if __name__ == "__main__":
    unittest.main()
