"""Reading Nextflow DSL2 files for the checks in this folder, without Nextflow.

Two layers:

* `reftrace_parse(path)`: reftrace (PyPI, a compiled parser of Nextflow's Groovy grammar) is the
  parser that decides whether a `.nf` file is valid Nextflow. It rejects broken files and exposes
  each process with its directives (`label`, `tag`, `conda`, ...), but not the `input:`/`output:`
  declarations, the `script:`/`stub:` strings, `include` statements or workflow bodies.
* Everything reftrace does not expose is read here from the text, after reftrace has accepted the
  file: a small scanner that knows Groovy's strings and comments well enough to match braces,
  split a process into its sections, parse input/output declarations, take the script template
  apart and render it (GString escapes and `${...}`/`$name.path` interpolations), and a small
  evaluator for the Groovy expressions modules actually use (`task.ext.args ?: ''`,
  `refs ? refs.join(' ') : '--all'`). Anything outside that subset raises `Unsupported`, so a
  module that drifts beyond what the checks understand fails loudly instead of passing unchecked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

SECTION_LABELS = ("input", "output", "when", "script", "shell", "exec", "stub")
STANDARD_LABELS = ("process_single", "process_low", "process_medium", "process_high", "process_long",
                   "process_high_memory")
WORKFLOW_SECTIONS = ("take", "main", "emit", "publish")


class Unsupported(ValueError):
    """Groovy the checks here do not understand (or that is not valid Groovy)."""


# --------------------------------------------------------------------------- reftrace


@dataclass
class ParseResult:
    path: Path
    error: str | None
    processes: list[Any]          # reftrace Process objects (name, line, labels, tags, condas, ...)

    @property
    def ok(self) -> bool:
        return self.error is None


def reftrace_parse(path: str | Path) -> ParseResult:
    """Parse one `.nf` file with reftrace; `error` holds its message when the file is rejected."""
    import reftrace

    result = reftrace.Module.from_file(str(path))
    if result.error is not None or result.module is None:
        err = result.error
        message = getattr(err, "error", None) or str(err) or "reftrace could not parse the file"
        return ParseResult(Path(path), message.strip(), [])
    return ParseResult(Path(path), None, list(result.module.processes))


# --------------------------------------------------------------------------- lexical scanning


def _skip_string(text: str, i: int) -> int:
    """Index just past the Groovy string literal starting at text[i]."""
    for quote in ('"""', "'''"):
        if text.startswith(quote, i):
            j = i + 3
            while True:
                k = text.find(quote, j)
                if k < 0:
                    raise Unsupported(f"unterminated {quote} string at offset {i}")
                backslashes = 0
                m = k - 1
                while m >= i + 3 and text[m] == "\\":
                    backslashes += 1
                    m -= 1
                if backslashes % 2 == 0:
                    return k + 3
                j = k + 1
    quote = text[i]
    j = i + 1
    depth = 0  # ${ ... } nesting inside a double-quoted GString
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if quote == '"' and c == "$" and text.startswith("${", j):
            depth += 1
            j += 2
            continue
        if depth and c == "}":
            depth -= 1
        elif depth and c in "\"'":
            j = _skip_string(text, j)
            continue
        elif c == quote and not depth:
            return j + 1
        elif c == "\n":
            raise Unsupported(f"newline in a single-line string at offset {i}")
        j += 1
    raise Unsupported(f"unterminated string at offset {i}")


def blank_comments(text: str) -> str:
    """The text with comments replaced by spaces (offsets and newlines are kept)."""
    out = list(text)
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            i = _skip_string(text, i)
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise Unsupported("unterminated /* comment")
            for k in range(i, j + 2):
                if out[k] != "\n":
                    out[k] = " "
            i = j + 2
        else:
            i += 1
    return "".join(out)


def match_brace(text: str, open_at: int) -> int:
    """Index of the brace closing the one at text[open_at] (text without comments)."""
    pairs = {"{": "}", "(": ")", "[": "]"}
    stack = [pairs[text[open_at]]]
    i = open_at + 1
    while i < len(text):
        c = text[i]
        if c in "\"'":
            i = _skip_string(text, i)
            continue
        if c in pairs:
            stack.append(pairs[c])
        elif c in ")]}":
            if c != stack[-1]:
                raise Unsupported(f"unbalanced {c!r} at offset {i}")
            stack.pop()
            if not stack:
                return i
        i += 1
    raise Unsupported(f"no closing brace for the one at offset {open_at}")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside brackets and strings."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c in "\"'":
            i = _skip_string(text, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            start = i + len(sep)
            i += len(sep)
            continue
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def statements(text: str) -> list[str]:
    """Logical statements of a block: lines joined while brackets are open, a line ends with an
    operator, or the next line continues a method chain (`.map { ... }`)."""
    out: list[str] = []
    buf = ""
    for line in text.splitlines():
        if not line.strip() and not buf:
            continue
        if not buf and line.strip().startswith(".") and out:
            buf = out.pop()                  # a method chain continued on the next line
        buf = f"{buf}\n{line}" if buf else line
        if _open_brackets(buf) > 0 or buf.rstrip().endswith((",", "?", ":", "||", "&&", "+", "\\")):
            continue
        if buf.strip():
            out.append(buf.strip())
        buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _open_brackets(text: str) -> int:
    depth, i = 0, 0
    while i < len(text):
        c = text[i]
        if c in "\"'":
            try:
                i = _skip_string(text, i)
            except Unsupported:
                return 1  # a multi-line string still open
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        i += 1
    return depth


# --------------------------------------------------------------------------- processes


@dataclass
class Element:
    """One element of an input/output declaration: `val(meta)`, `path("*.json", stageAs: ...)`."""
    kind: str                    # val | path | file | env | eval | stdout | tuple-less qualifiers
    arg: str                     # raw first argument (identifier, string literal or expression)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def is_literal(self) -> bool:
        return self.arg[:1] in "\"'"

    @property
    def literal(self) -> str:
        """The raw body of a string-literal argument (still to be rendered for `"..."`)."""
        if not self.is_literal:
            raise Unsupported(f"{self.kind}({self.arg}) is not a string literal")
        return self.arg[1:-1]


@dataclass
class Declaration:
    text: str
    elements: list[Element]
    options: dict[str, str]      # emit, topic, optional, ...

    @property
    def emit(self) -> str | None:
        return self.options.get("emit")

    @property
    def topic(self) -> str | None:
        return self.options.get("topic")


@dataclass
class Process:
    name: str
    path: Path | None
    start: int                   # offset of `process` in the file
    body: str                    # text between the braces (comments blanked)
    raw_body: str                # the same span with comments
    directives: list[str]        # statements before the first section label
    sections: dict[str, str]     # label -> raw text (comments kept; strings need them)

    def declarations(self, section: str) -> list[Declaration]:
        return [parse_declaration(s) for s in statements(blank_comments(self.sections.get(section, "")))]

    @property
    def inputs(self) -> list[Declaration]:
        return self.declarations("input")

    @property
    def outputs(self) -> list[Declaration]:
        return self.declarations("output")


_ELEMENT = re.compile(r"^(?P<kind>[a-z]+)\s*(?P<rest>.*)$", re.S)


def parse_element(text: str) -> Element:
    m = _ELEMENT.match(text.strip())
    if not m:
        raise Unsupported(f"cannot read declaration element {text!r}")
    kind, rest = m.group("kind"), m.group("rest").strip()
    if kind == "stdout" and not rest:
        return Element("stdout", "")
    if rest.startswith("("):
        close = match_brace(rest, 0)
        if rest[close + 1:].strip():
            raise Unsupported(f"trailing text after {kind}(...): {text!r}")
        rest = rest[1:close]
    parts = split_top_level(rest)
    if not parts:
        raise Unsupported(f"{kind} without an argument: {text!r}")
    options = {}
    for p in parts[1:]:
        k, _, v = p.partition(":")
        if not _ or not re.fullmatch(r"\w+", k.strip()):
            raise Unsupported(f"cannot read option {p!r} in {text!r}")
        options[k.strip()] = v.strip()
    return Element(kind, parts[0], options)


def parse_declaration(text: str) -> Declaration:
    """`tuple val(meta), path("x"), emit: json` -> elements and options."""
    body = " ".join(text.split()) if '"""' not in text else text
    tuple_ = body.startswith("tuple ")
    parts = split_top_level(body[len("tuple "):] if tuple_ else body)
    elements: list[Element] = []
    options: dict[str, str] = {}
    for p in parts:
        m = re.fullmatch(r"(\w+)\s*:\s*(.+)", p, re.S)
        if m and not re.match(r"^\w+\s*\(", p):
            options[m.group(1)] = m.group(2).strip()
            continue
        if options:
            raise Unsupported(f"element after options in {text!r}")
        elements.append(parse_element(p))
    if not elements:
        raise Unsupported(f"declaration without elements: {text!r}")
    return Declaration(text, elements, options)


_BLOCK_START = re.compile(r"(?m)^[ \t]*(process|workflow)\b[ \t]*([A-Za-z_][\w]*)?[ \t]*\{")
_LABEL = re.compile(r"(?m)^[ \t]*(" + "|".join(SECTION_LABELS) + r")\s*:(?!:)")


def _label_positions(body: str) -> list[tuple[str, int, int]]:
    """(label, start, end-of-label) for section labels at the top level of a process body."""
    found = []
    depth, i = 0, 0
    tops = set()
    while i < len(body):
        c = body[i]
        if c in "\"'":
            i = _skip_string(body, i)
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "\n" and depth == 0:
            tops.add(i + 1)
        i += 1
    for m in _LABEL.finditer(body):
        line_start = body.rfind("\n", 0, m.start()) + 1
        if line_start in tops or line_start == 0:
            found.append((m.group(1), m.start(), m.end()))
    return found


def find_blocks(text: str, kind: str) -> list[tuple[str | None, int, int, int]]:
    """(name, start, open brace, close brace) of every top-level `process`/`workflow` block."""
    clean = blank_comments(text)
    out = []
    pos = 0
    while True:
        m = _BLOCK_START.search(clean, pos)
        if not m:
            break
        open_at = m.end() - 1
        close = match_brace(clean, open_at)
        if m.group(1) == kind:
            out.append((m.group(2), m.start(), open_at, close))
        pos = close + 1
    return out


def parse_processes(text: str, path: Path | None = None) -> list[Process]:
    clean = blank_comments(text)
    procs = []
    for name, start, open_at, close in find_blocks(text, "process"):
        if not name:
            raise Unsupported("process without a name")
        body = clean[open_at + 1:close]
        raw = text[open_at + 1:close]
        labels = _label_positions(body)
        first = labels[0][1] if labels else len(body)
        sections: dict[str, str] = {}
        for idx, (label, _s, e) in enumerate(labels):
            end = labels[idx + 1][1] if idx + 1 < len(labels) else len(body)
            if label in sections:
                raise Unsupported(f"process {name}: section {label}: appears twice")
            sections[label] = raw[e:end]
        procs.append(Process(name, path, start, body, raw, statements(body[:first]), sections))
    return procs


def load_process(path: str | Path, name: str | None = None) -> Process:
    procs = parse_processes(Path(path).read_text(), Path(path))
    if name is None:
        if len(procs) != 1:
            raise Unsupported(f"{path}: expected one process, found {len(procs)}")
        return procs[0]
    for p in procs:
        if p.name == name:
            return p
    raise Unsupported(f"{path}: no process {name}")


# --------------------------------------------------------------------------- script templates


@dataclass
class Template:
    prologue: str                # Groovy statements before the string
    raw: str                     # the string body as written (escapes and interpolations intact)
    interpolating: bool          # \"\"\" (GString) or ''' (plain)


def script_template(section: str) -> Template:
    """Split a `script:`/`stub:` section into its Groovy prologue and its final command string."""
    clean = blank_comments(section)
    i, last = 0, None
    while i < len(clean):
        c = clean[i]
        if c in "\"'":
            end = _skip_string(clean, i)
            if clean.startswith(('"""', "'''"), i):
                last = (i, end)
            i = end
            continue
        i += 1
    if last is None:
        raise Unsupported("no triple-quoted command string in the block")
    start, end = last
    if clean[end:].strip():
        raise Unsupported("text after the command string: the string must end the block")
    return Template(clean[:start], section[start + 3:end - 3], section.startswith('"""', start))


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "$": "$", '"': '"', "'": "'", "r": "\r", "b": "\b", "f": "\f"}


def gstring_parts(raw: str, interpolating: bool = True) -> list[tuple[str, str]]:
    """[("text", s) | ("expr", e)] for a Groovy string body, escapes already applied to text."""
    parts: list[tuple[str, str]] = []
    buf: list[str] = []
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == "\\":
            if i + 1 >= len(raw):
                raise Unsupported("string ends with a lone backslash")
            nxt = raw[i + 1]
            if nxt == "\n":          # line continuation inside a Groovy string
                i += 2
                continue
            if nxt not in _ESCAPES:
                raise Unsupported(f"unknown escape \\{nxt} in a Groovy string")
            buf.append(_ESCAPES[nxt])
            i += 2
            continue
        if c == "$" and interpolating:
            if raw.startswith("${", i):
                close = match_brace(raw, i + 1)
                parts.append(("text", "".join(buf)))
                buf = []
                parts.append(("expr", raw[i + 2:close].strip()))
                i = close + 1
                continue
            m = _IDENT.match(raw, i + 1)
            if not m:
                # Groovy refuses a bare `$` not followed by a name or `{`: shell variables and
                # command substitutions must be written `\$`.
                raise Unsupported(f"unescaped '$' at {raw[i:i + 12]!r}: write \\$ for shell")
            expr = m.group(0)
            # `$x.y.z` interpolates the property path, but a trailing `.` + non-name is text
            parts.append(("text", "".join(buf)))
            buf = []
            parts.append(("expr", expr))
            i = m.end()
            continue
        buf.append(c)
        i += 1
    parts.append(("text", "".join(buf)))
    return [p for p in parts if p != ("text", "")]


def render(raw: str, resolve: Callable[[str], str], interpolating: bool = True) -> str:
    return "".join(v if k == "text" else resolve(v) for k, v in gstring_parts(raw, interpolating))


# --------------------------------------------------------------------------- expressions


class Staged:
    """A staged input path as a script sees it: its name in the work dir (lists: space-joined)."""

    def __init__(self, names: list[str] | str):
        self.names = [names] if isinstance(names, str) else list(names)

    def __str__(self) -> str:
        return " ".join(self.names)

    def __bool__(self) -> bool:
        return bool(self.names)

    @property
    def name(self) -> str:
        return Path(self.names[0]).name if len(self.names) == 1 else str(self)


def groovy_str(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, list):
        return "[" + ", ".join(groovy_str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "[" + ", ".join(f"{k}:{groovy_str(v)}" for k, v in value.items()) + "]"
    return str(value)


def groovy_truth(value: Any) -> bool:
    if isinstance(value, Staged):
        return bool(value)
    return bool(value)


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<num>\d+)
  | (?P<op>\?:|==|!=|&&|\|\||[?:.!()\[\],*+])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
""", re.X)


class Evaluator:
    """Evaluates the Groovy expression subset used by our modules against a binding.

    Supported: names and property paths (missing map keys are null, as in Groovy), string
    literals (double-quoted ones interpolate), integers, true/false/null, `!`, `==`, `!=`, `&&`,
    `||`, `?:`, `c ? a : b`, list literals, `x[i]`, `+` on strings/numbers/lists, `*` repeat, and
    the methods join/size/toString/trim/startsWith/contains/collect-free helpers below.
    """

    def __init__(self, binding: dict[str, Any]):
        self.binding = binding

    # statements --------------------------------------------------------
    def run_prologue(self, prologue: str) -> dict[str, Any]:
        """Executes `[def] name = expr` statements; returns the names declared with `def`."""
        local: dict[str, Any] = {}
        for stmt in statements(prologue):
            m = re.fullmatch(r"(def\s+)?([A-Za-z_]\w*)\s*=(?!=)\s*(.+)", stmt, re.S)
            if not m:
                raise Unsupported(f"statement the harness cannot run: {stmt!r}")
            value = self.eval(m.group(3))
            self.binding[m.group(2)] = value
            if m.group(1):
                local[m.group(2)] = value
        return local

    # expressions -------------------------------------------------------
    def eval(self, text: str) -> Any:
        self.toks = [(k, v) for k, v in self._tokenize(text) if k != "ws"]
        self.pos = 0
        value = self._ternary()
        if self.pos != len(self.toks):
            raise Unsupported(f"unexpected {self.toks[self.pos][1]!r} in {text!r}")
        return value

    def _tokenize(self, text: str):
        i = 0
        while i < len(text):
            m = _TOKEN.match(text, i)
            if not m:
                raise Unsupported(f"cannot read {text[i:]!r}")
            yield m.lastgroup, m.group(m.lastgroup)
            i = m.end()

    def _peek(self, *values: str) -> bool:
        return self.pos < len(self.toks) and self.toks[self.pos][1] in values and self.toks[self.pos][0] == "op"

    def _take(self, value: str) -> None:
        if not self._peek(value):
            got = self.toks[self.pos][1] if self.pos < len(self.toks) else "end"
            raise Unsupported(f"expected {value!r}, got {got!r}")
        self.pos += 1

    def _ternary(self) -> Any:
        cond = self._elvis()
        if self._peek("?"):
            self.pos += 1
            a = self._ternary()
            self._take(":")
            b = self._ternary()
            return a if groovy_truth(cond) else b
        return cond

    def _elvis(self) -> Any:
        left = self._or()
        if self._peek("?:"):
            self.pos += 1
            right = self._elvis()
            return left if groovy_truth(left) else right
        return left

    def _or(self) -> Any:
        left = self._and()
        while self._peek("||"):
            self.pos += 1
            right = self._and()
            left = groovy_truth(left) or groovy_truth(right)
        return left

    def _and(self) -> Any:
        left = self._cmp()
        while self._peek("&&"):
            self.pos += 1
            right = self._cmp()
            left = groovy_truth(left) and groovy_truth(right)
        return left

    def _cmp(self) -> Any:
        left = self._sum()
        if self._peek("==", "!="):
            op = self.toks[self.pos][1]
            self.pos += 1
            right = self._sum()
            eq = (str(left) == str(right)) if isinstance(left, Staged) or isinstance(right, Staged) else left == right
            return eq if op == "==" else not eq
        return left

    def _sum(self) -> Any:
        left = self._unary()
        while self._peek("+", "*"):
            op = self.toks[self.pos][1]
            self.pos += 1
            right = self._unary()
            if op == "*":
                left = left * right
            elif isinstance(left, str):
                left = left + groovy_str(right)
            else:
                left = left + right
        return left

    def _unary(self) -> Any:
        if self._peek("!"):
            self.pos += 1
            return not groovy_truth(self._unary())
        return self._postfix()

    def _postfix(self) -> Any:
        value = self._primary()
        while True:
            if self._peek("."):
                self.pos += 1
                kind, name = self.toks[self.pos]
                if kind != "name":
                    raise Unsupported(f"expected a name after '.', got {name!r}")
                self.pos += 1
                if self._peek("("):
                    self.pos += 1
                    args = []
                    while not self._peek(")"):
                        args.append(self._ternary())
                        if self._peek(","):
                            self.pos += 1
                    self._take(")")
                    value = self._call(value, name, args)
                else:
                    value = self._prop(value, name)
            elif self._peek("["):
                self.pos += 1
                key = self._ternary()
                self._take("]")
                value = value[key] if not isinstance(value, dict) else value.get(key)
            else:
                return value

    def _primary(self) -> Any:
        if self.pos >= len(self.toks):
            raise Unsupported("expression ends early")
        kind, v = self.toks[self.pos]
        self.pos += 1
        if kind == "str":
            body = v[1:-1]
            if v[0] == "'":
                return "".join(p[1] for p in gstring_parts(body, interpolating=False))
            return render(body, lambda e: groovy_str(Evaluator(self.binding).eval(e)))
        if kind == "num":
            return int(v)
        if kind == "name":
            if v == "null":
                return None
            if v in ("true", "false"):
                return v == "true"
            if v not in self.binding:
                raise Unsupported(f"unbound name {v!r}")
            return self.binding[v]
        if v == "(":
            value = self._ternary()
            self._take(")")
            return value
        if v == "[":
            items = []
            while not self._peek("]"):
                items.append(self._ternary())
                if self._peek(","):
                    self.pos += 1
            self._take("]")
            return items
        raise Unsupported(f"unexpected {v!r}")

    @staticmethod
    def _prop(value: Any, name: str) -> Any:
        if isinstance(value, dict):
            return value.get(name)
        if isinstance(value, Staged):
            if name in ("name", "baseName", "simpleName"):
                n = value.name
                return n if name == "name" else n.split(".")[0] if name == "simpleName" else n.rsplit(".", 1)[0]
            raise Unsupported(f"property {name} of a path")
        if value is None:
            raise Unsupported(f"property {name} of null (NullPointerException in Groovy)")
        raise Unsupported(f"property {name} of {type(value).__name__}")

    @staticmethod
    def _call(value: Any, name: str, args: list[Any]) -> Any:
        if name == "join" and isinstance(value, (list, Staged)):
            items = value.names if isinstance(value, Staged) else value
            return (args[0] if args else "").join(groovy_str(v) for v in items)
        if name == "size" and not args:
            return len(value.names if isinstance(value, Staged) else value)
        if name == "toString" and not args:
            return groovy_str(value)
        if name == "trim" and isinstance(value, str):
            return value.strip()
        if name == "startsWith" and isinstance(value, str):
            return value.startswith(args[0])
        if name == "contains":
            return args[0] in value
        raise Unsupported(f"method {name}() is not supported by the checks")


# --------------------------------------------------------------------------- files, includes, workflows


@dataclass
class Include:
    names: dict[str, str]        # local name -> original name
    source: str                  # as written
    path: Path | None            # resolved .nf file (None for plugins)


_INCLUDE = re.compile(r"(?m)^[ \t]*include\s*\{([^}]*)\}\s*from\s*(['\"])([^'\"]+)\2")


def parse_includes(text: str, path: Path | None = None) -> list[Include]:
    out = []
    for m in _INCLUDE.finditer(blank_comments(text)):
        names = {}
        for item in re.split(r"[;\n]", m.group(1)):
            item = item.strip()
            if not item:
                continue
            im = re.fullmatch(r"([A-Za-z_]\w*)(?:\s+as\s+([A-Za-z_]\w*))?", item)
            if not im:
                raise Unsupported(f"cannot read include item {item!r}")
            names[im.group(2) or im.group(1)] = im.group(1)
        src = m.group(3)
        resolved = None
        if path is not None and not src.startswith("plugin/"):
            cand = (path.parent / src)
            resolved = cand if cand.suffix == ".nf" else cand.with_name(cand.name + ".nf")
        out.append(Include(names, src, resolved))
    return out


@dataclass
class Workflow:
    name: str | None             # None: the entry workflow
    sections: dict[str, str]     # take/main/emit (a body without labels is all `main`)


_WF_LABEL = re.compile(r"(?m)^[ \t]*(" + "|".join(WORKFLOW_SECTIONS) + r")\s*:(?!:)")


def parse_workflows(text: str) -> list[Workflow]:
    clean = blank_comments(text)
    out = []
    for name, _start, open_at, close in find_blocks(text, "workflow"):
        body = clean[open_at + 1:close]
        labels = [(m.group(1), m.start(), m.end()) for m in _WF_LABEL.finditer(body)]
        sections = {}
        if not labels:
            sections["main"] = body
        for idx, (label, _s, e) in enumerate(labels):
            end = labels[idx + 1][1] if idx + 1 < len(labels) else len(body)
            sections[label] = body[e:end]
        out.append(Workflow(name, sections))
    return out
