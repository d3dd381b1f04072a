"""kefuctl report payments / logistics / reviews: the workers' results in Redis as tables and as JSON.

The fixtures are written straight into Redis in the workers' documented output formats:
workers/pay-reminder/README.md "Results" (one hash per shop and shop-local day,
kefu:stats:pay:{<shop_id>}:<yyyymmdd>) and workers/logistics/README.md "State and results"
(kefu:stats:lg:{<shop_id>}:<yyyymmdd>, kefu:stats:lgc:{<shop_id>}, kefu:lg:open:{<shop_id>},
kefu:lg:resolve:{<shop_id>}, and the simulated clock kefu:clock), and
workers/review-repair/README.md "State and results" (kefu:stats:rv:{<shop_id>}:<yyyymmdd>,
kefu:stats:rvagent:{<shop_id>}, kefu:rv:fc:{<shop_id>}:<agent>, kefu:stats:rvsku:{<shop_id>}),
and workers/crm-care/README.md "Campaigns" and "Results" (kefu:crm:segs:{<shop_id>},
kefu:stats:crm:{<shop_id>}:<yyyymmdd>, kefu:stats:crmg:{<shop_id>}, kefu:crm:campaigns and
kefu:crm:camp:{<shop_id>}:<campaign_id>).
"""
import json
import time
import unicodedata
import unittest

from kefu_harness import Stack

FIELDS = ["orders", "paid", "closed", "unpaid", "reminded", "reminders", "reminders_im",
          "reminders_sms", "reminders_phone", "paid_after_reminder", "recovered_fen"]
COLUMNS = ["SHOP", "DAY", "ORDERS", "UNPAID", "REMINDED", "REMINDERS", "PAID_AFTER", "CONV",
           "RECOVERED", "BLOCKED"]


def key(shop, day):
    return f"kefu:stats:pay:{{{shop}}}:{day}"


# Three shop-days; s2 has no reminders at all (conversion undefined).
S1_10 = {"orders": 40, "paid": 30, "closed": 2, "unpaid": 8, "reminded": 8, "reminders": 11,
         "reminders_im": 7, "reminders_sms": 3, "reminders_phone": 1, "paid_after_reminder": 2,
         "recovered_fen": 123450, "blocked:deadline": 3, "blocked:cap_sms_daily": 1}
S1_11 = {"orders": 100, "unpaid": 12, "reminded": 9, "reminders": 9, "reminders_im": 9,
         "paid_after_reminder": 3, "recovered_fen": 99, "paid": 85}
S2_10 = {"orders": 5, "paid": 4, "unpaid": 1, "blocked:optout": 1}


def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def parse_table(out):
    """Rows of the table as dicts by column name (BLOCKED may hold spaces; TOTAL has no day)."""
    lines = out.rstrip("\n").split("\n")
    assert lines[0].split() == COLUMNS, lines[0]
    rows = []
    for line in lines[1:]:
        if line.startswith("TOTAL"):
            cells = line.split(None, 8)
            cells.insert(1, "")
        else:
            cells = line.split(None, 9)
        rows.append(dict(zip(COLUMNS, cells)))
    return lines, rows


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def setUp(self):
        self.r = self.stack.redis()
        self.r.flushdb()

    def put(self, shop, day, fields):
        self.r.hset(key(shop, day), mapping=fields)

    def fixtures(self):
        # written out of order: the report sorts by shop, then day
        self.put("s2", "20261110", S2_10)
        self.put("s1", "20261111", S1_11)
        self.put("s1", "20261110", S1_10)

    def report(self, *args, rc=0):
        r = self.stack.kefuctl("report", *args)
        self.assertEqual(r.returncode, rc, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def table(self, *args):
        return parse_table(self.report("payments", *args).stdout)

    def json(self, *args):
        r = self.report("payments", "--json", *args)
        return json.loads(r.stdout)

    # ------------------------------------------------------------------ the table
    def test_table_rows_conversion_recovered_blocked_and_total(self):
        self.fixtures()
        lines, rows = self.table()
        self.assertEqual([(x["SHOP"], x["DAY"]) for x in rows],
                         [("s1", "2026-11-10"), ("s1", "2026-11-11"), ("s2", "2026-11-10"),
                          ("TOTAL", "")])
        self.assertEqual(rows[0], {
            "SHOP": "s1", "DAY": "2026-11-10", "ORDERS": "40", "UNPAID": "8", "REMINDED": "8",
            "REMINDERS": "11", "PAID_AFTER": "2", "CONV": "25.0%", "RECOVERED": "¥1234.50",
            "BLOCKED": "cap_sms_daily=1 deadline=3"})
        self.assertEqual(rows[1]["CONV"], "33.3%")
        self.assertEqual(rows[1]["RECOVERED"], "¥0.99")
        self.assertEqual(rows[1]["BLOCKED"], "-")
        self.assertEqual(rows[2]["CONV"], "-")          # nobody reminded: no conversion
        self.assertEqual(rows[2]["REMINDED"], "0")      # absent field = 0
        self.assertEqual(rows[2]["RECOVERED"], "¥0.00")
        self.assertEqual(rows[2]["BLOCKED"], "optout=1")
        # the total sums the counters and recomputes the conversion: 5/17, not a mean of rates
        self.assertEqual(rows[3], {
            "SHOP": "TOTAL", "DAY": "", "ORDERS": "145", "UNPAID": "21", "REMINDED": "17",
            "REMINDERS": "20", "PAID_AFTER": "5", "CONV": "29.4%", "RECOVERED": "¥1235.49",
            "BLOCKED": "cap_sms_daily=1 deadline=3 optout=1"})
        self.assert_aligned(lines)

    def assert_aligned(self, lines):
        """Right-aligned cells end where their header ends, BLOCKED starts where its header
        starts, counting wide characters as two terminal columns."""

        def at(line, col):  # the index of the character starting at display column col
            w = i = 0
            while i < len(line) and w < col:
                w += width(line[i])
                i += 1
            self.assertEqual(w, col, f"no character boundary at column {col}: {line!r}")
            return i

        header = lines[0]
        for name in COLUMNS[2:9]:
            end = header.index(name) + len(name)
            for line in lines[1:]:
                i = at(line, end)
                self.assertNotEqual(line[i - 1], " ", f"{name} not aligned in {line!r}")
                self.assertIn(line[i:i + 1], ("", " "), f"{name} not aligned in {line!r}")
        start = header.index("BLOCKED")
        for line in lines[1:]:
            i = at(line, start)
            self.assertEqual(line[i - 1], " ", line)
            self.assertNotEqual(line[i], " ", line)

    def test_one_row_has_no_total(self):
        self.put("s1", "20261110", S1_10)
        lines, rows = self.table()
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["SHOP"], "s1")

    def test_wide_shop_names_keep_the_columns_aligned(self):
        self.put("店铺A", "20261110", S2_10)
        self.put("s1", "20261110", S1_10)
        lines, rows = self.table()
        self.assertEqual([x["SHOP"] for x in rows], ["s1", "店铺A", "TOTAL"])
        self.assert_aligned(lines)

    # ------------------------------------------------------------------ JSON
    def test_json_has_every_field_conversion_ratio_and_totals(self):
        self.fixtures()
        doc = self.json()
        self.assertEqual(doc["kind"], "payments")
        rows = doc["rows"]
        self.assertEqual([(x["shop"], x["day"]) for x in rows],
                         [("s1", "2026-11-10"), ("s1", "2026-11-11"), ("s2", "2026-11-10")])
        want = {"shop": "s1", "day": "2026-11-10", "blocked": {"deadline": 3, "cap_sms_daily": 1},
                "conversion": 0.25}
        want.update({f: S1_10[f] for f in FIELDS})
        self.assertEqual(rows[0], want)
        self.assertAlmostEqual(rows[1]["conversion"], 3 / 9, places=5)
        self.assertEqual(rows[1]["blocked"], {})
        self.assertEqual(rows[1]["closed"], 0)
        self.assertIsNone(rows[2]["conversion"])
        self.assertEqual(rows[2]["blocked"], {"optout": 1})
        t = doc["totals"]
        for f in FIELDS:
            self.assertEqual(t[f], sum(d.get(f, 0) for d in (S1_10, S1_11, S2_10)), f)
        self.assertAlmostEqual(t["conversion"], 5 / 17, places=5)
        self.assertEqual(t["blocked"], {"deadline": 3, "cap_sms_daily": 1, "optout": 1})
        self.assertEqual(set(t), set(FIELDS) | {"conversion", "blocked"})

    def test_json_without_data_is_an_empty_report(self):
        doc = self.json()
        self.assertEqual(doc["rows"], [])
        self.assertIsNone(doc["totals"]["conversion"])
        self.assertEqual(doc["totals"]["orders"], 0)
        self.assertEqual(doc["totals"]["blocked"], {})

    # ------------------------------------------------------------------ filters
    def test_shop_from_and_to_filter_inclusively(self):
        self.fixtures()
        self.put("s1", "20261112", {"orders": 7})
        self.put("s10", "20261111", {"orders": 1})  # a shop whose id starts like s1's
        self.put("s[1]", "20261111", {"orders": 2})  # glob characters in a shop id

        def days(*args):
            return [(x["shop"], x["day"]) for x in self.json("--all-days", *args)["rows"]]

        self.assertEqual(days("--shop", "s1"),
                         [("s1", "2026-11-10"), ("s1", "2026-11-11"), ("s1", "2026-11-12")])
        self.assertEqual(days("--shop", "s[1]"), [("s[1]", "2026-11-11")])
        self.assertEqual(days("--from", "2026-11-11", "--to", "2026-11-11"),
                         [("s1", "2026-11-11"), ("s10", "2026-11-11"), ("s[1]", "2026-11-11")])
        self.assertEqual(days("--from", "2026-11-12"), [("s1", "2026-11-12")])
        self.assertEqual(days("--to", "2026-11-10"), [("s1", "2026-11-10"), ("s2", "2026-11-10")])
        self.assertEqual(days("--shop", "s1", "--from", "2026-11-11", "--to", "2026-11-12"),
                         [("s1", "2026-11-11"), ("s1", "2026-11-12")])
        lines, rows = self.table("--shop", "s2")
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["ORDERS"], "5")
        self.assertEqual(self.json("--shop", "s1", "--to", "2026-11-11")["totals"]["orders"], 140)

    def test_days_without_reminder_activity_need_all_days(self):
        """An imported history leaves days with orders and nothing unpaid, reminded or
        blocked: no row (the TOTAL counts them), unless --all-days."""
        self.put("s1", "20260901", {"orders": 3, "paid": 3})
        self.put("s1", "20260902", {"orders": 2, "paid": 2})
        self.put("s1", "20260903", {"orders": 4, "unpaid": 1, "paid": 3})
        self.put("s1", "20260904", {"orders": 1, "blocked:stale": 1})
        doc = self.json()
        self.assertEqual([x["day"] for x in doc["rows"]], ["2026-09-03", "2026-09-04"])
        self.assertEqual(doc["totals"]["orders"], 10)
        self.assertEqual(len(self.json("--all-days")["rows"]), 4)
        lines, rows = self.table()
        self.assertEqual([r["DAY"] for r in rows if r["SHOP"] == "s1"],
                         ["2026-09-03", "2026-09-04"])

    def test_no_data_says_so_and_succeeds(self):
        r = self.report("payments")
        self.assertEqual(r.stdout, "no payment data\n")
        self.fixtures()
        r = self.report("payments", "--shop", "nosuchshop")
        self.assertEqual(r.stdout, "no payment data\n")
        r = self.report("payments", "--from", "2027-01-01")
        self.assertEqual(r.stdout, "no payment data\n")

    # ------------------------------------------------------------------ untrusted data
    def test_malformed_keys_and_values_are_skipped_with_a_note(self):
        self.put("s1", "20261110", dict(S1_10, orders="forty", future_field=9))
        bad = ["kefu:stats:pay:s1:20261110",            # no hash tag
               "kefu:stats:pay:{s1}:2026111",           # 7 digits
               "kefu:stats:pay:{s1}:20261399",          # no such day
               "kefu:stats:pay:{}:20261110",            # no shop
               "kefu:stats:pay:{s1}:20261110:x",        # trailing junk
               "kefu:stats:pay:{s\x01}:20261110"]       # control character in the shop
        for k in bad:
            self.r.hset(k, mapping={"orders": 1000})
        self.r.set(key("s3", "20261110"), "not a hash")
        self.r.hset("kefu:stats:logistics:{s1}:20261110", mapping={"orders": 1000})
        r = self.report("payments", "--json")
        doc = json.loads(r.stdout)
        self.assertEqual([x["shop"] for x in doc["rows"]], ["s1"])
        row = doc["rows"][0]
        self.assertEqual(row["orders"], 0)         # "forty" is not a count
        self.assertEqual(row["unpaid"], 8)         # the rest of the hash still counts
        self.assertNotIn("future_field", row)
        self.assertIn(f"skipped {len(bad)} keys", r.stderr)
        self.assertIn(key("s3", "20261110"), r.stderr)
        self.assertIn("forty", r.stderr)

    def test_scan_walks_every_key_beyond_one_batch(self):
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for shop in ("a", "b", "c", "d"):
            for month in range(1, 13):
                for day in range(1, 29):
                    pipe.hset(key(shop, f"2026{month:02d}{day:02d}"), mapping={"orders": 1})
                    n += 1
        pipe.execute()
        doc = self.json("--all-days")  # days with orders only: rows only when asked
        self.assertEqual(len(doc["rows"]), n)
        self.assertEqual(doc["totals"]["orders"], n)
        self.assertEqual(len(self.json("--all-days", "--shop", "c", "--from", "2026-03-01",
                                       "--to", "2026-03-31")["rows"]), 28)
        self.assertEqual(self.json("--shop", "c")["rows"], [])

    # ------------------------------------------------------------------ usage and failures
    def test_usage_errors_exit_2(self):
        for args in (["frobnicate"], [], ["payments", "extra"], ["payments", "--bogus"],
                     ["payments", "--from", "2026-13-01"], ["payments", "--to", "2026-02-29"],
                     ["payments", "--from", "20261110"], ["payments", "--from", "2026-1-1"],
                     ["payments", "--from", ""], ["payments", "--shop", ""],
                     ["payments", "--from", "2026-11-12", "--to", "2026-11-10"],
                     ["payments", "--shop"]):
            r = self.stack.kefuctl("report", *args)
            self.assertEqual(r.returncode, 2, (args, r.stdout, r.stderr))
            self.assertIn("usage: kefuctl report", r.stderr)
            self.assertEqual(r.stdout, "")
        self.report("payments", "--from", "2028-02-29")  # a leap day is a day

    def test_every_kind_of_design_10_is_built(self):
        for kind in ("payments", "logistics", "reviews", "care"):
            r = self.report(kind)
            self.assertNotIn("not built yet", r.stderr)
            self.assertTrue(r.stdout.startswith("no "), (kind, r.stdout))


# ---------------------------------------------------------------------- logistics
H = 3600 * 1000
MIN = 60 * 1000
CLOCK = 1762833600000  # kefu:clock: 2026-11-11T12:00:00+08:00
LG_S1_10 = {"shipped": 120, "anomalies": 5, "anomaly:stalled": 3, "anomaly:difficult": 2,
            "resolved": 2, "overdue_shipping": 1}
LG_S1_11 = {"shipped": 80, "anomalies": 1, "anomaly:signed_by_other": 1, "resolved": 3}
LG_S2_10 = {"shipped": 7, "overdue_shipping": 2}
DAY_COLUMNS = ["SHOP", "DAY", "SHIPPED", "ANOMALIES", "RESOLVED", "OVERDUE_SHIPPING", "BY_KIND"]
OPEN_COLUMNS = ["SHOP", "OPEN_KIND", "COUNT", "OLDEST_HOURS"]
CARRIER_COLUMNS = ["SHOP", "CARRIER", "SHIPMENTS", "ANOMALIES", "RATE"]


def split_table(block, columns, free_last=False):
    """The rows of one section as dicts (the last column may hold spaces when free_last)."""
    lines = block.split("\n")
    assert lines[0].split() == columns, lines[0]
    rows = []
    for line in lines[1:]:
        n = len(columns) - 1
        if line.startswith("TOTAL"):
            cells = line.split(None, n - 1)
            cells.insert(1, "")
        else:
            cells = line.split(None, n) if free_last else line.split()
        rows.append(dict(zip(columns, cells)))
    return lines, rows


class LogisticsReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def setUp(self):
        self.r = self.stack.redis()
        self.r.flushdb()

    def fixtures(self):
        r = self.r
        r.hset("kefu:stats:lg:{s2}:20261110", mapping=LG_S2_10)
        r.hset("kefu:stats:lg:{s1}:20261111", mapping=LG_S1_11)
        r.hset("kefu:stats:lg:{s1}:20261110", mapping=LG_S1_10)
        r.set("kefu:clock", str(CLOCK))
        r.zadd("kefu:lg:open:{s1}", {"s1-20261110-00001:stalled": CLOCK - 24 * H,
                                     "s1-20261110-00002:stalled": CLOCK - 12 * H,
                                     "s1-20261110-00003:difficult": CLOCK - 6 * H - H // 4})
        r.zadd("kefu:lg:open:{s2}", {"s2-20261110-00009:no_pickup_scan": CLOCK - 50 * H})
        r.hset("kefu:stats:lgc:{s1}", mapping={"中通:shipments": 100, "中通:anomalies": 4,
                                               "顺丰:shipments": 150, "顺丰:anomalies": 1,
                                               "极兔:anomalies": 1})
        r.hset("kefu:stats:lgc:{s2}", mapping={"圆通:shipments": 7, "圆通:anomalies": 0})
        # resolve times, newest first: 1 h, 2 h, 10 h, 25 h -> median 6.0 h
        r.rpush("kefu:lg:resolve:{s1}", 1 * H, 2 * H, 10 * H, 25 * H)
        r.rpush("kefu:lg:resolve:{s2}", 5400000, 3723000, 30 * H)  # odd: 1.5 h

    def report(self, *args, rc=0):
        r = self.stack.kefuctl("report", "logistics", *args)
        self.assertEqual(r.returncode, rc, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def json(self, *args):
        return json.loads(self.report("--json", *args).stdout)

    def sections(self, *args):
        out = self.report(*args).stdout
        self.assertTrue(out.endswith("\n"))
        return out.rstrip("\n").split("\n\n")

    def test_table_has_the_days_the_open_anomalies_the_carriers_and_the_median(self):
        self.fixtures()
        days, open_, carriers, median = self.sections()
        lines, rows = split_table(days, DAY_COLUMNS, free_last=True)
        self.assertEqual(rows, [
            {"SHOP": "s1", "DAY": "2026-11-10", "SHIPPED": "120", "ANOMALIES": "5",
             "RESOLVED": "2", "OVERDUE_SHIPPING": "1", "BY_KIND": "difficult=2 stalled=3"},
            {"SHOP": "s1", "DAY": "2026-11-11", "SHIPPED": "80", "ANOMALIES": "1",
             "RESOLVED": "3", "OVERDUE_SHIPPING": "0", "BY_KIND": "signed_by_other=1"},
            {"SHOP": "s2", "DAY": "2026-11-10", "SHIPPED": "7", "ANOMALIES": "0",
             "RESOLVED": "0", "OVERDUE_SHIPPING": "2", "BY_KIND": "-"},
            {"SHOP": "TOTAL", "DAY": "", "SHIPPED": "207", "ANOMALIES": "6", "RESOLVED": "5",
             "OVERDUE_SHIPPING": "3", "BY_KIND": "difficult=2 signed_by_other=1 stalled=3"}])
        self.assert_right_aligned(lines, DAY_COLUMNS[2:6])
        lines, rows = split_table(open_, OPEN_COLUMNS)
        # by shop, then kind; the age of the oldest on kefu:clock, one decimal
        self.assertEqual([tuple(x.values()) for x in rows],
                         [("s1", "difficult", "1", "6.3"), ("s1", "stalled", "2", "24.0"),
                          ("s2", "no_pickup_scan", "1", "50.0")])
        self.assert_right_aligned(lines, OPEN_COLUMNS[2:])
        lines, rows = split_table(carriers, CARRIER_COLUMNS)
        # by shop, then most shipments; a carrier without shipments has no rate
        self.assertEqual([tuple(x.values()) for x in rows],
                         [("s1", "顺丰", "150", "1", "0.7%"), ("s1", "中通", "100", "4", "4.0%"),
                          ("s1", "极兔", "0", "1", "-"), ("s2", "圆通", "7", "0", "0.0%")])
        self.assert_right_aligned(lines, CARRIER_COLUMNS[2:])
        self.assertEqual(median, "median time to resolve: s1 6.0 h (4 resolved), "
                                 "s2 1.5 h (3 resolved)")

    def assert_right_aligned(self, lines, names):
        """Right-aligned cells end where their header ends, in terminal columns (CJK = 2)."""
        header = lines[0]
        for name in names:
            end = width(header[:header.index(name) + len(name)])
            for line in lines[1:]:
                w = i = 0
                while i < len(line) and w < end:
                    w += width(line[i])
                    i += 1
                self.assertEqual(w, end, f"{name} in {line!r}")
                self.assertNotEqual(line[i - 1], " ", f"{name} not aligned in {line!r}")
                self.assertIn(line[i:i + 1], ("", " "), f"{name} not aligned in {line!r}")

    def test_json_document(self):
        self.fixtures()
        doc = self.json()
        self.assertEqual(doc, {
            "kind": "logistics",
            "days": [
                {"shop": "s1", "day": "2026-11-10", "shipped": 120, "anomalies": 5,
                 "resolved": 2, "overdue_shipping": 1,
                 "anomalies_by_kind": {"difficult": 2, "stalled": 3}},
                {"shop": "s1", "day": "2026-11-11", "shipped": 80, "anomalies": 1,
                 "resolved": 3, "overdue_shipping": 0,
                 "anomalies_by_kind": {"signed_by_other": 1}},
                {"shop": "s2", "day": "2026-11-10", "shipped": 7, "anomalies": 0,
                 "resolved": 0, "overdue_shipping": 2, "anomalies_by_kind": {}}],
            "open": [
                {"shop": "s1", "kind": "difficult", "count": 1, "oldest_hours": 6.3},
                {"shop": "s1", "kind": "stalled", "count": 2, "oldest_hours": 24.0},
                {"shop": "s2", "kind": "no_pickup_scan", "count": 1, "oldest_hours": 50.0}],
            "carriers": [
                {"shop": "s1", "carrier": "顺丰", "shipments": 150, "anomalies": 1,
                 "rate": doc["carriers"][0]["rate"]},
                {"shop": "s1", "carrier": "中通", "shipments": 100, "anomalies": 4, "rate": 0.04},
                {"shop": "s1", "carrier": "极兔", "shipments": 0, "anomalies": 1, "rate": None},
                {"shop": "s2", "carrier": "圆通", "shipments": 7, "anomalies": 0, "rate": 0.0}],
            "median_resolve_hours": {"s1": 6.0, "s2": 1.5}})
        self.assertAlmostEqual(doc["carriers"][0]["rate"], 1 / 150, places=5)

    def test_ages_on_the_wall_clock_without_kefu_clock(self):
        now = int(time.time() * 1000)
        self.r.zadd("kefu:lg:open:{s1}", {"o1:lost": now - 5 * H, "o2:lost": now - 2 * H})
        doc = self.json()
        self.assertEqual(len(doc["open"]), 1)
        self.assertEqual(doc["open"][0]["count"], 2)
        self.assertAlmostEqual(doc["open"][0]["oldest_hours"], 5.0, delta=0.11)
        self.assertEqual(doc["days"], [])
        # a simulated clock wins, even when it is behind the wall clock
        self.r.set("kefu:clock", str(now - 3 * H))
        self.assertEqual(self.json()["open"][0]["oldest_hours"], 2.0)

    def test_shop_filters_every_part_and_days_filter_the_day_table(self):
        self.fixtures()
        self.r.hset("kefu:stats:lg:{s10}:20261110", mapping={"shipped": 1})
        self.r.hset("kefu:stats:lgc:{s10}", mapping={"中通:shipments": 1})
        doc = self.json("--shop", "s2")
        self.assertEqual([(x["shop"], x["day"]) for x in doc["days"]], [("s2", "2026-11-10")])
        self.assertEqual([x["shop"] for x in doc["open"]], ["s2"])
        self.assertEqual([x["carrier"] for x in doc["carriers"]], ["圆通"])
        self.assertEqual(doc["median_resolve_hours"], {"s2": 1.5})
        doc = self.json("--from", "2026-11-11", "--to", "2026-11-11")
        self.assertEqual([(x["shop"], x["day"]) for x in doc["days"]], [("s1", "2026-11-11")])
        self.assertEqual(len(doc["open"]), 3)  # the current state is not by day
        self.assertEqual(len(doc["carriers"]), 5)
        days, *_ = self.sections("--shop", "s1", "--to", "2026-11-10")
        lines, rows = split_table(days, DAY_COLUMNS, free_last=True)
        self.assertEqual(len(rows), 1)  # one row, no total

    def test_no_data_says_so_and_partial_data_names_the_empty_parts(self):
        self.assertEqual(self.report().stdout, "no logistics data\n")
        self.assertEqual(self.json(), {"kind": "logistics", "days": [], "open": [],
                                       "carriers": [], "median_resolve_hours": {}})
        self.r.set("kefu:clock", str(CLOCK))  # a clock alone is no data
        self.r.hset("kefu:stats:pay:{s1}:20261110", mapping={"orders": 5})
        self.assertEqual(self.report().stdout, "no logistics data\n")
        self.r.hset("kefu:stats:lgc:{s1}", mapping={"中通:shipments": 3})
        days, open_, carriers, median = self.sections()
        self.assertEqual(days, "no daily counts")
        self.assertEqual(open_, "no open anomalies")
        self.assertIn("中通", carriers)
        self.assertEqual(median, "median time to resolve: -")

    def test_malformed_data_is_skipped_with_a_note(self):
        self.fixtures()
        self.r.hset("kefu:stats:lg:{s1}:20261110", mapping={"shipped": "many", "future": 3})
        self.r.hset("kefu:stats:lg:{s1}:2026111", mapping={"shipped": 1000})  # not a day
        self.r.zadd("kefu:lg:open:{s1}", {"nokind": CLOCK, "o9:": CLOCK, ":stalled": CLOCK})
        self.r.set("kefu:lg:open:{s3}", "not a zset")
        self.r.hset("kefu:stats:lgc:{s1}", mapping={":shipments": 5, "圆通:shipments": "x",
                                                    "圆通:whatever": 1})
        self.r.rpush("kefu:lg:resolve:{s1}", "soon", -5)
        r = self.report("--json")
        doc = json.loads(r.stdout)
        self.assertEqual(doc["days"][0]["shipped"], 0)   # "many" is not a count
        self.assertEqual(doc["days"][0]["anomalies"], 5)  # the rest of the hash counts
        self.assertNotIn("future", doc["days"][0])
        self.assertEqual(len(doc["days"]), 3)
        self.assertEqual([(x["shop"], x["kind"], x["count"]) for x in doc["open"]],
                         [("s1", "difficult", 1), ("s1", "stalled", 2),
                          ("s2", "no_pickup_scan", 1)])
        self.assertEqual([x["carrier"] for x in doc["carriers"] if x["shop"] == "s1"],
                         ["顺丰", "中通", "极兔"])
        self.assertEqual(doc["median_resolve_hours"]["s1"], 6.0)
        err = r.stderr
        self.assertIn("skipped 1 key not of the form kefu:stats:lg:{SHOP}:YYYYMMDD", err)
        self.assertIn("kefu:lg:open:{s1}: 3 members not <order_id>:<kind>", err)
        self.assertIn("skipped kefu:lg:open:{s3}", err)
        self.assertIn("without a usable carrier", err)
        self.assertIn("'x' is not a count", err)
        self.assertIn("kefu:lg:resolve:{s1}: 2 values not a time in ms", err)
        self.r.set("kefu:clock", "yesterday")
        r = self.report("--json")
        self.assertIn("kefu:clock: 'yesterday' is not a time", r.stderr)
        self.assertGreater(json.loads(r.stdout)["open"][0]["oldest_hours"], 1000)

    def test_large_sets_are_read_in_batches(self):
        pipe = self.r.pipeline(transaction=False)
        kinds = ["stalled", "lost", "difficult"]
        for i in range(2500):
            pipe.zadd("kefu:lg:open:{s1}", {f"o{i}:{kinds[i % 3]}": CLOCK - (i + 1) * 60000})
        pipe.rpush("kefu:lg:resolve:{s1}", *[i * 60000 for i in range(1, 10002)])
        pipe.set("kefu:clock", str(CLOCK))
        pipe.execute()
        doc = self.json()
        self.assertEqual({x["kind"]: x["count"] for x in doc["open"]},
                         {"stalled": 834, "lost": 833, "difficult": 833})
        oldest = {x["kind"]: x["oldest_hours"] for x in doc["open"]}
        self.assertEqual(oldest["stalled"], 41.7)    # i = 2499: 2500 min
        self.assertEqual(oldest["lost"], 41.6)       # i = 2497: 2498 min
        # the newest 10000 of the list (the worker caps it there): 1..10000 min
        self.assertEqual(doc["median_resolve_hours"]["s1"], round(5000.5 / 60, 1))


# ---------------------------------------------------------------------- reviews
RV_S1_10 = {"reviews": 50, "good": 40, "neutral": 4, "bad": 6, "opened": 10, "malicious": 1,
            "cause:product": 5, "cause:logistics": 4, "cause:malicious": 1, "resolved": 2,
            "failed": 1, "blocked:quiet": 2}
RV_S1_12 = {"modified": 3, "deleted": 1, "resolved": 4, "explained": 1, "expired": 2}
RV_S2_10 = {"reviews": 5, "good": 5}
RV_DAY_COLUMNS = ["SHOP", "DAY", "REVIEWS", "GOOD", "NEUTRAL", "BAD", "OPENED", "MALICIOUS",
                  "RESOLVED", "FAILED", "EXPLAINED", "EXPIRED", "BY_CAUSE"]
RV_MOD_COLUMNS = ["SHOP", "MODIFIED_DAY", "MODIFIED", "DELETED"]
RV_AGENT_COLUMNS = ["SHOP", "AGENT", "CASES", "RESOLVED", "RATE", "FIRST_CONTACT_MIN",
                    "COMPENSATION"]
RV_SKU_COLUMNS = ["SHOP", "SKU", "NEUTRAL", "BAD", "NEUTRAL_BY_CAUSE", "BAD_BY_CAUSE"]


class ReviewsReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def setUp(self):
        self.r = self.stack.redis()
        self.r.flushdb()

    def fixtures(self):
        r = self.r
        r.hset("kefu:stats:rv:{s2}:20261110", mapping=RV_S2_10)
        r.hset("kefu:stats:rv:{s1}:20261112", mapping=RV_S1_12)
        r.hset("kefu:stats:rv:{s1}:20261110", mapping=RV_S1_10)
        r.hset("kefu:stats:rvagent:{s1}", mapping={"a2:cases": 4, "a2:resolved": 1,
                                                   "a1:cases": 6, "a1:resolved": 3,
                                                   "a1:comp_fen": 1500})
        r.hset("kefu:stats:rvagent:{s2}", mapping={"b:x:cases": 1})  # an agent id with a colon
        r.rpush("kefu:rv:fc:{s1}:a1", 30 * MIN, 10 * MIN, 50 * MIN)  # median 30 min
        r.rpush("kefu:rv:fc:{s1}:a2", 5 * MIN, 16 * MIN)             # median 10.5 min
        r.hset("kefu:stats:rvsku:{s1}", mapping={
            "k1001:bad:product": 3, "k1001:neutral:subjective": 1, "k1002:bad:logistics": 2,
            "k1002:bad:product": 1, "k1003:good:other": 9, "k1004:neutral:service": 1})

    def report(self, *args, rc=0):
        r = self.stack.kefuctl("report", "reviews", *args)
        self.assertEqual(r.returncode, rc, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def test_table_has_days_modifications_agents_and_products(self):
        self.fixtures()
        r = self.report()
        self.assertEqual(r.stderr, "")
        days, mods, agents, skus = r.stdout.rstrip("\n").split("\n\n")
        _, rows = split_table(days, RV_DAY_COLUMNS, free_last=True)
        self.assertEqual([(x["SHOP"], x["DAY"]) for x in rows],
                         [("s1", "2026-11-10"), ("s1", "2026-11-12"), ("s2", "2026-11-10"),
                          ("TOTAL", "")])
        self.assertEqual(rows[0], {
            "SHOP": "s1", "DAY": "2026-11-10", "REVIEWS": "50", "GOOD": "40", "NEUTRAL": "4",
            "BAD": "6", "OPENED": "10", "MALICIOUS": "1", "RESOLVED": "2", "FAILED": "1",
            "EXPLAINED": "0", "EXPIRED": "0",
            "BY_CAUSE": "logistics=4 malicious=1 product=5"})
        self.assertEqual(rows[3]["RESOLVED"], "6")
        self.assertEqual(rows[3]["EXPIRED"], "2")
        self.assertEqual(rows[3]["REVIEWS"], "55")
        # by day of modification: only the days with modifications or deletions
        _, rows = split_table(mods, RV_MOD_COLUMNS)
        self.assertEqual(rows, [{"SHOP": "s1", "MODIFIED_DAY": "2026-11-12", "MODIFIED": "3",
                                 "DELETED": "1"}])
        _, rows = split_table(agents, RV_AGENT_COLUMNS)
        self.assertEqual(rows, [
            {"SHOP": "s1", "AGENT": "a1", "CASES": "6", "RESOLVED": "3", "RATE": "50.0%",
             "FIRST_CONTACT_MIN": "30.0", "COMPENSATION": "¥15.00"},
            {"SHOP": "s1", "AGENT": "a2", "CASES": "4", "RESOLVED": "1", "RATE": "25.0%",
             "FIRST_CONTACT_MIN": "10.5", "COMPENSATION": "¥0.00"},
            {"SHOP": "s2", "AGENT": "b:x", "CASES": "1", "RESOLVED": "0", "RATE": "0.0%",
             "FIRST_CONTACT_MIN": "-", "COMPENSATION": "¥0.00"}])
        _, rows = split_table(skus, RV_SKU_COLUMNS, free_last=True)
        # most neutral + bad first; good ratings are not shown
        self.assertEqual([x["SKU"] for x in rows], ["k1001", "k1002", "k1004"])
        self.assertEqual(rows[1], {"SHOP": "s1", "SKU": "k1002", "NEUTRAL": "0", "BAD": "3",
                                   "NEUTRAL_BY_CAUSE": "-",
                                   "BAD_BY_CAUSE": "logistics=2 product=1"})
        self.assertEqual(rows[0]["NEUTRAL_BY_CAUSE"], "subjective=1")

    def test_json_document(self):
        self.fixtures()
        doc = json.loads(self.report("--json").stdout)
        self.assertEqual(set(doc), {"kind", "days", "totals", "agents", "products"})
        self.assertEqual(doc["kind"], "reviews")
        self.assertEqual(doc["days"][1], {
            "shop": "s1", "day": "2026-11-12", "reviews": 0, "good": 0, "neutral": 0, "bad": 0,
            "opened": 0, "malicious": 0, "resolved": 4, "failed": 0, "explained": 1,
            "expired": 2, "modified": 3, "deleted": 1, "by_cause": {}})
        self.assertEqual(doc["totals"]["by_cause"], {"logistics": 4, "malicious": 1, "product": 5})
        self.assertEqual(doc["totals"]["modified"], 3)
        self.assertEqual(doc["agents"][0], {
            "shop": "s1", "agent": "a1", "cases": 6, "resolved": 3, "rate": 0.5,
            "median_first_contact_minutes": 30.0, "first_contacts": 3, "compensation_fen": 1500})
        self.assertIsNone(doc["agents"][2]["median_first_contact_minutes"])
        self.assertEqual(doc["products"][0], {
            "shop": "s1", "sku_id": "k1001", "neutral": 1, "bad": 3,
            "neutral_by_cause": {"subjective": 1}, "bad_by_cause": {"product": 3}})

    def test_filters(self):
        self.fixtures()
        doc = json.loads(self.report("--json", "--shop", "s1", "--from", "2026-11-11").stdout)
        self.assertEqual([(d["shop"], d["day"]) for d in doc["days"]], [("s1", "2026-11-12")])
        self.assertEqual({a["shop"] for a in doc["agents"]}, {"s1"})
        self.assertEqual({p["shop"] for p in doc["products"]}, {"s1"})
        doc = json.loads(self.report("--json", "--shop", "s2").stdout)
        self.assertEqual(doc["products"], [])
        self.assertEqual([a["agent"] for a in doc["agents"]], ["b:x"])

    def test_no_data_says_so(self):
        self.assertEqual(self.report().stdout, "no review data\n")
        doc = json.loads(self.report("--json").stdout)
        self.assertEqual((doc["days"], doc["agents"], doc["products"]), ([], [], []))

    def test_malformed_data_is_skipped_with_a_note(self):
        self.fixtures()
        self.r.hset("kefu:stats:rv:{s1}:20261110", "neutral", "many")
        self.r.rpush("kefu:rv:fc:{s1}:a2", "soon")
        self.r.hset("kefu:stats:rvsku:{s1}", "k1005:bad:product", "-3")
        self.r.set("kefu:stats:rvagent:{s3}", "not a hash")
        r = self.report("--json")
        doc = json.loads(r.stdout)
        self.assertEqual(doc["days"][0]["neutral"], 0)
        self.assertEqual(doc["agents"][1]["median_first_contact_minutes"], 10.5)
        self.assertNotIn("k1005", [p["sku_id"] for p in doc["products"]])
        for what in ("'neutral'", "kefu:rv:fc:{s1}:a2", "k1005:bad:product",
                     "kefu:stats:rvagent:{s3}"):
            self.assertIn(what, r.stderr)


# ---------------------------------------------------------------------- care
SEGS = ["champions", "loyal", "potential", "new", "at_risk", "hibernating", "lost"]
LEVELS = ["regular", "silver", "gold", "platinum"]
CC_SEGS_S1 = {"seg:champions": 3, "seg:loyal": 2, "seg:new": 5, "seg:at_risk": 1, "seg:lost": 1,
              "lvl:regular": 7, "lvl:silver": 3, "lvl:gold": 1, "lvl:platinum": 1,
              "seg:whales": 9}  # a segment of a newer worker: not shown
CC_SEGS_A = {"seg:potential": 2, "lvl:regular": 2}
CC_S1_10 = {"sent:shipped": 10, "sent:usage": 4, "held:usage": 2, "blocked:usage:cap_daily": 1,
            "blocked:birthday:optout": 2, "paid_orders": 7, "new_buyers": 3}
CC_S1_11 = {"sent:usage": 1, "blocked:usage:deadline": 1, "blocked:usage:cap_daily": 2,
            "sent:campaign": 5, "held:campaign": 3, "blocked:campaign:cap_sms_weekly": 1,
            "paid_orders": 2}
CC_S1_12 = {"sent:shipped": 1, "sent:festival": 2}
CC_S2_11 = {"sent:signed": 3}
CC_G_S1 = {"buyers": 20, "repeat": 6, "cared": 8, "cared_repeat": 4, "uncared_repeat": 3}
CC_G_S2 = {"buyers": 5, "repeat": 1, "uncared_repeat": 1}               # nobody cared
CC_G_A = {"buyers": 2, "repeat": 1, "cared": 2, "cared_repeat": 1}      # everybody cared
CC_SEG_COLUMNS = ["SHOP", "BUYERS", "CHAMPIONS", "LOYAL", "POTENTIAL", "NEW", "AT_RISK",
                  "HIBERNATING", "LOST", "REGULAR", "SILVER", "GOLD", "PLATINUM"]
CC_CARE_COLUMNS = ["SHOP", "KIND", "SENT", "HELD", "BLOCKED", "BY_REASON"]
CC_RATE_COLUMNS = ["SHOP", "BUYERS", "REPEAT", "CARED", "CARED_REPEAT", "CARED_RATE",
                   "NOT_CARED", "NOT_CARED_REPEAT", "NOT_CARED_RATE"]
CC_CAMP_COLUMNS = ["SHOP", "CAMPAIGN", "NAME", "STATE", "PARTS", "MATCHED", "SENT", "BLOCKED",
                   "EXPIRED", "BY_REASON"]
DAY = 24 * H


def camp(name, state, parts, matched, sent, blocked, expired=0, channel="sms", launched=CLOCK,
         **extra):
    """A kefu:crm:camp hash as the worker writes it (workers/crm-care/README.md "Campaigns")."""
    h = {"name": name, "segment": "at_risk", "tags": "", "level": "", "channel": channel,
         "start": launched, "end": launched + DAY, "launched": launched, "state": state,
         "parts_done": parts, "matched": matched, "sent": sent, "blocked": blocked,
         "expired": expired, "event": "e-" + name, "shop": "x"}
    h.update(extra)
    return h


class CareReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def setUp(self):
        self.r = self.stack.redis()
        self.r.flushdb()

    def fixtures(self):
        r = self.r
        r.hset("kefu:crm:segs:{店铺A}", mapping=CC_SEGS_A)
        r.hset("kefu:crm:segs:{s1}", mapping=CC_SEGS_S1)
        r.hset("kefu:stats:crm:{s2}:20261111", mapping=CC_S2_11)
        r.hset("kefu:stats:crm:{s1}:20261112", mapping=CC_S1_12)
        r.hset("kefu:stats:crm:{s1}:20261110", mapping=CC_S1_10)
        r.hset("kefu:stats:crm:{s1}:20261111", mapping=CC_S1_11)
        r.hset("kefu:stats:crmg:{s1}", mapping=CC_G_S1)
        r.hset("kefu:stats:crmg:{s2}", mapping=CC_G_S2)
        r.hset("kefu:stats:crmg:{店铺A}", mapping=CC_G_A)
        r.zadd("kefu:crm:campaigns", {"s1:c1": CLOCK, "s2:spring": CLOCK + 500,
                                      "s1:c2": CLOCK + 1000, "店铺A:双十一": CLOCK + 2000})
        r.hset("kefu:crm:camp:{s1}:c1", mapping=camp(
            "回购礼", "done", 64, 10, 7, 3, **{"blocked:cap_daily": 2, "blocked:optout": 1}))
        r.hset("kefu:crm:camp:{s1}:c2", mapping=camp("新品", "sending", 20, 4, 4, 0,
                                                     channel="im", launched=CLOCK + 1000))
        r.hset("kefu:crm:camp:{s2}:spring", mapping=camp("spring", "scheduled", 0, 0, 0, 0,
                                                         launched=CLOCK + 500))
        r.hset("kefu:crm:camp:{店铺A}:双十一", mapping=camp(
            "双十一", "done", 64, 2, 1, 0, expired=1, launched=CLOCK + 2000))

    def report(self, *args, rc=0):
        r = self.stack.kefuctl("report", "care", *args)
        self.assertEqual(r.returncode, rc, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def json(self, *args):
        return json.loads(self.report("--json", *args).stdout)

    def sections(self, *args):
        r = self.report(*args)
        parts = r.stdout.rstrip("\n").split("\n\n")
        self.assertEqual(len(parts), 4, r.stdout)
        return parts

    @staticmethod
    def rows(block, columns, maxsplit=None):
        lines = block.split("\n")
        assert lines[0].split() == columns, lines[0]
        return [dict(zip(columns, l.split(None, maxsplit) if maxsplit else l.split()))
                for l in lines[1:]]

    # ------------------------------------------------------------------ the table
    def test_table_has_segments_care_rates_and_campaigns(self):
        self.fixtures()
        r = self.report()
        self.assertEqual(r.stderr, "")
        segs, care, rates, camps = r.stdout.rstrip("\n").split("\n\n")
        self.assertEqual(self.rows(segs, CC_SEG_COLUMNS), [
            dict(zip(CC_SEG_COLUMNS, "s1 12 3 2 0 5 1 0 1 7 3 1 1".split())),
            dict(zip(CC_SEG_COLUMNS, "店铺A 2 0 0 2 0 0 0 0 2 0 0 0".split())),
            dict(zip(CC_SEG_COLUMNS, "TOTAL 14 3 2 2 5 1 0 1 9 3 1 1".split()))])
        _, rows = split_table(care, CC_CARE_COLUMNS, free_last=True)
        self.assertEqual([(x["SHOP"], x["KIND"]) for x in rows],
                         [("s1", "shipped"), ("s1", "usage"), ("s1", "birthday"),
                          ("s1", "festival"), ("s1", "campaign"), ("s2", "signed"),
                          ("TOTAL", "")])
        self.assertEqual(rows[1], {"SHOP": "s1", "KIND": "usage", "SENT": "5", "HELD": "2",
                                   "BLOCKED": "4", "BY_REASON": "cap_daily=3 deadline=1"})
        self.assertEqual(rows[0]["BY_REASON"], "-")
        self.assertEqual(rows[4], {"SHOP": "s1", "KIND": "campaign", "SENT": "5", "HELD": "3",
                                   "BLOCKED": "1", "BY_REASON": "cap_sms_weekly=1"})
        self.assertEqual(rows[6], {"SHOP": "TOTAL", "KIND": "", "SENT": "26", "HELD": "5",
                                   "BLOCKED": "7",
                                   "BY_REASON": "cap_daily=3 cap_sms_weekly=1 deadline=1 optout=2"})
        self.assertEqual(self.rows(rates, CC_RATE_COLUMNS), [
            dict(zip(CC_RATE_COLUMNS, "s1 20 6 8 4 50.0% 12 3 25.0%".split())),
            dict(zip(CC_RATE_COLUMNS, "s2 5 1 0 0 - 5 1 20.0%".split())),
            dict(zip(CC_RATE_COLUMNS, "店铺A 2 1 2 1 50.0% 0 0 -".split())),
            dict(zip(CC_RATE_COLUMNS, "TOTAL 27 8 10 5 50.0% 17 4 23.5%".split()))])
        rows = self.rows(camps, CC_CAMP_COLUMNS, maxsplit=9)
        self.assertEqual([(x["SHOP"], x["CAMPAIGN"]) for x in rows],
                         [("s1", "c2"), ("s1", "c1"), ("s2", "spring"), ("店铺A", "双十一")])
        self.assertEqual(rows[1], {"SHOP": "s1", "CAMPAIGN": "c1", "NAME": "回购礼",
                                   "STATE": "done", "PARTS": "64/64", "MATCHED": "10",
                                   "SENT": "7", "BLOCKED": "3", "EXPIRED": "0",
                                   "BY_REASON": "cap_daily=2 optout=1"})
        self.assertEqual(rows[0]["PARTS"], "20/64")
        self.assertEqual(rows[3]["EXPIRED"], "1")
        # CJK cells keep the columns aligned: every SENT cell ends where its header ends
        lines = camps.split("\n")
        end = lines[0].index("SENT") + 4
        for line in lines[1:]:
            w = i = 0
            while w < end:
                w += width(line[i])
                i += 1
            self.assertNotEqual(line[i - 1], " ", line)
            self.assertEqual(line[i], " ", line)

    # ------------------------------------------------------------------ JSON
    def test_json_document(self):
        self.fixtures()
        doc = self.json()
        self.assertEqual(list(doc), ["kind", "segments", "care", "repeat", "campaigns"])
        self.assertEqual(doc["kind"], "care")
        self.assertEqual(doc["segments"], [
            {"shop": "s1", "buyers": 12,
             "segments": {"champions": 3, "loyal": 2, "potential": 0, "new": 5, "at_risk": 1,
                          "hibernating": 0, "lost": 1},
             "levels": {"regular": 7, "silver": 3, "gold": 1, "platinum": 1}},
            {"shop": "店铺A", "buyers": 2,
             "segments": dict({s: 0 for s in SEGS}, potential=2),
             "levels": dict({lv: 0 for lv in LEVELS}, regular=2)}])
        self.assertEqual(list(doc["segments"][0]["segments"]), SEGS)
        self.assertEqual(list(doc["segments"][0]["levels"]), LEVELS)
        s1, s2 = doc["care"]
        self.assertEqual({k: v for k, v in s1.items() if k != "kinds"}, {
            "shop": "s1", "days": 3, "first_day": "2026-11-10", "last_day": "2026-11-12",
            "paid_orders": 9, "new_buyers": 3, "sent": 23, "held": 5, "blocked": 7,
            "blocked_by": {"cap_daily": 3, "cap_sms_weekly": 1, "deadline": 1, "optout": 2}})
        self.assertEqual(s1["kinds"], [
            {"kind": "shipped", "sent": 11, "held": 0, "blocked": 0, "blocked_by": {}},
            {"kind": "usage", "sent": 5, "held": 2, "blocked": 4,
             "blocked_by": {"cap_daily": 3, "deadline": 1}},
            {"kind": "birthday", "sent": 0, "held": 0, "blocked": 2, "blocked_by": {"optout": 2}},
            {"kind": "festival", "sent": 2, "held": 0, "blocked": 0, "blocked_by": {}},
            {"kind": "campaign", "sent": 5, "held": 3, "blocked": 1,
             "blocked_by": {"cap_sms_weekly": 1}}])
        self.assertEqual(s2, {"shop": "s2", "days": 1, "first_day": "2026-11-11",
                              "last_day": "2026-11-11", "paid_orders": 0, "new_buyers": 0,
                              "sent": 3, "held": 0, "blocked": 0, "blocked_by": {},
                              "kinds": [{"kind": "signed", "sent": 3, "held": 0, "blocked": 0,
                                         "blocked_by": {}}]})
        self.assertEqual(doc["repeat"], [
            {"shop": "s1", "buyers": 20, "repeat": 6, "cared": 8, "cared_repeat": 4,
             "cared_rate": 0.5, "not_cared": 12, "not_cared_repeat": 3, "not_cared_rate": 0.25},
            {"shop": "s2", "buyers": 5, "repeat": 1, "cared": 0, "cared_repeat": 0,
             "cared_rate": None, "not_cared": 5, "not_cared_repeat": 1, "not_cared_rate": 0.2},
            {"shop": "店铺A", "buyers": 2, "repeat": 1, "cared": 2, "cared_repeat": 1,
             "cared_rate": 0.5, "not_cared": 0, "not_cared_repeat": 0, "not_cared_rate": None}])
        self.assertEqual([(c["shop"], c["campaign_id"]) for c in doc["campaigns"]],
                         [("s1", "c2"), ("s1", "c1"), ("s2", "spring"), ("店铺A", "双十一")])
        self.assertEqual(doc["campaigns"][1], {
            "shop": "s1", "campaign_id": "c1", "name": "回购礼", "state": "done",
            "segment": "at_risk", "level": "", "tags": "", "channel": "sms",
            "launched": "2025-11-11T12:00:00+08:00", "start": "2025-11-11T12:00:00+08:00",
            "end": "2025-11-12T12:00:00+08:00", "parts_done": 64, "matched": 10, "sent": 7,
            "blocked": 3, "expired": 0, "blocked_by": {"cap_daily": 2, "optout": 1}})
        self.assertEqual(doc["campaigns"][0]["launched"], "2025-11-11T12:00:01+08:00")

    def test_no_data_says_so(self):
        self.assertEqual(self.report().stdout, "no care data\n")
        self.assertEqual(self.json(), {"kind": "care", "segments": [], "care": [], "repeat": [],
                                       "campaigns": []})
        self.r.hset("kefu:stats:pay:{s1}:20261110", mapping={"orders": 5})  # another kind's
        self.assertEqual(self.report().stdout, "no care data\n")
        self.r.hset("kefu:stats:crmg:{s1}", mapping={"buyers": 0})
        self.assertEqual(self.sections(), ["no segment counts", "no care contacts",
                                           self.sections()[2], "no campaigns"])
        self.assertEqual(self.json()["repeat"][0]["cared_rate"], None)

    # ------------------------------------------------------------------ filters
    def test_days_filter_the_care_counts_and_shop_filters_everything(self):
        self.fixtures()
        doc = self.json("--from", "2026-11-11", "--to", "2026-11-11")
        self.assertEqual([(c["shop"], c["days"], c["first_day"]) for c in doc["care"]],
                         [("s1", 1, "2026-11-11"), ("s2", 1, "2026-11-11")])
        self.assertEqual(doc["care"][0]["kinds"], [
            {"kind": "usage", "sent": 1, "held": 0, "blocked": 3,
             "blocked_by": {"cap_daily": 2, "deadline": 1}},
            {"kind": "campaign", "sent": 5, "held": 3, "blocked": 1,
             "blocked_by": {"cap_sms_weekly": 1}}])
        self.assertEqual(doc["care"][0]["paid_orders"], 2)
        # the current state is not by day
        self.assertEqual(len(doc["segments"]), 2)
        self.assertEqual(len(doc["repeat"]), 3)
        self.assertEqual(len(doc["campaigns"]), 4)
        doc = self.json("--from", "2026-11-12")
        self.assertEqual([(c["shop"], c["sent"]) for c in doc["care"]], [("s1", 3)])
        doc = self.json("--to", "2026-11-10")
        self.assertEqual(doc["care"][0]["blocked_by"], {"cap_daily": 1, "optout": 2})
        self.r.hset("kefu:stats:crm:{s10}:20261111", mapping={"sent:usage": 1})
        self.r.hset("kefu:crm:camp:{s10}:c1", mapping=camp("x", "done", 64, 1, 1, 0))
        self.r.zadd("kefu:crm:campaigns", {"s10:c1": CLOCK + 3000})
        doc = self.json("--shop", "s1")
        self.assertEqual({d["shop"] for part in ("segments", "care", "repeat", "campaigns")
                          for d in doc[part]}, {"s1"})
        self.assertEqual([c["campaign_id"] for c in doc["campaigns"]], ["c2", "c1"])
        doc = self.json("--shop", "店铺A")
        self.assertEqual(doc["care"], [])
        self.assertEqual([c["campaign_id"] for c in doc["campaigns"]], ["双十一"])
        segs, care, rates, camps = self.sections("--shop", "s2")
        self.assertEqual(segs, "no segment counts")
        _, rows = split_table(care, CC_CARE_COLUMNS, free_last=True)
        self.assertEqual(rows, [{"SHOP": "s2", "KIND": "signed", "SENT": "3", "HELD": "0",
                                 "BLOCKED": "0", "BY_REASON": "-"}])  # one row: no total
        self.assertEqual(self.rows(rates, CC_RATE_COLUMNS)[0]["CARED_RATE"], "-")
        self.assertEqual(len(self.rows(camps, CC_CAMP_COLUMNS, maxsplit=9)), 1)

    # ------------------------------------------------------------------ untrusted data
    def test_malformed_data_is_skipped_with_a_note(self):
        self.fixtures()
        r = self.r
        r.hset("kefu:crm:segs:{s1}", mapping={"seg:champions": "many", "lvl:gold": -1})
        r.hset("kefu:stats:crm:{s1}:20261110", mapping={"sent:usage": "four", "blocked:usage": 9,
                                                        "blocked::optout": 1, "sent:": 1,
                                                        "future:thing": 5})
        r.hset("kefu:stats:crm:s1:20261110", mapping={"sent:usage": 1000})    # no hash tag
        r.hset("kefu:stats:crm:{s1}:20261332", mapping={"sent:usage": 1000})  # no such day
        r.set("kefu:stats:crmg:{s3}", "not a hash")
        r.hset("kefu:stats:crmg:{s2}", "cared", "some")
        r.zadd("kefu:crm:campaigns", {"nocolon": CLOCK + 9000, ":c9": CLOCK + 9001,
                                      "s1:": CLOCK + 9002,
                                      "s1:gone": CLOCK + 9003,    # no hash (expired)
                                      "s1:str": CLOCK + 9004})
        r.set("kefu:crm:camp:{s1}:str", "not a hash")
        r.hset("kefu:crm:camp:{s1}:c2", mapping={"sent": "lots", "start": "soon",
                                                 "blocked:": 4})
        res = self.report("--json")
        doc = json.loads(res.stdout)
        seg = doc["segments"][0]
        self.assertEqual((seg["segments"]["champions"], seg["levels"]["gold"]), (0, 0))
        self.assertEqual(seg["segments"]["new"], 5)  # the rest of the hash counts
        s1 = doc["care"][0]
        kinds = {k["kind"]: k for k in s1["kinds"]}
        self.assertEqual(kinds["usage"]["sent"], 1)   # "four" is no count: only 20261111's
        self.assertEqual(kinds["shipped"]["sent"], 11)
        self.assertEqual(s1["blocked_by"], {"cap_daily": 3, "cap_sms_weekly": 1,
                                            "deadline": 1, "optout": 2})
        self.assertEqual(s1["days"], 3)
        self.assertEqual([x["shop"] for x in doc["repeat"]], ["s1", "s2", "店铺A"])
        self.assertEqual(doc["repeat"][1]["cared"], 0)
        self.assertEqual([(c["shop"], c["campaign_id"]) for c in doc["campaigns"]],
                         [("s1", "c2"), ("s1", "c1"), ("s2", "spring"), ("店铺A", "双十一")])
        c2 = doc["campaigns"][0]
        self.assertEqual((c2["sent"], c2["start"], c2["matched"], c2["blocked_by"]),
                         (0, None, 4, {}))
        err = res.stderr
        for what in ("'many' is not a count", "'-1' is not a count", "'four' is not a count",
                     "kefu:stats:crm:{s1}:20261110: a field without a usable kind or reason",
                     "skipped 2 keys not of the form kefu:stats:crm:{SHOP}:YYYYMMDD",
                     "skipped kefu:stats:crmg:{s3}", "'some' is not a count",
                     "kefu:crm:campaigns: 3 members not <shop>:<campaign_id>",
                     "skipped kefu:crm:camp:{s1}:str", "'lots' is not a count",
                     "'soon' is not a time in ms", "a blocked: field without a usable reason"):
            self.assertIn(what, err)
        self.assertNotIn("gone", err)
        self.assertNotIn("future", err)
        r.set("kefu:crm:campaigns", "not a zset")
        res = self.report("--json")
        self.assertEqual(json.loads(res.stdout)["campaigns"], [])
        self.assertIn("skipped kefu:crm:campaigns", res.stderr)

    def test_many_campaigns_and_days(self):
        pipe = self.r.pipeline(transaction=False)
        for i in range(1500):  # more than one ZREVRANGE batch (the worker keeps 100)
            pipe.zadd("kefu:crm:campaigns", {f"s1:c{i:04d}": CLOCK + i})
            pipe.hset(f"kefu:crm:camp:{{s1}}:c{i:04d}", mapping=camp(f"n{i}", "done", 64, 1, 1, 0))
        for month in range(1, 13):
            for day in range(1, 29):
                pipe.hset(f"kefu:stats:crm:{{s1}}:2026{month:02d}{day:02d}",
                          mapping={"sent:usage": 1, "blocked:usage:optout": 2})
        pipe.execute()
        doc = self.json()
        self.assertEqual(len(doc["campaigns"]), 1500)
        self.assertEqual(doc["campaigns"][0]["campaign_id"], "c1499")  # newest first
        self.assertEqual(doc["care"][0]["kinds"], [
            {"kind": "usage", "sent": 336, "held": 0, "blocked": 672,
             "blocked_by": {"optout": 672}}])
        self.assertEqual(doc["care"][0]["days"], 336)

class ReportRedisDownTest(unittest.TestCase):
    def test_redis_down_exits_1_with_the_reason(self):
        with Stack() as stack:
            stack.stop_redis()
            for kind in ("payments", "care"):
                r = stack.kefuctl("report", kind)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertIn(f"kefuctl: report {kind}: cannot read the results", r.stderr)
                self.assertIn(f"127.0.0.1:{stack.ports['redis']}", r.stderr)
                self.assertIn("refused", r.stderr)
            r = stack.kefuctl("report", "care", "--json")
            self.assertEqual((r.returncode, r.stdout), (1, ""))


if __name__ == "__main__":
    unittest.main()
