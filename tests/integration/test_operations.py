"""Operator-facing behaviour: config errors, kefuctl forms and exit codes, the fleet view."""
import json
import os
import socket
import subprocess
import time
import unittest

import zmq

from kefu_harness import BIN, SRC, Stack, wait_for


def heartbeat_envelope(daemon, instance, event_id):
    from kefu_harness import field_bytes, field_varint
    hb = (field_bytes(1, daemon) + field_bytes(2, instance) + field_varint(3, 4242)
          + field_varint(6, 7) + field_varint(8, 3))
    return (field_bytes(1, event_id) + field_bytes(2, "sys.heartbeat") + field_bytes(43, hb))


class ConfigTest(unittest.TestCase):
    def run_broker(self, text, *args):
        path = os.path.join(self.tmp, "bad.conf")
        with open(path, "w") as f:
            f.write(text)
        return subprocess.run([os.path.join(BIN, "kefu-broker"), "-c", path, *args],
                              capture_output=True, text=True, timeout=10)

    def setUp(self):
        import tempfile
        self.tmp = tempfile.mkdtemp(prefix="kefu-cfg-")

    def test_unknown_key_is_fatal_with_file_and_line(self):
        r = self.run_broker("[redis]\nurl = redis://127.0.0.1:1/0\n\n[broker]\nbatchh = 5\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.conf:5", r.stderr)
        self.assertIn("batchh", r.stderr)

    def test_bad_value_is_fatal_with_file_and_line(self):
        r = self.run_broker("[broker]\nmax_event_bytes = lots\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.conf:2", r.stderr)
        r = self.run_broker("[clock]\nmode = sundial\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.conf:2", r.stderr)

    def test_unknown_section_is_fatal_other_daemons_sections_are_not(self):
        r = self.run_broker("[brokr]\nx = 1\n", "-t")
        self.assertEqual(r.returncode, 2)
        self.assertIn("bad.conf:1", r.stderr)
        r = self.run_broker("[pay-reminder]\nwhatever = 1\n", "-t")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_example_config_is_valid_and_complete(self):
        example = os.path.join(SRC, "deploy", "kefu.conf.example")
        r = subprocess.run([os.path.join(BIN, "kefu-broker"), "-t", "-c", example],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(example) as f:
            text = f.read()
        keys = [l.split("=")[0].strip() for l in r.stdout.splitlines()
                if "=" in l and not l.startswith(";")]
        self.assertGreater(len(keys), 15)
        for k in keys:
            self.assertRegex(text, rf"(?m)^\s*;?\s*{k}\s*=", k)

    def test_missing_explicit_config_file_is_fatal(self):
        r = subprocess.run([os.path.join(BIN, "kefu-broker"), "-c", "/nonexistent/kefu.conf"],
                           capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/kefu.conf", r.stderr)


class KefuctlTest(unittest.TestCase):
    def setUp(self):
        self.stack = Stack().start()

    def tearDown(self):
        self.stack.stop()

    def test_pub_forms_and_exit_codes(self):
        s = self.stack
        ev = {"event_id": "x-1", "shop_id": "s1", "order_id": "77"}
        r = s.kefuctl("pub", "order.paid", json.dumps(ev))
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok 1"), r.stderr)
        path = os.path.join(s.dir, "ev.json")
        with open(path, "w") as f:
            json.dump(dict(ev, event_id="x-2"), f)
        r = s.kefuctl("pub", "order.paid", "@" + path)
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok 2"), r.stderr)
        r = s.kefuctl("pub", "order.paid", "-", input=json.dumps(dict(ev, event_id="x-3")))
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "ok 3"), r.stderr)
        r = s.kefuctl("pub", "order.paid", json.dumps(ev))
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "duplicate 1"))
        r = s.kefuctl("pub", "order.paid", '{"shop_id": "s1"}')
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing_field", r.stdout + r.stderr)
        r = s.kefuctl("pub", "order.paid", "{broken")
        self.assertEqual(r.returncode, 1)
        r = s.kefuctl("frobnicate")
        self.assertEqual(r.returncode, 2)

    def test_pub_file_mixed_good_and_bad_lines(self):
        text = "\n".join([
            json.dumps({"topic": "order.paid", "event_id": "f-1", "shop_id": "s1", "order_id": "1"}),
            "not json at all",
            json.dumps({"topic": "order.paid", "event_id": "f-2", "shop_id": "s1", "order_id": "2"}),
            json.dumps({"topic": "order.nope", "event_id": "f-3", "shop_id": "s1"}),
            "",
            json.dumps({"topic": "order.paid", "event_id": "f-4", "shop_id": "s1", "order_id": "4"}),
        ]) + "\n"
        r = self.stack.kefuctl("pub", "--file", "-", input=text)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.count("ok "), 3, r.stdout)
        self.assertEqual(len(self.stack.journal()), 3)

    def test_pub_without_broker_is_not_confirmed(self):
        self.stack.kill("kefu-broker")
        r = self.stack.kefuctl("pub", "order.paid",
                               '{"event_id":"n-1","shop_id":"s1","order_id":"1"}', "--timeout", "1")
        self.assertEqual(r.returncode, 1)
        self.assertIn("not confirmed", r.stdout + r.stderr)

    def test_stat_when_broker_is_down(self):
        self.stack.kill("kefu-broker")
        r = self.stack.kefuctl("stat")
        self.assertEqual(r.returncode, 1)
        self.assertIn("unreachable", r.stderr)


class FleetTest(unittest.TestCase):
    def setUp(self):
        self.stack = Stack().start()
        self.ctx = zmq.Context()

    def tearDown(self):
        self.ctx.destroy(linger=0)
        self.stack.stop()

    def test_daemon_marked_dead_after_three_missed_beats(self):
        d = self.ctx.socket(zmq.DEALER)
        d.setsockopt(zmq.RCVTIMEO, 5000)
        d.connect(self.stack.endpoint("confirm"))
        d.send_multipart([b"sys.heartbeat", heartbeat_envelope("kefu-test", "3", "hb-1")])
        self.assertEqual(d.recv(), b"ok 0 hb-1")
        d.close()

        def entry():
            for f in self.stack.stats()["fleet"]:
                if f["daemon"] == "kefu-test":
                    return f
        e = wait_for(entry, what="the test daemon in the fleet view")
        self.assertTrue(e["alive"])
        self.assertEqual((e["instance"], e["pid"], e["processed"], e["lag"]), ("3", 4242, 7, 3))
        # heartbeat_ms = 300 in the test config: dead after 3 missed beats (> 900 ms)
        wait_for(lambda: not entry()["alive"], timeout=5, what="the daemon to be marked dead")
        r = self.stack.kefuctl("stat", check=True)
        self.assertIn("DEAD", r.stdout)

    def test_http_client_that_goes_away_does_not_hurt(self):
        body = json.dumps({"event_id": "h-1", "shop_id": "s1", "order_id": "1"})
        for _ in range(20):
            c = socket.create_connection(("127.0.0.1", self.stack.ports["http"]))
            c.sendall(("POST /v1/events/order.paid HTTP/1.1\r\nHost: x\r\nContent-Length: "
                       f"{len(body)}\r\n\r\n{body}").encode())
            c.close()
        time.sleep(0.5)
        self.assertEqual(self.stack.healthz(), 200)
        self.assertIsNone(self.stack.procs["kefu-broker"].poll())
        code, text = self.stack.http("POST", "/v1/events/order.paid", body)
        self.assertEqual(code, 200)
        self.assertEqual(json.loads(text)["result"], "duplicate")


if __name__ == "__main__":
    unittest.main()
