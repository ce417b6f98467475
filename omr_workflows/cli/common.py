"""Options, parsing helpers and output shared by every `omrw` subcommand."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Callable

from ..bounds import MAX_DEPTH, MAX_INPUT_BYTES, json_or_text, load_json_bounded, read_bounded
from ..errors import InvalidInputError


def common_parent() -> argparse.ArgumentParser:
    """`--json` and `--registry`, accepted before or after the subcommand."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print one JSON document on stdout")
    p.add_argument("--registry", metavar="URL", default=argparse.SUPPRESS,
                   help="registry path or fsspec URL (default: $OMR_REGISTRY, $OMNIBIOAI_MODEL_REGISTRY_ROOT, "
                        "then a local folder)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show a traceback on errors")
    p.add_argument("--trust", metavar="FILE", default=argparse.SUPPRESS,
                   help="trust root pinned outside the registry: only a policy it signed is obeyed, and resolve, "
                        "verify and lock check signatures and approvals (default: $OMR_TRUST, the lock file's "
                        "trust section, ./omr-trust.json, ~/.config/omr/trust.json; `none` turns them off)")
    p.add_argument("--offline", action="store_true", default=argparse.SUPPRESS,
                   help="refuse every remote registry at once with a clear error ($OMR_OFFLINE=1)")
    p.add_argument("--key", metavar="KEYFILE", default=argparse.SUPPRESS,
                   help="EC P-256 private key (PEM) that signs the events this command writes ($OMR_SIGNING_KEY)")
    return p


def want_json(args) -> bool:
    return bool(getattr(args, "json", False))


def registry(args, lock_trust=None):
    from ..registry import Registry

    return Registry(getattr(args, "registry", None), trust_legacy_versions=getattr(args, "trust_legacy", None),
                    trust=trust_root(args, lock_trust), signer=signing_key(args))


def trust_root(args, lock_trust=None):
    """The consumer's trust root, or None (then nothing is enforced at the point of use)."""
    from ..trustinfo import trust_file

    explicit = getattr(args, "trust", None)
    source = trust_file(explicit)
    if source == "none" or (lock_trust is None and source is None):
        return None  # no trust root anywhere: policy.py (pydantic models, hooks) is never imported
    from ..policy import find_trust

    return find_trust(explicit, lock_trust)


def signing_key(args, option: str = "key"):
    path = getattr(args, option, None) or (os.environ.get("OMR_SIGNING_KEY") if option == "key" else None)
    if not path:
        return None
    from ..signing.keys import load_private

    return load_private(path)


def state_fields():
    """The state fields every event carries, left out when a command shows an event."""
    from ..events import STATE_FIELDS

    return STATE_FIELDS


def to_jsonable(data: Any) -> Any:
    if hasattr(data, "model_dump"):
        return data.model_dump(mode="json")
    if isinstance(data, list):
        return [to_jsonable(d) for d in data]
    if isinstance(data, dict):
        return {k: to_jsonable(v) for k, v in data.items()}
    return data


def emit(args, data: Any, human: str | Callable[[], str] | None = None) -> None:
    """One JSON document with --json, else human text."""
    if want_json(args):
        sys.stdout.write(json.dumps(to_jsonable(data), indent=2, sort_keys=False, default=str) + "\n")
    elif human is not None:
        text = human() if callable(human) else human
        if text:
            sys.stdout.write(text.rstrip("\n") + "\n")


# Where a --param value sits inside model_meta.json ({"params": {k: v}}): its depth budget leaves
# room for those levels, so the file written stays within MAX_DEPTH (capture.load_params does the
# same for a --params document).
PARAM_VALUE_DEPTH = MAX_DEPTH - 2


def parse_kv(items: list[str] | None, what: str = "--param") -> dict[str, Any]:
    """`k=v` pairs; values that parse as JSON (numbers, booleans, lists) keep their type.

    Values are bounded (bounds.json_or_text): too deep, NaN or Infinity -> InvalidInputError.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise InvalidInputError(f"invalid {what} {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        k = k.strip()
        out[k] = json_or_text(v, f"{what.lstrip('-')} {k}", max_depth=PARAM_VALUE_DEPTH)
    return out


def read_json_file(path: str, what: str, max_bytes: int = MAX_INPUT_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON file named on the command line, parsed with the bounds of `bounds.load_json_bounded`."""
    data = read_bounded(path, what, max_bytes)
    return load_json_bounded(data, f"{what} file {path!r}", max_bytes=max_bytes, max_depth=max_depth)


def read_params_file(path: str) -> dict[str, Any]:
    """Hyperparameters from a `--params` file (`capture.load_params` owns the format and bounds)."""
    from ..capture import load_params

    return load_params(path)


# C0 and C1 controls, DEL, lone surrogates (undecodable file names), the line/paragraph
# separators and the bidirectional overrides/isolates (they reorder what a terminal shows).
_UNSAFE_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e"
                           "\u2066-\u2069\ud800-\udfff]")


def _escape_char(m: re.Match) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(s: Any) -> str:
    """`s` as one line that cannot drive a terminal: every control character is shown as `\\xNN`
    or `\\uNNNN` (see `_UNSAFE_CHARS`); printable text, spaces included, is unchanged.

    Every human output of a value read from the registry, a report or the user goes through
    this (docs/DESIGN.md, "Untrusted input"); `--json` output does not (json.dumps escapes, and must stay exact).
    """
    text = s if isinstance(s, str) else str(s)
    if not _UNSAFE_CHARS.search(text):
        return text
    return _UNSAFE_CHARS.sub(_escape_char, text)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    m = _DURATION.match(text or "")
    if not m:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: use e.g. 3600, 30m, 6h, 2d")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[m.group(2)]


def record_provenance(args, kind: str, result, verified: str) -> None:
    """Append a run provenance record when running inside a workflow ($OMR_RUN_DIR)."""
    from ..constants import ENV_RUN_DIR

    run_dir = getattr(args, "provenance_dir", None) or os.environ.get(ENV_RUN_DIR, "").strip()
    if not run_dir:
        return
    from ..runrecord import append_record

    append_record(run_dir, kind=kind, result=result, verified=verified)
