"""kefu-dispatch through the real processes: redis-server, kefu-broker, kefu-dispatch and real
HTTP receivers (Python http.server). Signatures are checked with a Standard Webhooks
verifier written here (HMAC-SHA256 by hand), not with kefu code. Retry schedules are scaled
down by config, never by mocking time.

Most actions are appended to kefu:actions in the workers' format (fields t, id, j, x: see
docs/dispatch.md); one case runs kefu-pay-reminder end to end on the simulated clock.
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from kefu_harness import Stack, free_port, wait_for

SECRET = "whsec_" + base64.b64encode(b"kefu-test-secret-0123456789abcdef").decode()
SECRET2 = "whsec_" + base64.b64encode(b"the-next-secret-after-rotation!!").decode()
NOW = lambda: int(time.time() * 1000)  # noqa: E731


def verify(secret, headers, body):
    """The Standard Webhooks check a receiver makes: True when one v1 signature matches."""
    key = base64.b64decode(secret[len("whsec_"):])
    msg_id, ts = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not msg_id or not ts or abs(time.time() - int(ts)) > 300:
        return False
    want = base64.b64encode(hmac.new(key, f"{msg_id}.{ts}.".encode() + body,
                                     hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(s, "v1," + want)
               for s in headers.get("webhook-signature", "").split())


class Receiver:
    """An HTTP/1.1 keep-alive receiver. plan(n) -> (status, headers, delay_s) for the n-th
    request (1-based); every request is recorded with its arrival time."""

    def __init__(self, plan=None, secret=SECRET):
        self.plan = plan or (lambda n: (200, {}, 0))
        self.secret = secret
        self.got = []
        self.lock = threading.Lock()
        recv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recv.lock:
                    n = len(recv.got) + 1
                    hdrs = {k.lower(): v for k, v in self.headers.items()}
                    recv.got.append({"at": NOW(), "headers": hdrs, "body": body,
                                     "json": json.loads(body), "path": self.path,
                                     "verified": verify(recv.secret, hdrs, body)})
                status, extra, delay = recv.plan(n)
                if delay:
                    time.sleep(delay)
                out = b'{"ok":true}' if status < 300 else b"nope"
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that went away (a killed dispatch) is part of the test

        self.server = Server(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self):
        with self.lock:
            return [g["headers"]["webhook-id"] for g in self.got]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class BlackHole:
    """Accepts connections and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except OSError:
                return

    def close(self):
        self.sock.close()


def contact(aid, shop="s1", buyer="b1", channel="im", x=None, **kw):
    a = {"topic": "action.contact", "event_id": aid, "action_id": aid, "shop_id": shop,
         "buyer_id": buyer, "order_id": "o-" + aid, "channel": channel,
         "reason": "payment_reminder", "text": "亲，您的订单还未付款哦", "occurred_at": NOW(),
         "not_before": NOW(), "fact_at": NOW(), "worker": "test"}
    a.update(kw)
    return a


def task(tid, shop="s1", **kw):
    a = {"topic": "action.task", "event_id": tid, "task_id": tid, "shop_id": shop,
         "kind": "logistics_stalled", "reason": "logistics_stalled", "severity": "warn",
         "summary": "包裹停滞", "occurred_at": NOW(), "due_at": NOW(), "fact_at": NOW(),
         "worker": "test"}
    a.update(kw)
    return a


class DispatchCase(unittest.TestCase):
    schedule = "0,200ms,400ms"
    timeout_ms = 2000
    secrets = f"s1 {SECRET}\ns2 {SECRET}\ns3 {SECRET2} {SECRET}\n"
    dispatch_extra = ""

    def setUp(self):
        self.receivers = []
        self.stack = Stack(extra_conf="")
        self.addCleanup(self._cleanup)
        secrets = os.path.join(self.stack.dir, "secrets")
        with open(secrets, "w") as f:
            f.write(self.secrets)
        self.stack.extra_conf = (f"[dispatch]\nsecrets_file = {secrets}\n"
                                 f"retry_schedule = {self.schedule}\n"
                                 f"timeout_ms = {self.timeout_ms}\nclaim_idle_ms = 2000\n"
                                 + self.dispatch_extra)
        self.stack.start()
        self.r = self.stack.redis()

    def _cleanup(self):
        self.stack.stop()
        for rc in self.receivers:
            rc.close()

    def receiver(self, plan=None, secret=SECRET):
        rc = Receiver(plan, secret)
        self.receivers.append(rc)
        return rc

    def start_dispatch(self, *args):
        return self.stack.start_worker("kefu-dispatch", *args)

    def config(self, shop, url, **kw):
        ev = {"topic": "shop.config", "shop_id": shop, "event_id": f"cfg-{shop}-{NOW()}",
              "webhook_url": url}
        ev.update(kw)
        self.stack.pub([ev])
        wait_for(lambda: self.r.hexists("kefu:shops", shop) or True, timeout=1)

    def set_shop(self, shop, url, routes=None):
        """Publishes a shop's config through the broker: a running dispatch takes it from
        the bus (a running worker also keeps it in kefu:shops)."""
        ev = {"topic": "shop.config", "shop_id": shop, "event_id": f"cfg-{shop}-{NOW()}-{url}",
              "webhook_url": url}
        if routes:
            ev["webhook_routes"] = routes
        out = self.stack.pub([ev])
        self.assertIn("ok", out.stdout, out.stderr)

    def emit(self, *actions):
        ids = []
        for a in actions:
            fields = {"t": a["topic"], "id": a["event_id"], "j": json.dumps(a, ensure_ascii=False)}
            if "_x" in a:
                fields["x"] = str(a.pop("_x"))
                fields["j"] = json.dumps(a, ensure_ascii=False)
            ids.append(self.r.xadd("kefu:actions", fields))
        return [i.decode() if isinstance(i, bytes) else i for i in ids]

    def state(self, sid):
        day = time.strftime("%Y%m%d", time.gmtime(int(sid.split("-")[0]) / 1000))
        v = self.r.hget(f"kefu:dlv:{day}", sid)
        return json.loads(v) if v else None

    def wait_state(self, sid, s, timeout=10):
        wait_for(lambda: (self.state(sid) or {}).get("s") == s, timeout=timeout,
                 what=f"{sid} {s} (now {self.state(sid)})\n" + self.stack.log("kefu-dispatch")[-3000:])
        return self.state(sid)

    def pending(self):
        return self.r.xpending("kefu:actions", "dispatch")["pending"]


class TestDelivery(DispatchCase):
    def test_signed_body_headers_and_state(self):
        rc = self.receiver()
        self.start_dispatch()
        self.set_shop("s1", rc.url + "?token=abc")
        time.sleep(0.3)
        sid, = self.emit(contact("a-1", not_before=1794362400000))
        st = self.wait_state(sid, "delivered")
        self.assertEqual(len(rc.got), 1)
        g = rc.got[0]
        self.assertTrue(g["verified"], g["headers"])
        self.assertEqual(g["headers"]["webhook-id"], "a-1")
        self.assertEqual(g["headers"]["content-type"], "application/json")
        self.assertTrue(g["headers"]["user-agent"].startswith("kefu-dispatch/"))
        self.assertEqual(g["path"], "/hook?token=abc")
        body = g["json"]
        self.assertEqual(body["topic"], "action.contact")
        self.assertEqual(body["action_id"], "a-1")
        self.assertEqual(body["text"], "亲，您的订单还未付款哦")
        self.assertEqual(body["not_before"], "2026-11-11T10:00:00+08:00")  # DESIGN §2 mapping
        self.assertEqual(st["n"], 1)
        self.assertEqual(st["code"], 200)
        self.assertEqual(len(st["log"]), 1)
        self.assertEqual(st["id"], "a-1")
        wait_for(lambda: self.pending() == 0, what="XACK after the 2xx")

    def test_rotation_sends_both_signatures(self):
        rc = self.receiver(secret=SECRET2)
        self.start_dispatch()
        self.set_shop("s3", rc.url)
        time.sleep(0.3)
        sid, = self.emit(task("t-rot", shop="s3"))
        self.wait_state(sid, "delivered")
        sigs = rc.got[0]["headers"]["webhook-signature"].split()
        self.assertEqual(len(sigs), 2)
        self.assertTrue(rc.got[0]["verified"])
        self.assertTrue(verify(SECRET, rc.got[0]["headers"], rc.got[0]["body"]))

    def test_per_topic_route_and_no_endpoint(self):
        hooks, tasks = self.receiver(), self.receiver()
        self.start_dispatch()
        self.set_shop("s1", hooks.url, routes=[{"topic": "action.task", "url": tasks.url}])
        time.sleep(0.3)
        a, t, n = self.emit(contact("c-r"), task("t-r"), task("t-none", shop="s9"))
        self.wait_state(a, "delivered")
        self.wait_state(t, "delivered")
        self.wait_state(n, "no_endpoint")
        self.assertEqual(hooks.ids(), ["c-r"])
        self.assertEqual(tasks.ids(), ["t-r"])
        wait_for(lambda: self.pending() == 0, what="every entry acknowledged")

    def test_a_config_missed_on_the_bus_is_read_from_kefu_shops(self):
        """A shop.config that went by before dispatch's subscription took (or while it was
        down) is in kefu:shops: the action goes to the shop's endpoint, not nowhere."""
        rc = self.receiver()
        self.stack.start_worker("kefu-pay-reminder")
        self.set_shop("s1", rc.url)
        wait_for(lambda: self.r.hget("kefu:shops", "s1"), what="s1's config in kefu:shops")
        cfg = self.r.hget("kefu:shops", "s1")
        self.r.hdel("kefu:shops", "s1")
        self.start_dispatch()
        self.r.hset("kefu:shops", "s1", cfg)
        a, n = self.emit(contact("c-missed"), task("t-unknown", shop="s9"))
        self.wait_state(a, "delivered")
        self.wait_state(n, "no_endpoint")
        self.assertEqual(rc.ids(), ["c-missed"])

    def test_a_config_change_missed_on_the_bus_is_read_from_kefu_shops(self):
        """A known shop's config that changed in kefu:shops without dispatch hearing it on the
        bus is picked up within a claim tick (kefu:shops:seq moved)."""
        old, new = self.receiver(), self.receiver()
        self.stack.start_worker("kefu-pay-reminder")
        self.start_dispatch()
        self.set_shop("s1", old.url)
        self.set_shop("tmp", new.url)
        wait_for(lambda: self.r.hget("kefu:shops", "tmp") and self.r.hget("kefu:shops", "s1"),
                 what="both configs in kefu:shops")
        a, = self.emit(contact("c-before"))
        self.wait_state(a, "delivered")
        time.sleep(1.2)  # a claim tick has recorded kefu:shops:seq
        self.r.hset("kefu:shops", "s1", self.r.hget("kefu:shops", "tmp"))
        self.r.hincrby("kefu:shops:seq", "s1", 1000)
        time.sleep(1.5)  # the next tick reads it
        b, = self.emit(contact("c-after", buyer="b2"))
        self.wait_state(b, "delivered")
        self.assertEqual(old.ids(), ["c-before"])
        self.assertEqual(new.ids(), ["c-after"])

    def test_no_secret_is_dead(self):
        rc = self.receiver()
        self.start_dispatch()
        self.set_shop("s7", rc.url)
        time.sleep(0.3)
        sid, = self.emit(task("t-nosecret", shop="s7"))
        self.wait_state(sid, "dead")
        dead = self.r.xrange("kefu:dead")
        self.assertEqual(dead[-1][1][b"why"], b"no_secret")
        self.assertEqual(rc.got, [])


class TestRetries(DispatchCase):
    def test_500_then_200_follows_the_schedule(self):
        rc = self.receiver(lambda n: (500, {}, 0) if n <= 2 else (200, {}, 0))
        self.start_dispatch()
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        sid, = self.emit(contact("a-retry"))
        st = self.wait_state(sid, "delivered")
        self.assertEqual(rc.ids(), ["a-retry"] * 3)
        gaps = [rc.got[i + 1]["at"] - rc.got[i]["at"] for i in range(2)]
        self.assertGreaterEqual(gaps[0], 190)
        self.assertGreaterEqual(gaps[1], 390)
        self.assertLess(gaps[1], 3000)
        self.assertEqual(st["n"], 3)
        self.assertEqual([e[1] for e in st["log"]], [500, 500, 200])
        self.assertTrue(all(g["verified"] for g in rc.got))

    def test_exhausted_is_dead_with_its_log(self):
        rc = self.receiver(lambda n: (500, {}, 0))
        self.start_dispatch()
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        sid, = self.emit(task("t-dead"))
        st = self.wait_state(sid, "dead")
        self.assertEqual(st["why"], "retries_exhausted")
        self.assertEqual(len(rc.got), 3)
        (did, f), = self.r.xrange("kefu:dead")
        self.assertEqual(f[b"id"], b"t-dead")
        self.assertEqual(f[b"src"].decode(), sid)
        self.assertEqual(len(json.loads(f[b"log"])), 3)
        wait_for(lambda: self.pending() == 0, what="dead entries acknowledged")

    def test_retry_after_is_honoured(self):
        rc = self.receiver(lambda n: (429, {"Retry-After": "1"}, 0) if n == 1 else (200, {}, 0))
        self.start_dispatch()
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        sid, = self.emit(contact("a-429"))
        self.wait_state(sid, "delivered")
        self.assertGreaterEqual(rc.got[1]["at"] - rc.got[0]["at"], 950)

    def test_timeout_is_retried(self):
        rc = self.receiver(lambda n: (200, {}, 3) if n == 1 else (200, {}, 0))
        self.start_dispatch()
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        sid, = self.emit(contact("a-slow"))
        st = self.wait_state(sid, "delivered", timeout=15)
        self.assertEqual(st["n"], 2)
        self.assertEqual(st["log"][0][1], 0)
        self.assertIn("imeout", st["log"][0][3])

    def test_410_disables_the_endpoint_and_alerts(self):
        rc = self.receiver(lambda n: (410, {}, 0))
        self.stack.start_worker("kefu-pay-reminder")  # keeps kefu:shops for the restart
        self.set_shop("s1", rc.url)
        self.stack.wait_applied()
        self.start_dispatch()
        sid, = self.emit(contact("a-gone"))
        st = self.wait_state(sid, "dead")
        self.assertEqual(st["why"], "endpoint_disabled")
        wait_for(lambda: self.r.hexists("kefu:dispatch:disabled", rc.url), what="disabled")
        alerts = [json.loads(f[b"j"]) for _, f in self.r.xrange("kefu:actions")
                  if f[b"t"] == b"action.alert"]
        self.assertEqual(len(alerts), 1)
        self.assertEqual(alerts[0]["kind"], "webhook_disabled")
        self.assertEqual(alerts[0]["shop_id"], "s1")
        self.assertIn(rc.url, alerts[0]["summary"])
        later, = self.emit(contact("a-after"))
        self.wait_state(later, "dead")
        self.assertEqual(len(rc.got), 1)  # nothing more reaches a disabled endpoint
        # disabled survives a restart of dispatch
        self.stack.kill("kefu-dispatch")
        self.start_dispatch()
        third, = self.emit(contact("a-third"))
        self.assertEqual(self.wait_state(third, "dead")["why"], "endpoint_disabled")


class TestFailingTooLong(DispatchCase):
    """[dispatch] disable_after scaled down from days to seconds."""
    schedule = "0,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms"
    dispatch_extra = "disable_after = 2500ms\n"

    def test_an_endpoint_failing_for_long_is_disabled_even_across_a_restart(self):
        answer = {"code": 500}
        rc = self.receiver(lambda n: (answer["code"], {}, 0))
        other = self.receiver()
        self.stack.start_worker("kefu-pay-reminder")  # keeps kefu:shops for the restart
        self.set_shop("s1", rc.url)
        self.set_shop("s2", other.url)
        self.stack.wait_applied()
        self.start_dispatch()
        first, = self.emit(contact("a-f1"))
        wait_for(lambda: len(rc.got) >= 2, what="two failed attempts")
        wait_for(lambda: self.r.hexists("kefu:dispatch:failing", rc.url), what="failing since")
        since = int(self.r.hget("kefu:dispatch:failing", rc.url))
        # a restart does not forget how long it has failed
        self.stack.kill("kefu-dispatch")
        self.start_dispatch()
        st = self.wait_state(first, "dead", timeout=15)
        self.assertEqual(st["why"], "endpoint_disabled")
        self.assertGreaterEqual(NOW() - since, 2500)
        self.assertLess(NOW() - since, 6000)  # not a fresh 2.5 s after the restart
        dis = json.loads(self.r.hget("kefu:dispatch:disabled", rc.url))
        self.assertIn("failed every attempt for", dis["why"])
        self.assertIn("HTTP 500", dis["why"])
        self.assertFalse(self.r.hexists("kefu:dispatch:failing", rc.url))
        alerts = [json.loads(f[b"j"]) for _, f in self.r.xrange("kefu:actions")
                  if f[b"t"] == b"action.alert"]
        self.assertEqual([a["kind"] for a in alerts], ["webhook_disabled"])
        self.assertIn("failed every attempt", alerts[0]["summary"])
        # another shop never noticed
        ok, = self.emit(contact("a-f2", shop="s2"))
        self.wait_state(ok, "delivered")

    def test_a_success_resets_the_failing_clock(self):
        rc = self.receiver(lambda n: (500, {}, 0) if n % 3 else (200, {}, 0))
        self.start_dispatch()
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        sids = []
        for i in range(8):
            sids += self.emit(contact(f"a-r{i}"))
            time.sleep(0.5)
        for sid in sids:
            self.wait_state(sid, "delivered", timeout=15)
        self.assertFalse(self.r.hexists("kefu:dispatch:disabled", rc.url))


class TestBuyerSafety(DispatchCase):
    def test_optout_since_emission_is_not_delivered(self):
        rc = self.receiver()
        self.set_shop("s1", rc.url)
        sid_sms, sid_all, sid_im = self.emit(contact("a-o1", buyer="b1", channel="sms"),
                                             contact("a-o2", buyer="b2", channel="im"),
                                             contact("a-o3", buyer="b3", channel="im"))
        self.r.sadd("kefu:optout:{s1}:b1", "sms")
        self.r.sadd("kefu:optout:{s1}:b2", "all")
        self.r.sadd("kefu:optout:{s1}:b3", "sms")  # another channel: still delivered
        self.start_dispatch("-o", "dispatch.default_url=" + rc.url)
        self.wait_state(sid_im, "delivered")
        self.wait_state(sid_all, "optout")
        # sms outside the allowed hours waits; inside them it is opted out
        hour = int(time.strftime("%H", time.gmtime(time.time() + 8 * 3600)))
        if 8 <= hour < 22:
            self.wait_state(sid_sms, "optout")
        self.assertEqual(rc.ids(), ["a-o3"])
        wait_for(lambda: self.stack.stats().get("fleet") is not None)

    def test_stale_contact_is_not_delivered(self):
        rc = self.receiver()
        self.start_dispatch()
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        stale, fresh, old_task = self.emit(contact("a-stale", _x=NOW() - 1000),
                                           contact("a-fresh", _x=NOW() + 3600000),
                                           task("t-old", occurred_at=NOW() - 86400000 * 3))
        self.wait_state(stale, "stale")
        self.wait_state(fresh, "delivered")
        self.wait_state(old_task, "delivered")  # tasks are for the staff: late is still useful
        self.assertEqual(sorted(rc.ids()), ["a-fresh", "t-old"])


class TestIsolation(DispatchCase):
    timeout_ms = 3000
    schedule = "0,1s"

    def test_black_hole_does_not_delay_another_shop(self):
        hole = BlackHole()
        self.addCleanup(hole.close)
        rc = self.receiver()
        self.start_dispatch()
        self.set_shop("s2", hole.url)
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        self.emit(*[task(f"t-hole-{i}", shop="s2") for i in range(300)])
        time.sleep(0.5)
        lat = []
        for i in range(20):
            t0 = NOW()
            sid, = self.emit(contact(f"a-iso-{i}"))
            self.wait_state(sid, "delivered", timeout=5)
            lat.append(NOW() - t0)
        self.assertLess(max(lat), 1000, lat)
        st = self.stack.stats()
        self.assertLessEqual(len(hole.conns), 8)  # at most `concurrency` at a time (+ retries)


class TestCrashes(DispatchCase):
    schedule = "0,100ms,200ms,400ms,800ms,1s,1s,1s,1s,1s"

    def test_sigkill_and_redis_restart_lose_nothing(self):
        rc = self.receiver(lambda n: (200, {}, 0.01))
        self.stack.start_worker("kefu-pay-reminder")  # keeps kefu:shops for the restarts
        self.set_shop("s1", rc.url)
        self.stack.wait_applied()
        self.start_dispatch()
        N = 300
        self.emit(*[contact(f"a-k-{i}", buyer=f"b{i}") for i in range(N // 2)])
        wait_for(lambda: len(rc.got) >= 20, what="first deliveries")
        self.stack.kill("kefu-dispatch")
        self.emit(*[contact(f"a-k-{i}", buyer=f"b{i}") for i in range(N // 2, N)])
        self.start_dispatch()
        wait_for(lambda: len(set(rc.ids())) >= N * 2 // 3, timeout=30, what="more deliveries")
        self.r.execute_command("BGREWRITEAOF")
        time.sleep(0.5)
        self.stack.redis_proc.kill()
        self.stack.redis_proc.wait()
        time.sleep(0.5)
        self.stack.start_redis()
        self.r = self.stack.redis()
        wait_for(lambda: len(set(rc.ids())) == N, timeout=40,
                 what=f"all {N} delivered (got {len(set(rc.ids()))})\n"
                 + self.stack.log("kefu-dispatch")[-3000:])
        self.assertTrue(all(g["verified"] for g in rc.got))
        wait_for(lambda: self.pending() == 0, timeout=20, what="every entry acknowledged")
        # every duplicate carries the same id and the same body
        bodies = {}
        for g in rc.got:
            bodies.setdefault(g["headers"]["webhook-id"], set()).add(g["body"])
        self.assertTrue(all(len(b) == 1 for b in bodies.values()))


class TestEndToEnd(unittest.TestCase):
    """kefu-pay-reminder on the simulated clock emits a reminder; dispatch delivers it."""

    def test_reminder_reaches_the_webhook(self):
        rc = Receiver()
        self.addCleanup(rc.close)
        with Stack(clock="simulated") as st:
            secrets = os.path.join(st.dir, "secrets")
            with open(secrets, "w") as f:
                f.write(f"* {SECRET}\n")
            st.extra_conf = f"[dispatch]\nsecrets_file = {secrets}\n"
            st.write_conf()
            st.start_worker("kefu-pay-reminder")
            st.start_worker("kefu-dispatch")
            t0 = 1794362400000  # 2026-11-11 10:00 +08:00
            st.pub([{"topic": "sys.clock", "event_id": "c0", "now": t0},
                    {"topic": "shop.config", "shop_id": "s1", "event_id": "cfg",
                     "webhook_url": rc.url},
                    {"topic": "order.created", "shop_id": "s1", "event_id": "o1",
                     "order_id": "1001", "buyer": {"buyer_id": "b9", "nick": "小美"},
                     "items": [{"sku_id": "k1", "title": "真丝四件套", "qty": 1,
                                "price_fen": 59900}], "total_fen": 59900, "kind": "normal",
                     "created_at": t0},
                    {"topic": "sys.clock", "event_id": "c1", "now": t0 + 5 * 3600 * 1000}])
            wait_for(lambda: rc.got, timeout=20, what="a reminder delivered\n"
                     + st.log("kefu-dispatch")[-2000:])
            g = rc.got[0]
            self.assertTrue(g["verified"])
            self.assertEqual(g["json"]["reason"], "payment_reminder")
            self.assertEqual(g["json"]["order_id"], "1001")
            self.assertEqual(g["headers"]["webhook-id"], g["json"]["action_id"])


class TestOperatorVerbs(DispatchCase):
    def test_dead_redeliver_and_actions(self):
        answer = {"code": 500}
        rc = self.receiver(lambda n: (answer["code"], {}, 0))
        self.start_dispatch()
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        sid, ok_sid = self.emit(task("t-op"), task("t-other", shop="s9"))
        self.wait_state(sid, "dead")
        out = self.stack.kefuctl("dead").stdout
        self.assertIn("t-op", out)
        self.assertIn("retries_exhausted", out)
        self.assertIn("1 dead", out)
        dead = json.loads(self.stack.kefuctl("dead", "--json").stdout)
        self.assertEqual(dead[0]["id"], "t-op")
        self.assertEqual(len(dead[0]["log"]), 3)
        self.assertEqual(dead[0]["action"]["task_id"], "t-op")
        acts = json.loads(self.stack.kefuctl("actions", "--json").stdout)
        self.assertEqual({a["id"]: a["state"]["s"] for a in acts},
                         {"t-op": "dead", "t-other": "no_endpoint"})
        table = self.stack.kefuctl("actions", "--shop", "s1").stdout
        self.assertIn("t-op", table)
        self.assertNotIn("t-other", table)
        r = self.stack.kefuctl("redeliver", "nope")
        self.assertEqual(r.returncode, 1)
        answer["code"] = 200
        r = self.stack.kefuctl("redeliver", "t-op")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("redelivered 1", r.stdout)
        wait_for(lambda: len(rc.got) == 4, what="the redelivery")
        self.assertEqual(set(rc.ids()), {"t-op"})  # the same webhook-id
        self.assertTrue(rc.got[-1]["verified"])
        self.assertEqual(self.r.xlen("kefu:dead"), 0)
        acts = json.loads(self.stack.kefuctl("actions", "--json").stdout)
        # its state is null between the redelivery and dispatch picking it up again
        wait_for(lambda: (json.loads(self.stack.kefuctl("actions", "--json").stdout)[0]["state"]
                          or {}).get("s") == "delivered", what="the redelivered entry delivered")
        log = json.loads(self.stack.kefuctl("actions", "--json").stdout)[0]["state"]["log"]
        self.assertEqual([(e[1], e[4]) for e in log],  # the history goes on, marked manual
                         [(500, "scheduled")] * 3 + [(200, "manual")])

    def test_redeliver_shop_enables_a_disabled_endpoint(self):
        answer = {"code": 410}
        rc = self.receiver(lambda n: (answer["code"], {}, 0))
        self.start_dispatch()
        self.set_shop("s1", rc.url)
        time.sleep(0.3)
        a, b = self.emit(contact("a-d1"), contact("a-d2"))
        self.wait_state(a, "dead")
        self.wait_state(b, "dead")
        answer["code"] = 200
        r = self.stack.kefuctl("redeliver", "--shop", "s1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("enabled " + rc.url, r.stdout)
        self.assertIn("redelivered 3", r.stdout)  # and the webhook_disabled alert, dead too
        wait_for(lambda: {"a-d1", "a-d2"} <= set(rc.ids()), what="both delivered after enabling")
        wait_for(lambda: any(i.startswith("dispatch-webhook_disabled-s1-") for i in rc.ids()),
                 what="the webhook_disabled alert delivered after enabling")
        self.assertFalse(self.r.hexists("kefu:dispatch:disabled", rc.url))


class TestTailOfActions(DispatchCase):
    def test_from_seq_of_actions_says_where_they_are(self):
        r = self.stack.kefuctl("tail", "action.", "--from-seq", "1", "--idle-exit", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("actions are not journaled", r.stderr)
        self.assertIn("kefuctl actions", r.stderr)
        r = self.stack.kefuctl("tail", "order.", "--from-seq", "1", "--idle-exit", "1")
        self.assertNotIn("not journaled", r.stderr)


class TestWebhookListen(DispatchCase):
    def test_reference_receiver_verifies_and_answers_the_plan(self):
        import subprocess
        from kefu_harness import BIN
        port = free_port()
        p = subprocess.Popen([os.path.join(BIN, "kefuctl"), "webhook-listen", "--port", str(port),
                              "--secret", SECRET, "--status", "500,200", "--retry-after", "1",
                              "--json", "--count", "3"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, what="listener")
        self.start_dispatch("-o", f"dispatch.default_url=http://127.0.0.1:{port}/k")
        sid, = self.emit(contact("a-wl"))
        self.wait_state(sid, "delivered")
        # a forged delivery: signed with another secret
        import urllib.request
        body = b'{"topic":"action.alert","shop_id":"s1"}'
        ts = str(int(time.time()))
        key = base64.b64decode(SECRET2[6:])
        sig = base64.b64encode(hmac.new(key, b"x1." + ts.encode() + b"." + body,
                                        hashlib.sha256).digest()).decode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/k", data=body, headers={
            "webhook-id": "x1", "webhook-timestamp": ts, "webhook-signature": "v1," + sig,
            "content-type": "application/json"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(cm.exception.code, 401)
        out, err = p.communicate(timeout=10)
        lines = [json.loads(l) for l in out.splitlines()]
        self.assertEqual([l["status"] for l in lines], [500, 200, 401])
        self.assertEqual([l["verified"] for l in lines], [True, True, False])
        self.assertEqual(lines[0]["id"], "a-wl")
        self.assertEqual(lines[0]["body"]["text"], "亲，您的订单还未付款哦")
        self.assertIn("3 deliveries, 2 verified, 1 invalid", err)


if __name__ == "__main__":
    unittest.main()
