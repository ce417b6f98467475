"""hooks: real webhooks against a real HTTP server on 127.0.0.1, real subprocesses; a hook's
failure or hang is a result, bounded in time, never an exception."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import os
import socket
import threading
import time

import pytest

from omr_workflows.errors import InvalidInputError
from omr_workflows.hooks import (
    HEADER_DELIVERY_ID,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    Hook,
    HooksConfig,
    load_hooks,
    payload,
    run_hooks,
    sign_payload,
    verify_signature,
)

EVENT = {"seq": 7, "kind": "promote", "task": "vision", "model_name": "resnet", "version": "v3",
         "alias": "production", "actor": "alice", "reason": "ship it ✓"}
CALL = dict(kind="promote", ref="vision/resnet", seq=7, event=EVENT, registry="file:///reg")


class _Server:
    """ThreadingHTTPServer on port 0; `mode` decides how it answers; keeps every request."""

    def __init__(self):
        self.requests: list[dict] = []
        self.mode = "ok"
        self.stop = threading.Event()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                outer.requests.append({"path": self.path, "headers": self.headers, "body": body})
                if outer.mode == "hang":
                    outer.stop.wait(30)
                    return
                if outer.mode == "drip":  # a status line one byte every 0.2 s, forever
                    try:
                        for c in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                            if outer.stop.wait(0.2):
                                return
                            self.wfile.write(bytes([c]))
                            self.wfile.flush()
                    except OSError:
                        pass  # the client gave up, as it should
                    return
                if outer.mode == "redirect":
                    self.send_response(307)
                    self.send_header("Location", "file:///etc/passwd")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                code = 500 if outer.mode == "500" else 200
                data = b"x" * (200 * 1024) if outer.mode == "big" else b"fine"
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(k, raising=False)


def _hook(**kw) -> Hook:
    kw.setdefault("name", "h")
    return Hook(**kw)


def _own_signature(secret: bytes, delivery_id: str, ts: str, body: bytes) -> str:
    mac = hmac.new(secret, delivery_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# --- webhooks ------------------------------------------------------------------------------


def test_webhook_one_post_with_valid_hmac(server, monkeypatch):
    monkeypatch.setenv("OMR_TEST_SECRET", "s3cret")
    [r] = run_hooks([_hook(url=server.url, secret_env="OMR_TEST_SECRET")], **CALL)
    assert r.ok and r.status == 200 and r.error is None, r
    assert (r.hook, r.kind, r.ref, r.seq) == ("h", "promote", "vision/resnet", 7)
    assert len(server.requests) == 1
    req = server.requests[0]
    # urllib title-cases header names on the wire ("X-Omr-Signature"); HTTP names are case-insensitive.
    h, body = req["headers"], req["body"]
    assert body == payload(EVENT, "vision/resnet", 7, "file:///reg")
    assert json.loads(body) == {"event": EVENT, "ref": "vision/resnet", "seq": 7, "registry": "file:///reg"}
    assert h["Content-Type"] == "application/json" and h["X-OMR-Event"] == "promote"
    assert abs(int(h["X-OMR-Timestamp"]) - time.time()) < 60
    # independent computation: HMAC-SHA256 over "<delivery_id>.<timestamp>.<body>", base64, "v1,"
    assert h["X-OMR-Signature"] == _own_signature(b"s3cret", h["X-OMR-Delivery-Id"], h["X-OMR-Timestamp"], body)
    ts = int(h["X-OMR-Timestamp"])
    h = dict(h.items())
    assert verify_signature(b"s3cret", h, body)
    assert verify_signature("s3cret", {k.upper(): v for k, v in h.items()}, body)  # names case-insensitive
    assert not verify_signature(b"wrong", h, body)
    assert not verify_signature(b"s3cret", h, body + b" ")
    assert not verify_signature(b"s3cret", {**h, "X-Omr-Delivery-Id": "other"}, body)
    assert not verify_signature(b"s3cret", h, body, now=ts + 301)
    assert not verify_signature(b"s3cret", h, body, now=ts - 301)


def test_stale_or_missing_headers_fail_verification():
    body = b'{"a":1}'
    old = int(time.time()) - 1000
    h = {HEADER_DELIVERY_ID: "d", HEADER_TIMESTAMP: str(old), HEADER_SIGNATURE: sign_payload(b"k", "d", old, body)}
    assert not verify_signature(b"k", h, body)
    assert verify_signature(b"k", h, body, max_age_s=2000)
    assert not verify_signature(b"k", {HEADER_DELIVERY_ID: "d", HEADER_TIMESTAMP: str(old)}, body, max_age_s=2000)
    now = int(time.time())
    rotated = {HEADER_DELIVERY_ID: "d", HEADER_TIMESTAMP: str(now),
               HEADER_SIGNATURE: f"{sign_payload(b'old', 'd', now, body)} {sign_payload(b'k', 'd', now, body)}"}
    assert verify_signature(b"k", rotated, body) and verify_signature(b"old", rotated, body)
    assert sign_payload(b"k", "d", 5, body) == _own_signature(b"k", "d", "5", body)


def test_no_secret_no_signature(server):
    [r] = run_hooks([_hook(url=server.url)], **CALL)
    assert r.ok
    h = server.requests[0]["headers"]
    assert "X-OMR-Signature" not in h and h["X-OMR-Delivery-Id"] and h["X-OMR-Timestamp"]


def test_server_500_fails_with_status(server):
    server.mode = "500"
    [r] = run_hooks([_hook(url=server.url)], **CALL)
    assert not r.ok and r.status == 500 and "500" in r.error


def test_redirect_is_not_followed(server):
    server.mode = "redirect"
    [r] = run_hooks([_hook(url=server.url)], **CALL)
    assert not r.ok and r.status == 307 and "not followed" in r.error
    assert len(server.requests) == 1


def test_large_response_is_read_bounded(server):
    server.mode = "big"
    [r] = run_hooks([_hook(url=server.url)], **CALL)
    assert r.ok and r.status == 200


@pytest.mark.parametrize("mode", ["hang", "drip"])
def test_server_that_never_answers_is_bounded(server, mode):
    server.mode = mode
    t0 = time.monotonic()
    [r] = run_hooks([_hook(url=server.url, timeout_s=1)], **CALL)
    took = time.monotonic() - t0
    assert took < 3, took
    assert not r.ok and r.status is None and "timed out" in r.error, r


def test_unreachable_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the hook runs: nothing listens there
    [r] = run_hooks([_hook(url=f"http://127.0.0.1:{port}/x", timeout_s=2)], **CALL)
    assert not r.ok and r.status is None and r.error


def test_https_to_a_plain_server_fails(server):
    port = server.httpd.server_address[1]
    [r] = run_hooks([_hook(url=f"https://127.0.0.1:{port}/hook", timeout_s=2)], **CALL)
    assert not r.ok and r.status is None and "cannot reach" in r.error


def test_missing_secret_env_fails_without_calling(server, monkeypatch):
    monkeypatch.delenv("OMR_TEST_NO_SUCH_SECRET", raising=False)
    [r] = run_hooks([_hook(url=server.url, secret_env="OMR_TEST_NO_SUCH_SECRET")], **CALL)
    assert not r.ok and r.error == "secret_env OMR_TEST_NO_SUCH_SECRET is not set"
    assert server.requests == []


def test_hooks_run_concurrently_and_in_order(server):
    server.mode = "hang"
    hooks = [_hook(name=f"h{i}", url=server.url, timeout_s=1) for i in range(5)]
    t0 = time.monotonic()
    results = run_hooks(hooks, **CALL)
    assert time.monotonic() - t0 < 3
    assert [r.hook for r in results] == [f"h{i}" for i in range(5)] and not any(r.ok for r in results)


# --- commands ------------------------------------------------------------------------------


def test_command_gets_body_on_stdin_and_env(tmp_path):
    out = tmp_path / "out"
    script = (f'cat > "{out}.body"; '
              f'printf "%s\\n%s\\n%s\\n" "$OMR_EVENT_KIND" "$OMR_EVENT_SEQ" "$OMR_EVENT_REF" > "{out}"')
    [r] = run_hooks([_hook(command=["sh", "-c", script])], **CALL)
    assert r.ok and r.status == 0 and r.error is None, r
    assert out.read_text().splitlines() == ["promote", "7", "vision/resnet"]
    assert (tmp_path / "out.body").read_bytes() == payload(EVENT, "vision/resnet", 7, "file:///reg")


def test_command_exit_code_and_stderr_tail():
    script = "for i in $(seq 1 300); do echo noise-$i >&2; done; echo 'the real reason' >&2; exit 3"
    [r] = run_hooks([_hook(command=["sh", "-c", script])], **CALL)
    assert not r.ok and r.status == 3
    assert r.error.startswith("exit code 3: ...") and r.error.endswith("noise-300 the real reason")
    assert len(r.error) <= 500
    assert "\n" not in r.error


def test_missing_program():
    [r] = run_hooks([_hook(command=["/nonexistent/omr-hook-program"])], **CALL)
    assert not r.ok and r.status is None and "FileNotFoundError" in r.error


def _group_alive(pgid: int) -> list[int]:
    """Pids still in process group `pgid` that are not zombies (a zombie has already died)."""
    alive = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pg = fields[0], int(fields[2])
        if pg == pgid and state != "Z":
            alive.append(int(d))
    return alive


def test_command_timeout_kills_whole_group(tmp_path):
    pidfile = tmp_path / "pid"
    script = f'echo $$ > "{pidfile}"; sleep 100 & sleep 100'
    t0 = time.monotonic()
    [r] = run_hooks([_hook(command=["sh", "-c", script], timeout_s=1)], **CALL)
    took = time.monotonic() - t0
    assert took < 3, took
    assert not r.ok and "timed out" in r.error
    pgid = int(pidfile.read_text())  # start_new_session: the shell leads its own group
    deadline = time.monotonic() + 2
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _group_alive(pgid) == []
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        pass  # gone entirely (reaped)
    else:
        assert _group_alive(pgid) == []  # only zombies left, waiting for init to reap them


def test_command_that_leaves_a_child_does_not_block():
    t0 = time.monotonic()
    [r] = run_hooks([_hook(command=["sh", "-c", "sleep 5 >/dev/null 2>&1 & exit 0"], timeout_s=4)], **CALL)
    assert r.ok and time.monotonic() - t0 < 2


# --- selection -----------------------------------------------------------------------------


def test_on_and_match_filtering(tmp_path):
    def hook(name, **kw):
        return _hook(name=name, command=["sh", "-c", f'touch "{tmp_path}/{name}"'], **kw)

    hooks = [hook("all"), hook("promotes", on=["promote"]), hook("registers", on=["register", "adopt"]),
             hook("vision", match="vision/*"), hook("nlp", match="nlp/*"), hook("exact", match="vision/resnet"),
             hook("both", on=["stage", "promote"], match="*/res*")]
    results = run_hooks(hooks, **CALL)
    assert [r.hook for r in results] == ["all", "promotes", "vision", "exact", "both"]
    assert all(r.ok for r in results)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["all", "promotes", "vision", "exact", "both"])
    assert run_hooks(hooks, **{**CALL, "kind": "reject", "ref": "nlp/bert"})[0].hook == "all"
    assert run_hooks([], **CALL) == []


# --- configuration -------------------------------------------------------------------------


def test_load_json_and_yaml():
    cfg = load_hooks(json.dumps({"hooks": [{"name": "ci", "url": "https://ci.example/h", "on": ["register"],
                                            "secret_env": "CI_SECRET", "timeout_s": 2.5}]}).encode(), "hooks.json")
    assert isinstance(cfg, HooksConfig) and cfg.hooks[0].timeout_s == 2.5 and cfg.hooks[0].match == "*"
    y = b"hooks:\n  - name: notify\n    command: [notify-send, model]\n    match: 'vision/*'\n"
    assert load_hooks(y, "hooks.yaml").hooks[0].command == ["notify-send", "model"]
    assert load_hooks(y, "my-hooks").hooks[0].name == "notify"  # YAML by content


@pytest.mark.parametrize("hook, field", [
    ({"name": "a", "url": "file:///etc/passwd"}, "scheme"),
    ({"name": "a", "url": "ftp://x/y"}, "scheme"),
    ({"name": "a", "url": "https://user:pw@x/y"}, "credentials"),
    ({"name": "a", "url": "http:///nohost"}, "host"),
    ({"name": "a", "url": "https://x/y", "command": ["true"]}, "exactly one"),
    ({"name": "a"}, "exactly one"),
    ({"name": "a", "command": []}, "command"),
    ({"name": "a", "url": "https://x/y", "timeout_s": 0}, "timeout_s"),
    ({"name": "a", "url": "https://x/y", "timeout_s": 61}, "timeout_s"),
    ({"name": "a", "url": "https://x/y", "shell": True}, "shell"),
    ({"name": "a", "url": "https://x/y", "on": ["delete"]}, "on"),
    ({"name": "a", "url": "https://x/y", "secret_env": "s3cr3t value!"}, "secret_env"),
    ({"name": "a", "command": ["true"], "secret_env": "X"}, "url hooks only"),
    ({"name": "../a", "url": "https://x/y"}, "name"),
])
def test_invalid_hooks_rejected(hook, field):
    with pytest.raises(InvalidInputError) as ei:
        load_hooks(json.dumps({"hooks": [hook]}).encode(), "hooks.json")
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("hooks.json:") and field in msg, msg


def test_duplicate_names_and_unknown_top_level_field_rejected():
    dup = {"hooks": [{"name": "a", "url": "https://x/1"}, {"name": "a", "command": ["true"]}]}
    with pytest.raises(InvalidInputError, match="unique.*a"):
        load_hooks(json.dumps(dup).encode(), "hooks.json")
    with pytest.raises(InvalidInputError, match="hooks.json.*extra"):
        load_hooks(b'{"hooks": [], "extra": 1}', "hooks.json")
    with pytest.raises(InvalidInputError, match="hooks.json"):
        load_hooks(b'{"hooks": [], "hooks": []}', "hooks.json")  # duplicate key (bounded reader)
    with pytest.raises(InvalidInputError, match="hooks.json"):
        load_hooks(b"[1, 2]", "hooks.json")
    too_many = {"hooks": [{"name": f"h{i}", "command": ["true"]} for i in range(65)]}
    with pytest.raises(InvalidInputError, match="hooks"):
        load_hooks(json.dumps(too_many).encode(), "hooks.json")
