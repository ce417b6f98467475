"""Untrusted structured input, parsed with bounds: the one owner of "how much, how deep".

Every JSON or YAML document that omrw parses from a user or from a shared registry
(`--metadata`, `--params`, `--param k=v`, a shipped `model_meta.json`, ...) goes through
this module, so that hostile input gets a one-line `InvalidInputError` (exit 2) naming the
object and the problem, never a RecursionError, a memory blow-up or a silent change:

* size: at most `MAX_INPUT_BYTES` (1 MiB) per metadata/params document by default;
  `MAX_META_BYTES` (4 MiB) for the `model_meta.json` omrw writes (metadata + params +
  provenance together);
* depth: at most `MAX_DEPTH` (64) nested arrays/objects. JSON is pre-scanned for bracket
  depth before `json` sees it (CPython's parser recurses and would hit the interpreter's
  recursion limit first); YAML depth is counted while composing, before construction;
* values: NaN and +-Infinity are refused (JSON has no such values; stored, they would
  silently become `null`); duplicate object keys are refused (which one wins differs
  between parsers); YAML anchors and aliases are refused outright, so a few hundred bytes
  cannot expand into megabytes ("billion laughs"), and YAML timestamps stay the text
  written (JSON has no date type).

Values built in code (e.g. from `--param`) are checked with `check_json_value`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import InvalidInputError

MAX_INPUT_BYTES = 1 << 20
"""Default size bound of one metadata or params document (1 MiB)."""
MAX_META_BYTES = 4 << 20
"""Size bound of the `model_meta.json` omrw writes or reads (4 MiB)."""
MAX_DEPTH = 64
"""Deepest nesting of arrays/objects accepted (a document `{"a": [1]}` has depth 2)."""

# Tokens that matter for depth: an escape (only inside strings), a quote, a bracket.
_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.S)
_NON_FINITE = {"nan": "NaN", "+nan": "NaN", "-nan": "NaN", "inf": "Infinity", "+inf": "Infinity",
               "-inf": "-Infinity", "infinity": "Infinity", "+infinity": "Infinity", "-infinity": "-Infinity"}


def _too_deep(what: str, max_depth: int) -> InvalidInputError:
    return InvalidInputError(f"{what}: nested deeper than {max_depth} levels", obj=what)


def _check_size(n: int, what: str, max_bytes: int | None) -> None:
    if max_bytes is not None and n > max_bytes:
        raise InvalidInputError(f"{what}: {n} bytes, larger than the {max_bytes}-byte limit", obj=what)


def _as_text(data: bytes | str, what: str) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{what}: not UTF-8 text (byte {e.start})", obj=what) from None


def json_depth(text: str) -> int:
    """The deepest bracket nesting of JSON text, outside strings, in one linear pass."""
    depth = peak = 0
    in_string = False
    for m in _JSON_TOKENS.finditer(text):
        tok = m.group()
        if tok == '"':
            in_string = not in_string
        elif in_string or tok[0] == "\\":
            continue
        elif tok in "[{":
            depth += 1
            if depth > peak:
                peak = depth
        else:
            depth -= 1
    return peak


def _refuse_constant(what: str):
    def hook(name: str):
        raise InvalidInputError(f"{what}: {name} is not valid JSON", obj=what)

    return hook


def _finite_float(what: str):
    def hook(text: str) -> float:
        value = float(text)
        if math.isinf(value):
            raise InvalidInputError(f"{what}: {text[:40]} is out of range (Infinity is not valid JSON)", obj=what)
        return value

    return hook


def _pairs_hook(what: str):
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(pairs)
        if len(out) != len(pairs):
            seen: set[str] = set()
            for k, _ in pairs:
                if k in seen:
                    raise InvalidInputError(f"{what}: duplicate key {k!r}", obj=what)
                seen.add(k)
        return out

    return hook


def _parse_json(text: str, what: str, max_depth: int) -> Any:
    """json.loads with the bounds; a syntax error is left as json's ValueError."""
    if json_depth(text) > max_depth:
        raise _too_deep(what, max_depth)
    try:
        return json.loads(text, parse_constant=_refuse_constant(what), parse_float=_finite_float(what),
                          object_pairs_hook=_pairs_hook(what))
    except RecursionError:  # unreachable after the depth scan; kept so nothing deep ever exits 5
        raise _too_deep(what, max_depth) from None


def load_json_bounded(data: bytes | str, what: str, max_bytes: int | None = MAX_INPUT_BYTES,
                      max_depth: int = MAX_DEPTH) -> Any:
    """Parse untrusted JSON. Raises InvalidInputError naming `what` and the problem:
    too large, nested deeper than `max_depth`, not UTF-8, not JSON, NaN/Infinity, a duplicate key.
    """
    _check_size(len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data), what, max_bytes)
    text = _as_text(data, what)
    try:
        return _parse_json(text, what, max_depth)
    except InvalidInputError:
        raise
    except ValueError as e:
        raise InvalidInputError(f"{what}: not valid JSON ({e})", obj=what) from None


def json_or_text(text: str, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """A `KEY=VALUE` value: the JSON value when `text` is JSON (bounded), else `text` itself.

    `nan`, `inf` and their spellings are refused rather than kept as text or stored as null:
    someone who wrote `lr=nan` meant a float JSON cannot hold.
    """
    word = text.strip().lower()
    if word in _NON_FINITE:
        raise InvalidInputError(f"{what}: {_NON_FINITE[word]} is not valid JSON", obj=what)
    try:
        return _parse_json(text, what, max_depth)
    except InvalidInputError:
        raise
    except ValueError:
        return text


def check_json_value(value: Any, what: str, max_depth: int = MAX_DEPTH, max_bytes: int | None = None) -> Any:
    """Return `value` if it is plain JSON data within bounds, else raise InvalidInputError.

    Plain JSON data: dicts with string keys, lists/tuples, strings, finite numbers, booleans,
    None. Checked iteratively, so a value nested 100,000 deep is refused, not a RecursionError.
    """
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        v, depth, at = stack.pop()
        where = f"{what}{' at ' + at if at else ''}"
        if isinstance(v, dict):
            if depth > max_depth:
                raise _too_deep(what, max_depth)
            for k, item in v.items():
                if not isinstance(k, str):
                    raise InvalidInputError(f"{where}: key {k!r} is not a string (quote it)", obj=what)
                stack.append((item, depth + 1, f"{at}.{k}" if at else k))
        elif isinstance(v, (list, tuple)):
            if depth > max_depth:
                raise _too_deep(what, max_depth)
            stack.extend((item, depth + 1, f"{at}[{i}]") for i, item in enumerate(v))
        elif isinstance(v, float):
            if math.isnan(v):
                raise InvalidInputError(f"{where}: NaN is not valid JSON", obj=what)
            if math.isinf(v):
                raise InvalidInputError(f"{where}: {'-' if v < 0 else ''}Infinity is not valid JSON", obj=what)
        elif v is None or isinstance(v, (str, int, bool)):
            pass
        else:
            raise InvalidInputError(f"{where}: a {type(v).__name__} value, which JSON cannot hold", obj=what)
    if max_bytes is not None:
        _check_size(len(json.dumps(value, ensure_ascii=False).encode()), what, max_bytes)
    return value


def load_yaml_bounded(data: bytes | str, what: str, max_bytes: int | None = MAX_INPUT_BYTES,
                      max_depth: int = MAX_DEPTH) -> Any:
    """Parse untrusted YAML (or JSON, which YAML reads) with `yaml.safe_load` semantics, bounded.

    Refused (InvalidInputError naming `what`): too large, not UTF-8, invalid YAML, any anchor
    or alias, nesting deeper than `max_depth`, `.nan`/`.inf`, duplicate keys, and values
    JSON cannot hold (binary, sets, non-string keys).
    """
    import yaml

    _check_size(len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data), what, max_bytes)
    text = _as_text(data, what)
    loader = _yaml_loader_class()(text)
    loader.omr_what = what
    loader.omr_max_depth = max_depth
    try:
        value = loader.get_single_data()
    except InvalidInputError:
        raise
    except yaml.YAMLError as e:
        problem, mark = getattr(e, "problem", None), getattr(e, "problem_mark", None)
        detail = (f"{problem} at line {mark.line + 1}" if problem and mark
                  else (str(e).splitlines() or [type(e).__name__])[0])
        raise InvalidInputError(f"{what}: not valid YAML/JSON ({detail})", obj=what) from None
    except RecursionError:  # unreachable: depth is bounded while composing
        raise _too_deep(what, max_depth) from None
    finally:
        loader.dispose()
    return check_json_value(value, what, max_depth=max_depth)


_YAML_LOADER = None


def _yaml_loader_class():
    """A SafeLoader subclass that refuses anchors/aliases, bounds depth, refuses NaN/Inf."""
    global _YAML_LOADER
    if _YAML_LOADER is not None:
        return _YAML_LOADER
    import yaml

    class BoundedLoader(yaml.SafeLoader):
        omr_what = "YAML"
        omr_max_depth = MAX_DEPTH
        omr_depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark else "?"
            if isinstance(event, yaml.AliasEvent):
                raise InvalidInputError(f"{self.omr_what}: YAML alias *{event.anchor} at line {line}: "
                                        f"anchors and aliases are not accepted", obj=self.omr_what)
            if getattr(event, "anchor", None) is not None:
                raise InvalidInputError(f"{self.omr_what}: YAML anchor &{event.anchor} at line {line}: "
                                        f"anchors and aliases are not accepted", obj=self.omr_what)
            nested = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
            if nested:
                self.omr_depth += 1
                if self.omr_depth > self.omr_max_depth:
                    raise _too_deep(self.omr_what, self.omr_max_depth)
            try:
                return super().compose_node(parent, index)
            finally:
                if nested:
                    self.omr_depth -= 1

        def construct_yaml_float(self, node):
            value = super().construct_yaml_float(node)
            if math.isnan(value) or math.isinf(value):
                name = "NaN" if math.isnan(value) else ("-Infinity" if value < 0 else "Infinity")
                raise InvalidInputError(f"{self.omr_what}: {name} is not valid JSON ({node.value} at line "
                                        f"{node.start_mark.line + 1})", obj=self.omr_what)
            return value

        def construct_yaml_timestamp(self, node):
            return self.construct_scalar(node)

        def construct_mapping(self, node, deep=False):
            seen: set = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = (key_node.tag, key_node.value)
                    if key in seen:
                        raise InvalidInputError(f"{self.omr_what}: duplicate key {key_node.value!r} at line "
                                                f"{key_node.start_mark.line + 1}", obj=self.omr_what)
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_yaml_float)
    BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", BoundedLoader.construct_yaml_timestamp)
    _YAML_LOADER = BoundedLoader
    return BoundedLoader


def read_bounded(path: str, what: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of a file given on the command line, refusing more than `max_bytes`.

    Reads at most `max_bytes + 1` bytes, so a huge file or an endless pipe costs nothing.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InvalidInputError(f"{what} file {path!r} does not exist", obj=path) from None
    except IsADirectoryError:
        raise InvalidInputError(f"{what} file {path!r} is a folder", obj=path) from None
    except OSError as e:
        raise InvalidInputError(f"{what} file {path!r} cannot be read: {e.strerror}", obj=path) from None
    if len(data) > max_bytes:
        raise InvalidInputError(f"{what} file {path!r}: larger than the {max_bytes}-byte limit", obj=path)
    return data
