"""Delivering hooks: the threads, sockets and process groups behind `hooks.run_hooks`.

Kept apart from `hooks.py` (the formats and the signature) so that reading a policy never
imports http.client, urllib or subprocess: only a writer that has hooks to run pays for them.
"""

from __future__ import annotations

import functools
import http.client
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone

from .hooks import (DEADLINE_MARGIN_S, HEADER_DELIVERY_ID, HEADER_EVENT, HEADER_SIGNATURE, HEADER_TIMESTAMP,
                    MAX_ERROR_CHARS, MAX_RESPONSE_BYTES, Hook, HookResult, _one_line, payload, sign_payload)


# --- running -------------------------------------------------------------------------------


class _Abort:
    """What the watchdog calls when a hook passes its deadline: close its socket, kill its group."""

    def __init__(self):
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._pgid: int | None = None
        self.fired = False

    def add_socket(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            fired = self.fired
        if fired:
            _shutdown(sock)

    def set_pgid(self, pgid: int | None) -> None:
        with self._lock:
            self._pgid = pgid

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            socks, pgid = list(self._socks), self._pgid
        for s in socks:
            _shutdown(s)
        if pgid is not None:
            _killpg(pgid)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in recv on it
    except OSError:
        pass


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        pass


class _Tracked:
    """A connection whose socket the watchdog can shut down at the hook's deadline."""

    def __init__(self, abort: _Abort, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._omr_abort = abort

    def connect(self):
        super().connect()
        self._omr_abort.add_socket(self.sock)


class _TrackedHTTP(_Tracked, http.client.HTTPConnection):
    pass


class _TrackedHTTPS(_Tracked, http.client.HTTPSConnection):
    pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook is not followed anywhere else: a 3xx is the hook's answer, and a failure."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _opener(abort: _Abort) -> urllib.request.OpenerDirector:
    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(functools.partial(_TrackedHTTP, abort), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(functools.partial(_TrackedHTTPS, abort), req, context=self._context)

    # build_opener drops its default HTTP/HTTPS/redirect handlers for these subclasses; only
    # http and https are reachable (no file:, ftp:, data: handlers are consulted for our URLs).
    return urllib.request.build_opener(HTTP(), HTTPS(), _NoRedirect())


def _read_bounded(resp, deadline: float) -> None:
    left = MAX_RESPONSE_BYTES
    while left > 0 and time.monotonic() < deadline:
        chunk = resp.read1(min(left, 8192)) if hasattr(resp, "read1") else resp.read(min(left, 8192))
        if not chunk:
            break
        left -= len(chunk)


def _post(hook: Hook, kind: str, body: bytes, abort: _Abort, deadline: float) -> tuple[bool, int | None, str | None]:
    from .constants import offline

    if offline():
        return False, None, "offline (OMR_OFFLINE=1): webhook not sent"
    headers = {"Content-Type": "application/json", HEADER_EVENT: kind, "User-Agent": "omr-workflows-hooks/1"}
    delivery_id, ts = str(uuid.uuid4()), int(time.time())
    headers[HEADER_DELIVERY_ID] = delivery_id
    headers[HEADER_TIMESTAMP] = str(ts)
    if hook.secret_env:
        headers[HEADER_SIGNATURE] = sign_payload(os.environ[hook.secret_env], delivery_id, ts, body)
    req = urllib.request.Request(hook.url, data=body, headers=headers, method="POST")
    try:
        resp = _opener(abort).open(req, timeout=hook.timeout_s)
    except urllib.error.HTTPError as e:
        try:
            _read_bounded(e, deadline)
        except (OSError, http.client.HTTPException, ValueError):
            pass
        finally:
            e.close()
        if 300 <= e.code < 400:
            where = _one_line(e.headers.get("Location", "?"), 200) if e.headers else "?"
            return False, e.code, f"HTTP {e.code}: redirect to {where} not followed"
        return False, e.code, _one_line(f"HTTP {e.code} {e.reason}")
    with resp:
        status = resp.status
        _read_bounded(resp, deadline)
    if 200 <= status < 300:
        return True, status, None
    return False, status, _one_line(f"HTTP {status} {getattr(resp, 'reason', '')}")


def _tail(f, limit: int = MAX_ERROR_CHARS) -> str:
    f.flush()
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * limit))
    return _one_line(f.read().decode("utf-8", "replace"), limit, tail=True)


def _run_command(hook: Hook, kind: str, ref: str, seq: int, body: bytes, abort: _Abort,
                 deadline: float) -> tuple[bool, int | None, str | None]:
    env = dict(os.environ, OMR_EVENT_KIND=kind, OMR_EVENT_SEQ=str(seq), OMR_EVENT_REF=ref)
    # Files, not pipes, for stdin and stderr: a child the hook leaves behind cannot hold a pipe
    # open and keep us waiting, and a hook that never reads stdin cannot block our write.
    with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as ferr:
        fin.write(body)
        fin.seek(0)
        proc = subprocess.Popen(hook.command, stdin=fin, stdout=subprocess.DEVNULL, stderr=ferr, env=env,
                                close_fds=True, start_new_session=True)
        abort.set_pgid(proc.pid)  # the new session's leader: its pid is the group id
        try:
            try:
                code = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _killpg(proc.pid)  # before reaping the leader, so the group id cannot be reused
                proc.wait()
                return False, None, _one_line(f"timed out after {hook.timeout_s:g}s (process group killed)")
        finally:
            abort.set_pgid(None)
        if abort.fired:
            return False, None, _one_line(f"timed out after {hook.timeout_s:g}s (process group killed)")
        if code == 0:
            return True, 0, None
        what = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        tail = _tail(ferr, MAX_ERROR_CHARS - len(what) - 2)  # the end of stderr, where the reason usually is
        return False, code, f"{what}: {tail}" if tail else what


def _run_one(hook: Hook, kind: str, ref: str, seq: int, body: bytes, abort: _Abort,
             deadline: float) -> tuple[bool, int | None, str | None]:
    try:
        if hook.url is not None:
            return _post(hook, kind, body, abort, deadline)
        return _run_command(hook, kind, ref, seq, body, abort, deadline)
    except Exception as e:  # noqa: BLE001 - a hook's failure is its result, never our exception
        if abort.fired or isinstance(e, (socket.timeout, TimeoutError)) or "timed out" in str(e):
            return False, None, _one_line(f"timed out after {hook.timeout_s:g}s ({type(e).__name__}: {e})")
        if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
            return False, None, _one_line(f"cannot reach {hook.url}: {e.reason}")
        return False, None, _one_line(f"{type(e).__name__}: {e}")


def run_hooks(hooks: list[Hook], *, kind: str, ref: str, seq: int, event: dict, registry: str) -> list[HookResult]:
    """Run the hooks that select (`kind`, `ref`) concurrently; one result each, in `hooks` order.

    Never raises for a hook's failure. Each hook is bounded by its `timeout_s` (socket timeout
    and a watchdog that closes its connection or kills its process group at the deadline), so
    the call returns within the largest timeout plus `DEADLINE_MARGIN_S`. A hook whose
    `secret_env` is not set fails without being called.
    """
    selected = [h for h in hooks if h.selects(kind, ref)]
    if not selected:
        return []
    body = payload(event, ref, seq, registry)
    start = time.monotonic()
    slots: list[tuple | None] = [None] * len(selected)  # ((ok, status, error), end), written once
    aborts = [_Abort() for _ in selected]
    threads: list[threading.Thread | None] = []

    def work(i: int, h: Hook, deadline: float) -> None:
        try:
            got = _run_one(h, kind, ref, seq, body, aborts[i], deadline)
        except BaseException as e:  # noqa: BLE001 - nothing may escape a hook thread
            got = (False, None, _one_line(f"{type(e).__name__}: {e}"))
        slots[i] = (got, time.monotonic())

    for i, h in enumerate(selected):
        if h.secret_env and not os.environ.get(h.secret_env):
            slots[i] = ((False, None, f"secret_env {h.secret_env} is not set"), time.monotonic())
            threads.append(None)
            continue
        # Daemon threads, not an executor: a hook stuck in DNS must not keep the process from exiting.
        t = threading.Thread(target=work, args=(i, h, start + h.timeout_s), name=f"omr-hook-{h.name}", daemon=True)
        t.start()
        threads.append(t)

    final: list[tuple] = []
    for i, (h, t) in enumerate(zip(selected, threads)):
        if t is not None:
            t.join(max(0.0, start + h.timeout_s - time.monotonic()))
            if t.is_alive():
                aborts[i].fire()
                t.join(max(0.0, start + h.timeout_s + DEADLINE_MARGIN_S - time.monotonic()))
        slot = slots[i]  # read once: a thread past its deadline may still write later
        final.append(slot if slot is not None else ((False, None, f"timed out after {h.timeout_s:g}s"),
                                                    time.monotonic()))

    ts = datetime.now(timezone.utc).isoformat()
    out = []
    for h, ((ok, status, error), end) in zip(selected, final):
        out.append(HookResult(hook=h.name, kind=kind, ref=ref, seq=seq, ok=ok, status=status,
                              error=None if error is None else _one_line(error),
                              duration_s=round(end - start, 3), ts_utc=ts))
    return out
