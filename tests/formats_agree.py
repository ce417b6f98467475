"""The fast readers (`omr_workflows.fastread`) against the pydantic models they are compiled from.

`verdict(fmt, data, reader)` is what a reader makes of one file: ("ok", the data as a dict) or
("bad", the exit code omrw gives). Both readers must give the same verdict on every file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from pydantic import ValidationError

from omr_workflows import fastread
from omr_workflows.errors import OmrError
from omr_workflows.events import AliasPointer, AnchorPointer, Event, Head
from omr_workflows.manifest import Manifest

MODELS = {"audit_event": Event, "audit_head": Head, "audit_anchor": AnchorPointer, "alias": AliasPointer,
          "omr_manifest": Manifest}
EXAMPLES = Path(__file__).parent / "schema_examples"


def fast_verdict(fmt: str, data: bytes) -> tuple[str, object]:
    try:
        doc = fastread.read_manifest(data) if fmt == "omr_manifest" else fastread.read(fmt, data)
    except fastread.FormatError:
        return "bad", 1  # audit, registry and fsck raise IntegrityError for these
    except OmrError as e:
        return "bad", e.exit_code
    return "ok", _as_dumped(doc)


def _as_dumped(value):
    """The data as `model_dump(mode="json")` shows it: NaN (accepted in an unchecked extra field of
    an omnibioai pointer by both parsers) is dumped as null."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _as_dumped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_dumped(v) for v in value]
    return value


def model_verdict(fmt: str, data: bytes) -> tuple[str, object]:
    try:
        model = MODELS[fmt].model_validate_json(data, strict=True)
    except ValidationError as e:
        return "bad", 2 if (fmt == "omr_manifest" and "unsafe" in str(e)) else 1
    return "ok", model.model_dump(mode="json", by_alias=True)


def disagreement(fmt: str, data: bytes) -> str | None:
    fast, model = fast_verdict(fmt, data), model_verdict(fmt, data)
    if fast != model:
        return f"{fmt}: fastread says {fast!r:.300}, the model says {model!r:.300} for {data[:300]!r}"
    return None


HOSTILE_VALUES = [None, True, False, 0, 1, -1, 1.0, 1.5, 10**10, 2**63, "", "1", "x", "../x", "a/b", "/abs",
                  "a\\b", "v\n", "x" * 5000, "sha256:" + "0" * 64, "0" * 64, "0" * 32, "production", [], [1], {},
                  {"seq": 1, "sha256": "0" * 64}, {"x": 1}]


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:2]):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value, delete=False):
    out = copy.deepcopy(doc)
    target = out
    for p in path[:-1]:
        target = target[p]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return out


def mutations(doc: dict):
    """Every field deleted, replaced by each hostile value, and an unknown field beside it."""
    for path in _paths(doc):
        yield _set(doc, path, None, delete=True)
        for value in HOSTILE_VALUES:
            yield _set(doc, path, value)
    for path in [()] + [p for p in _paths(doc)]:
        target = doc
        try:
            for p in path:
                target = target[p]
        except (KeyError, IndexError, TypeError):
            continue
        if isinstance(target, dict):
            extra = copy.deepcopy(doc)
            t = extra
            for p in path:
                t = t[p]
            t["zz_unknown"] = 1
            t["../key"] = "v"
            yield extra


RAW_MUTATIONS = [
    lambda b: b"\xef\xbb\xbf" + b,               # UTF-8 byte-order mark
    lambda b: b[:-3],                            # truncated
    lambda b: b + b"x",                          # trailing garbage
    lambda b: b.replace(b'"', b"'", 1),
    lambda b: b.replace(b"{", b'{"seq": NaN, ', 1),
    lambda b: b.replace(b"{", b'{"actor": "\\ud800", ', 1),
    lambda b: b.replace(b"{", b'{"actor": "\\ud83d\\ude00", ', 1),
    lambda b: b.replace(b"{", b'{"seq": 1, ', 1),  # a duplicate key: the last one wins in both
    lambda b: b.replace(b"{", b"{\xff", 1),       # not UTF-8
    lambda b: b.decode().encode("utf-16"),
    lambda b: b"[" * 5000 + b"]" * 5000,
    lambda b: b"",
    lambda b: b"null",
]


def example_files() -> list[tuple[str, Path]]:
    return [(d.name, f) for d in sorted(EXAMPLES.iterdir()) if d.is_dir() for f in sorted(d.glob("*.json"))]


def format_of(path: Path) -> str | None:
    """Which fast-read format a file in a registry holds, from where it lies (layout.py's keys)."""
    parts = path.parts
    if path.name == "omr_manifest.json" and len(parts) >= 3 and parts[-3] == "versions":
        return "omr_manifest"
    if len(parts) >= 3 and parts[-3] == "audit" and parts[-2] == "events":
        return "audit_event"
    if len(parts) >= 3 and parts[-3] == "audit" and parts[-2] == "anchors":
        return "audit_anchor"
    if path.name == "head.json" and parts[-2] == "audit":
        return "audit_head"
    if len(parts) >= 3 and parts[-2] == "aliases" and path.suffix == ".json":
        return "alias"
    return None


def check_tree(root: Path, limit: int = 200_000) -> tuple[int, list[str]]:
    """Feed every fast-read file under `root` (regular files only: tests plant FIFOs and links)
    through both readers; (files checked, disagreements)."""
    import os
    import stat

    checked, problems = 0, []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            if not name.endswith(".json"):
                continue
            path = Path(dirpath) / name
            fmt = format_of(path)
            if fmt is None:
                continue
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > (8 << 20):
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            checked += 1
            d = disagreement(fmt, data)
            if d:
                problems.append(f"{path}: {d}")
            if checked >= limit:
                return checked, problems
    return checked, problems
