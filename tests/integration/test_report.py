"""kefuctl report payments: the pay-reminder results in Redis as a table and as JSON.

The fixtures are written straight into Redis in the worker's documented output format
(workers/pay-reminder/README.md, "Results"): one hash per shop and shop-local day,
kefu:stats:pay:{<shop_id>}:<yyyymmdd>.
"""
import json
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
            return [(x["shop"], x["day"]) for x in self.json(*args)["rows"]]

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
        doc = self.json()
        self.assertEqual(len(doc["rows"]), n)
        self.assertEqual(doc["totals"]["orders"], n)
        self.assertEqual(len(self.json("--shop", "c", "--from", "2026-03-01",
                                       "--to", "2026-03-31")["rows"]), 28)

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

    def test_kinds_without_a_worker_say_so_and_fail(self):
        self.fixtures()
        for kind in ("logistics", "reviews", "care"):
            r = self.report(kind, rc=1)
            self.assertEqual(r.stdout, "")
            self.assertIn(f"kefuctl: report {kind}: not built yet", r.stderr)


class ReportRedisDownTest(unittest.TestCase):
    def test_redis_down_exits_1_with_the_reason(self):
        with Stack() as stack:
            stack.stop_redis()
            r = stack.kefuctl("report", "payments")
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertIn(f"127.0.0.1:{stack.ports['redis']}", r.stderr)
            self.assertIn("refused", r.stderr)


if __name__ == "__main__":
    unittest.main()
