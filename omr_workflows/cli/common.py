"""Options, parsing helpers and output shared by every `omrw` subcommand."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, Callable

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
    return p


def want_json(args) -> bool:
    return bool(getattr(args, "json", False))


def registry(args):
    from ..registry import Registry

    return Registry(getattr(args, "registry", None))


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


def parse_kv(items: list[str] | None, what: str = "--param") -> dict[str, Any]:
    """`k=v` pairs; values that parse as JSON (numbers, booleans, lists) keep their type."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item or not item.split("=", 1)[0].strip():
            raise InvalidInputError(f"invalid {what} {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except ValueError:
            out[k.strip()] = v
    return out


def read_json_file(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise InvalidInputError(f"{what} file {path!r} does not exist") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"{what} file {path!r} is not valid JSON: {e}") from None
    except OSError as e:
        raise InvalidInputError(f"{what} file {path!r} cannot be read: {e.strerror}") from None


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
