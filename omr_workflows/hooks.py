"""Notification hooks: what a writer runs after it committed an event (webhooks and commands).

Why a hook can never change an event: `run_hooks` is called only after the event's commit
point (its file is written and the head moved, docs/DESIGN.md, "The log"). By then the event
is what it is; a hook's outcome is returned as a `HookResult` (and recorded by
`hooks_run.py`), never raised. A hook that fails, hangs, floods its output, never answers or
answers one byte at a time costs at most its own `timeout_s` (all hooks run concurrently, so
one `run_hooks` call costs at most the largest timeout plus a small margin) and cannot change
the event, undo it or the exit code of the command that wrote it.

Threat note: a command hook runs a program as the writer, with the writer's environment.
Hooks may therefore come only from a policy that is signed and *verified* against the
writer's trust root, or from the writer's own hooks file, never from an unsigned file in the
shared registry (anyone who can write the registry could otherwise make every writer run a
command). This module does not know where a hook came from: the caller (`hooks_run.py`)
enforces it. Secrets never live in the registry either: a hook names the environment
variable (`secret_env`) that holds its HMAC secret on the writer's machine.

Webhook signing mirrors MLflow's webhooks (mlflow/webhooks/delivery.py and constants.py:
`X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<delivery_id>.<timestamp>.<payload>">`,
`X-MLflow-Delivery-Id`, `X-MLflow-Timestamp`) with our own header names:

    Content-Type: application/json
    X-OMR-Event: <kind>
    X-OMR-Delivery-Id: <uuid4, new for every delivery>
    X-OMR-Timestamp: <unix seconds, integer>
    X-OMR-Signature: v1,<base64(HMAC-SHA256(secret, b"<delivery_id>.<timestamp>." + body))>

The signature header is absent when the hook has no `secret_env`. The body is `payload()`:
canonical JSON (sorted keys, no spaces, UTF-8) of {"event", "ref", "registry", "seq"}; it is
the same bytes for every hook of one event. Delivery id and timestamp are in the headers
only, bound to the body by the signature. Command hooks get the same body on stdin and
OMR_EVENT_KIND, OMR_EVENT_SEQ and OMR_EVENT_REF in their environment.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import re
import time
import urllib.parse
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidInputError, validation_detail
from .manifest import canonical_json
from .names import name_type

Name = name_type()
HookKind = Literal["register", "adopt", "import", "request", "approve", "reject", "promote", "stage", "sign"]

SIGNATURE_VERSION = "v1"
HEADER_SIGNATURE = "X-OMR-Signature"
HEADER_DELIVERY_ID = "X-OMR-Delivery-Id"
HEADER_TIMESTAMP = "X-OMR-Timestamp"
HEADER_EVENT = "X-OMR-Event"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ERROR_CHARS = 500
MAX_HOOKS = 64
MAX_TIMEOUT_S = 60.0
#: What `run_hooks` may take beyond the largest timeout (thread start, killing a process group).
DEADLINE_MARGIN_S = 0.5
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _one_line(text: object, limit: int = MAX_ERROR_CHARS, tail: bool = False) -> str:
    """`text` on one printable line of at most `limit` characters (the end of it if `tail`)."""
    s = " ".join(str(text).split())
    s = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256 else f"\\u{ord(c):04x}" for c in s)
    if len(s) > limit:
        s = ("..." + s[-(limit - 3):]) if tail else (s[:limit - 3] + "...")
    return s


class Hook(BaseModel):
    """One hook: a webhook (`url`) or a command (`command`, an argv; no shell)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    on: list[HookKind] = Field(default_factory=list, max_length=8, description="event kinds; empty = every kind")
    match: str = Field(default="*", min_length=1, max_length=512, description="fnmatch glob against TASK/MODEL")
    url: str | None = Field(default=None, max_length=2048, description="http or https URL to POST the event to")
    command: list[str] | None = Field(default=None, min_length=1, max_length=256,
                                      description="argv to run with the event on stdin")
    secret_env: str | None = Field(default=None, description="NAME of the environment variable with the HMAC secret")
    timeout_s: float = Field(default=5.0, gt=0, le=MAX_TIMEOUT_S)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if any(not c.isprintable() or c.isspace() for c in v):
            raise ValueError("url must not contain spaces or control characters")
        try:
            u = urllib.parse.urlsplit(v)
            port = u.port
        except ValueError as e:
            raise ValueError(f"url is malformed ({e})") from None
        if u.scheme.lower() not in ("http", "https"):
            raise ValueError(f"url scheme must be http or https, not {u.scheme or 'none'!r}")
        if not u.hostname:
            raise ValueError("url has no host")
        if u.username is not None or u.password is not None:
            raise ValueError("url must not carry credentials (sign with secret_env instead)")
        if port == 0:
            raise ValueError("url port must not be 0")
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v[0]:
            raise ValueError("command[0] must not be empty")
        for a in v:
            if "\x00" in a or len(a) > 4096:
                raise ValueError("command arguments must not contain NUL or exceed 4096 characters")
        return v

    @field_validator("secret_env")
    @classmethod
    def _secret_env(cls, v: str | None) -> str | None:
        if v is not None and not _ENV_NAME.fullmatch(v):
            raise ValueError("secret_env must be an environment variable NAME (letters, digits, '_'), not a secret")
        return v

    @model_validator(mode="after")
    def _one_target(self):
        if (self.url is None) == (self.command is None):
            raise ValueError("a hook needs exactly one of url or command")
        if self.command is not None and self.secret_env is not None:
            raise ValueError("secret_env applies to url hooks only")
        return self

    def selects(self, kind: str, ref: str) -> bool:
        return (not self.on or kind in self.on) and fnmatch.fnmatchcase(ref, self.match)


class HooksConfig(BaseModel):
    """A hooks file (the writer's `$OMR_HOOKS`): `{"hooks": [...]}`, names unique."""

    model_config = ConfigDict(extra="forbid")
    hooks: list[Hook] = Field(default_factory=list, max_length=MAX_HOOKS)

    @model_validator(mode="after")
    def _unique(self):
        names = [h.name for h in self.hooks]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"hook names must be unique (repeated: {', '.join(dup)})")
        return self


class HookResult(BaseModel):
    """What one hook did for one event. `status`: HTTP status or exit code, None if there was none."""

    model_config = ConfigDict(extra="forbid")
    hook: Name
    kind: str = Field(max_length=64)
    ref: str = Field(max_length=512)
    seq: int
    ok: bool
    status: int | None = None
    error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)
    duration_s: float
    ts_utc: str


def load_hooks(data: bytes, what: str) -> HooksConfig:
    """Parse a hooks file (JSON, or YAML by its `.yaml`/`.yml` name or content), bounded.

    Raises InvalidInputError on one line naming `what` and the bad field.
    """
    from .bounds import load_json_bounded, load_yaml_bounded

    lower = what.lower()
    text_start = data.lstrip()[:1] if isinstance(data, (bytes, bytearray)) else str(data).lstrip()[:1].encode()
    if lower.endswith((".yaml", ".yml")) or (not lower.endswith(".json") and text_start not in (b"{", b"[")):
        obj = load_yaml_bounded(data, what)
    else:
        obj = load_json_bounded(data, what)
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{what}: must be a mapping with a 'hooks' list", obj=what)
    try:
        return HooksConfig.model_validate(obj)
    except ValidationError as e:
        raise InvalidInputError(f"{what}: invalid hooks ({_one_line(validation_detail(e))})", obj=what) from None


# --- signing -------------------------------------------------------------------------------


def payload(event: dict, ref: str, seq: int, registry: str) -> bytes:
    """The body every hook of one event gets: canonical JSON of event, ref, registry and seq."""
    return canonical_json({"event": event, "ref": ref, "registry": registry, "seq": seq})


def _as_bytes(secret: bytes | str) -> bytes:
    return secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)


def sign_payload(secret: bytes | str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256(secret, "<delivery_id>.<timestamp>." + body)>` (MLflow's format)."""
    signed = f"{delivery_id}.{int(timestamp)}.".encode("utf-8") + body
    mac = hmac.new(_as_bytes(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(mac).decode('ascii')}"


def verify_signature(secret: bytes | str, headers: dict, body: bytes, max_age_s: float = 300,
                     now: float | None = None) -> bool:
    """What a receiver should do with a delivery; True only if it is authentic and fresh.

    1. Take the raw request body bytes as received (do not re-serialize the parsed JSON).
    2. Read X-OMR-Delivery-Id, X-OMR-Timestamp and X-OMR-Signature (names case-insensitive).
    3. Refuse a timestamp more than `max_age_s` seconds from now (either way): replay defence.
    4. Recompute `sign_payload(secret, delivery_id, timestamp, body)` and compare it with
       `hmac.compare_digest` (constant time) to each `v1,...` entry of the signature header
       (space-separated, so a sender may sign with an old and a new secret while rotating).
    5. Optionally remember delivery ids seen within `max_age_s` and refuse repeats.
    """
    low = {str(k).lower(): v for k, v in dict(headers).items()}
    delivery_id = low.get(HEADER_DELIVERY_ID.lower())
    ts_text = low.get(HEADER_TIMESTAMP.lower())
    sig_header = low.get(HEADER_SIGNATURE.lower())
    if not isinstance(delivery_id, str) or not isinstance(ts_text, str) or not isinstance(sig_header, str):
        return False
    if not re.fullmatch(r"[0-9]{1,12}", ts_text.strip()):
        return False
    ts = int(ts_text.strip())
    if abs((time.time() if now is None else now) - ts) > max_age_s:
        return False
    expected = sign_payload(secret, delivery_id, ts, body).encode("ascii")
    ok = False
    for entry in sig_header.split():
        if hmac.compare_digest(entry.encode("utf-8", "replace"), expected):
            ok = True  # no early exit: the time taken does not say which entry matched
    return ok


def run_hooks(hooks: list[Hook], *, kind: str, ref: str, seq: int, event: dict, registry: str) -> list[HookResult]:
    """Run the hooks that select this event, concurrently, each bounded by its timeout; never
    raises (see `hook_delivery.run_hooks`)."""
    from .hook_delivery import run_hooks as deliver

    return deliver(hooks, kind=kind, ref=ref, seq=seq, event=event, registry=registry)
