"""Readers of the log's and the manifest's files that need no pydantic (docs/DESIGN.md, "Start-up").

Resolve, lock and verify start from a handful of small files: head, events, anchor pointer,
alias pointer, manifest. Building their pydantic models costs more than the rest of a
resolve (~100 ms), so every *read* of these formats goes through here, and pydantic stays
the one definition of them: each reader is compiled from the JSON Schema the models export
(`omr_workflows/schemas/`, kept equal to the models by a test), with pydantic's strict JSON
semantics, and the name and path rules are the same functions the models call (named by the
schema's `format`). A test feeds every schema example and every file the suite writes
through both and asserts the same verdict and the same data, so the two cannot drift.

A reader returns a `Doc`: the validated document as a dict equal to the model's
`model_dump(mode="json", by_alias=True)`, with attribute access, so code reads
`event.aliases["production"].version` whichever of the two produced it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable

SCHEMA_DIR = Path(__file__).parent / "schemas"


class FormatError(ValueError):
    """The bytes are not a valid document of the format (the message says where and why)."""


class Doc(dict):
    """A validated document: a dict with its fields as attributes (read-only by convention)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def model_dump(self, mode: str = "json", exclude=None, by_alias: bool = True) -> dict:
        """The pydantic call of the same name, for code that holds either kind."""
        return {k: v for k, v in self.items() if not exclude or k not in exclude}

    def model_copy(self, update: dict | None = None) -> "Doc":
        return type(self)({**self, **(update or {})})


def describe_lifecycle(state, ref: str) -> str:
    """`ref was retired on DATE by ACTOR: REASON`: one wording for events.Lifecycle and its Doc."""
    what = {"deprecated": "deprecated", "retired": "retired", "pruned": "retired (its files were removed)"}[state.state]
    return f"{ref} was {what} on {state.ts_utc[:10]} by {state.actor}: {state.reason or 'no reason given'}"


class LifecycleDoc(Doc):
    __slots__ = ()
    describe = describe_lifecycle


class ManifestDoc(Doc):
    """`omr_manifest.json` as read: the same helpers as `manifest.Manifest`."""

    __slots__ = ()

    # Attribute access only: `manifest.Manifest` shares these two.
    def all_files(self) -> list:
        return list(self.content.files) + list(self.sidecars)

    def entry(self, path: str):
        for e in self.all_files():
            if e.path == path:
                return e
        return None

    @property
    def digest(self) -> str:
        from .canonical import content_digest_of

        return content_digest_of(self["content"])

    def to_bytes(self) -> bytes:
        """The exact bytes `Manifest.to_bytes` writes (through the model: a write path)."""
        from .manifest import Manifest

        return Manifest.model_validate(dict(self)).to_bytes()


DOC_CLASSES: dict[str, type[Doc]] = {"Lifecycle": LifecycleDoc, "Manifest": ManifestDoc}


# ---------------------------------------------------------------------- custom formats
def _format_checks() -> dict[str, Callable[[str], None]]:
    """schema `format` -> the check the pydantic model runs (raising InvalidInputError or ValueError)."""
    from .names import check_name, check_manifest_path, check_data_dir

    return {"omr-name": lambda v: check_name(v, "name"), "omr-manifest-path": check_manifest_path,
            "omr-data-dir": check_data_dir}


# ---------------------------------------------------------------------- schema compiler
Validator = Callable[[Any, str], Any]


def _fail(where: str, why: str) -> FormatError:
    return FormatError(f"{where or '<document>'}: {why}")


class _Compiler:
    def __init__(self, schema: dict):
        self.defs = schema.get("$defs", {})
        self.refs: dict[str, Validator] = {}
        self.formats = _format_checks()

    def ref(self, name: str) -> Validator:
        """Each `$defs` entry compiled once; the indirection lets a definition refer to itself."""
        if name not in self.refs:
            compiled: list[Validator] = []
            self.refs[name] = lambda v, w: compiled[0](v, w)
            compiled.append(self.compile(self.defs[name]))
        return self.refs[name]

    def compile(self, s: dict) -> Validator:
        if "$ref" in s:
            return self.ref(s["$ref"].rsplit("/", 1)[-1])
        if "anyOf" in s:
            options = [self.compile(o) for o in s["anyOf"]]

            def any_of(v, w):
                for check in options:
                    try:
                        return check(v, w)
                    except FormatError:
                        continue
                raise _fail(w, "matches none of the allowed forms")
            return any_of
        if "enum" in s or "const" in s:
            allowed = s["enum"] if "enum" in s else [s["const"]]

            def enum(v, w):
                if not any(type(v) is type(a) and v == a for a in allowed):
                    raise _fail(w, f"{str(v)[:40]!r} is not one of {allowed}")
                return v
            return enum
        kind = s.get("type")
        if kind is None and {"format", "pattern", "maxLength"} & set(s):
            kind = "string"  # `propertyNames`: keys are strings; pydantic writes only their checks
        if kind == "object":
            return self.object(s)
        if kind == "array":
            return self.array(s)
        if kind == "string":
            return self.string(s)
        if kind == "integer":
            return self.integer(s)
        if kind == "boolean":
            return _typed(bool, "a boolean")
        if kind == "null":
            return _typed(type(None), "null")
        if not s:
            return lambda v, w: v
        raise ValueError(f"fastread: unsupported schema {sorted(s)}")  # a new pydantic feature: extend here

    def string(self, s: dict) -> Validator:
        max_len = s.get("maxLength")
        min_len = s.get("minLength")
        pattern = s.get("pattern")
        rx = re.compile(pattern[:-1] + r"\Z" if pattern and pattern.endswith("$") else pattern) if pattern else None
        fmt = self.formats.get(s.get("format", ""))

        def string(v, w):
            if type(v) is not str:
                raise _fail(w, "must be a string")
            if max_len is not None and len(v) > max_len:
                raise _fail(w, f"longer than {max_len} characters")
            if min_len is not None and len(v) < min_len:
                raise _fail(w, f"shorter than {min_len} characters")
            if rx is not None and not rx.search(v):
                raise _fail(w, f"does not match {pattern}")
            if fmt is not None:
                try:
                    fmt(v)
                except ValueError as e:  # InvalidInputError is one too: its text ("unsafe ...") is kept
                    raise _fail(w, str(e)) from None
            return v
        return string

    def integer(self, s: dict) -> Validator:
        lo, lo_x = s.get("minimum"), s.get("exclusiveMinimum")
        hi, hi_x = s.get("maximum"), s.get("exclusiveMaximum")

        def integer(v, w):
            if type(v) is not int:
                raise _fail(w, "must be an integer")
            if (lo is not None and v < lo) or (lo_x is not None and v <= lo_x) or (hi is not None and v > hi) or \
                    (hi_x is not None and v >= hi_x):
                raise _fail(w, "out of range")
            return v
        return integer

    def array(self, s: dict) -> Validator:
        item = self.compile(s.get("items", {}))
        max_items = s.get("maxItems")

        def array(v, w):
            if type(v) is not list:
                raise _fail(w, "must be a list")
            if max_items is not None and len(v) > max_items:
                raise _fail(w, f"more than {max_items} items")
            return [item(x, f"{w}[{i}]") for i, x in enumerate(v)]
        return array

    def object(self, s: dict) -> Validator:
        props = {k: self.compile(p) for k, p in s.get("properties", {}).items()}
        required = set(s.get("required", ()))
        defaults = {}
        for k, p in s.get("properties", {}).items():
            if k in required:
                continue
            if "default" in p:
                defaults[k] = p["default"]
            else:  # pydantic writes no default for a `default_factory`: ours are all {} or []
                defaults[k] = {"object": {}, "array": []}.get(p.get("type"), None)
        extra = s.get("additionalProperties", True)
        extra_check = self.compile(extra) if isinstance(extra, dict) else None
        key_check = self.compile(s["propertyNames"]) if "propertyNames" in s else None
        cls = DOC_CLASSES.get(s.get("title", ""), Doc) if props else dict

        def obj(v, w):
            if type(v) is not dict:
                raise _fail(w, "must be an object")
            out = {}
            for k, x in v.items():
                at = f"{w}.{k}" if w else k
                check = props.get(k)
                if check is None:
                    if extra is False:
                        raise _fail(at, "unknown field")
                    if key_check is not None:
                        key_check(k, at)
                    out[k] = extra_check(x, at) if extra_check is not None else x
                else:
                    out[k] = check(x, at)
            for k in required:
                if k not in out:
                    raise _fail(f"{w}.{k}" if w else k, "missing")
            for k, d in defaults.items():
                if k not in out:
                    out[k] = json.loads(json.dumps(d)) if isinstance(d, (dict, list)) else d
            return cls(out)
        return obj


def _typed(t: type, what: str) -> Validator:
    def check(v, w):
        if type(v) is not t:
            raise _fail(w, f"must be {what}")
        return v
    return check


_READERS: dict[str, Validator] = {}


def reader(fmt: str) -> Validator:
    """The compiled validator of `schemas/<fmt>.schema.json` (compiled once per process)."""
    check = _READERS.get(fmt)
    if check is None:
        schema = json.loads((SCHEMA_DIR / f"{fmt}.schema.json").read_text())
        check = _READERS[fmt] = _Compiler(schema).compile(schema)
    return check


_SURROGATE_ESCAPE = re.compile(r"(\\+)u[dD]([89abAB]|[c-fC-F])[0-9a-fA-F]{2}")


def _lone_surrogate_escape(text: str) -> bool:
    """A `\\uD800`-`\\uDFFF` escape that is not half of a pair, which pydantic's parser refuses
    anywhere in the text (even under a key a later duplicate overrides)."""
    pending_high_end = -1
    for m in _SURROGATE_ESCAPE.finditer(text):
        if len(m.group(1)) % 2 == 0:
            continue  # an escaped backslash followed by "u...": plain text
        high = m.group(2) in "89abAB"
        if pending_high_end >= 0:
            if high or m.start() != pending_high_end:
                return True
            pending_high_end = -1
        elif high:
            pending_high_end = m.end()
        else:
            return True
    return pending_high_end >= 0


def load(data: bytes | str) -> Any:
    """JSON as pydantic's parser reads it: UTF-8 only, no lone surrogates (NaN parses, and then
    fails every field's type, as there)."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        obj = json.loads(text)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise FormatError(f"not valid JSON ({type(e).__name__})") from None
    if "\\u" in text and _lone_surrogate_escape(text):
        raise FormatError("not valid JSON (a lone surrogate escape)")
    return obj


def read(fmt: str, data: bytes | str) -> Doc:
    """Parse and validate one document of `fmt` (a name in `schemas.FORMATS`); FormatError if invalid."""
    return reader(fmt)(load(data), "")


def read_manifest(data: bytes, where: str | None = None) -> ManifestDoc:
    """Parse manifest bytes; damage is an integrity failure naming the file, an unsafe path bad input."""
    from .constants import MANIFEST_NAME
    from .errors import IntegrityError, InvalidInputError

    where = where or MANIFEST_NAME
    try:
        return read("omr_manifest", data)
    except FormatError as e:
        if "unsafe" in str(e):
            raise InvalidInputError(f"{where}: unsafe path in manifest: {e}") from None
        raise IntegrityError(f"{where}: manifest is damaged or invalid ({e})", obj=where) from None
