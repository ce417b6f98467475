"""The process graph of a Nextflow pipeline, read from its text.

reftrace parses the files but exposes neither `include` statements nor workflow bodies, so
this reads the entry workflow's `main` (or label-less) block itself: each statement is either
`NAME = expression` (a channel variable) or `COMPONENT ( arguments )` (a call of an included or
local process/subworkflow). A call's inputs are the producers its arguments reach: `X.out...`
(the component X), variables (followed through their assignments) and `channel.topic('t')`
(every component that emits on topic t: for a process, an output with `topic: t`; for a
subworkflow, any process it includes, recursively).

`pipeline_graph(main_nf)` returns a `Graph` with `calls` (in order) and `edges` (producer ->
consumer, with "topic:NAME" as the label of topic edges).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .nfparse import Unsupported, blank_comments, load_process, parse_includes, parse_processes, parse_workflows, \
    statements

_CALL = re.compile(r"^([A-Z][A-Z0-9_]*)\s*\((.*)\)\s*$", re.S)
_ASSIGN = re.compile(r"^([a-z_][A-Za-z0-9_]*)\s*=(?!=)\s*(.+)$", re.S)
_OUT_REF = re.compile(r"\b([A-Z][A-Z0-9_]*)\.out\b")
_TOPIC = re.compile(r"""\bchannel\.topic\s*\(\s*['"]([^'"]+)['"]\s*\)""", re.I)
_NAME = re.compile(r"\b([a-z_][A-Za-z0-9_]*)\b")


@dataclass
class Component:
    name: str
    kind: str                    # process | workflow
    path: Path
    topics: set[str] = field(default_factory=set)    # topics it (or anything it calls) emits on


@dataclass
class Graph:
    calls: list[str]
    edges: set[tuple[str, str, str]]                  # (producer, consumer, label)
    components: dict[str, Component]

    def producers(self, consumer: str) -> set[str]:
        return {p for p, c, _ in self.edges if c == consumer}

    def reaches(self, a: str, b: str) -> bool:
        seen, todo = set(), [a]
        while todo:
            n = todo.pop()
            for p, c, _ in self.edges:
                if p == n and c not in seen:
                    if c == b:
                        return True
                    seen.add(c)
                    todo.append(c)
        return False


def _component_topics(path: Path, name: str, kind: str, depth: int = 0) -> set[str]:
    if depth > 10:
        raise Unsupported("include cycle")
    if kind == "process":
        proc = load_process(path, name)
        return {d.topic for d in proc.outputs if d.topic}
    topics: set[str] = set()
    text = path.read_text()
    for inc in parse_includes(text, path):
        for local, original in inc.names.items():
            kind2, p2 = _kind_of(inc.path, original)
            topics |= _component_topics(p2, original, kind2, depth + 1)
    for proc in parse_processes(text, path):
        topics |= {d.topic for d in proc.outputs if d.topic}
    return topics


def _kind_of(path: Path, name: str) -> tuple[str, Path]:
    text = path.read_text()
    if any(p.name == name for p in parse_processes(text, path)):
        return "process", path
    if any(w.name == name for w in parse_workflows(text)):
        return "workflow", path
    raise Unsupported(f"{path} defines no {name}")


def components_of(main_nf: Path) -> dict[str, Component]:
    text = main_nf.read_text()
    comps: dict[str, Component] = {}
    for inc in parse_includes(text, main_nf):
        for local, original in inc.names.items():
            kind, p = _kind_of(inc.path, original)
            comps[local] = Component(local, kind, p, _component_topics(p, original, kind))
    for proc in parse_processes(text, main_nf):
        comps[proc.name] = Component(proc.name, "process", main_nf, {d.topic for d in proc.outputs if d.topic})
    return comps


def pipeline_graph(main_nf: str | Path, workflow: str | None = None) -> Graph:
    """The call graph of `workflow` (default: the entry workflow) in `main_nf`."""
    main_nf = Path(main_nf)
    text = main_nf.read_text()
    comps = components_of(main_nf)
    wfs = [w for w in parse_workflows(text) if w.name == workflow]
    if len(wfs) != 1:
        raise Unsupported(f"{main_nf}: expected one workflow {workflow or '(entry)'}")
    body = blank_comments(wfs[0].sections.get("main", ""))

    variables: dict[str, set[str]] = {}
    calls: list[str] = []
    edges: set[tuple[str, str, str]] = set()

    def sources(expr: str) -> set[str]:
        found = set()
        for m in _OUT_REF.finditer(expr):
            if m.group(1) not in comps:
                raise Unsupported(f"{m.group(1)}.out refers to a component that is not included or defined")
            found.add(m.group(1))
        for m in _TOPIC.finditer(expr):
            found.add(f"topic:{m.group(1)}")
        stripped = re.sub(r"""(['"]).*?\1""", "", expr)
        for m in _NAME.finditer(stripped):
            if m.group(1) in variables:
                found |= variables[m.group(1)]
        return found

    for stmt in statements(body):
        m = _CALL.match(stmt)
        if m and m.group(1) in comps:
            name = m.group(1)
            calls.append(name)
            for src in sources(m.group(2)):
                if src.startswith("topic:"):
                    edges.add((src, name, src))     # producers filled in once every call is known
                else:
                    edges.add((src, name, "channel"))
            continue
        m = _ASSIGN.match(stmt)
        if m:
            variables[m.group(1)] = sources(m.group(2))
            continue
        if _CALL.match(stmt):
            raise Unsupported(f"call of {stmt.split('(')[0].strip()} which is not included or defined")
    # A topic's producers are the called components that emit on it.
    for src, consumer, label in list(edges):
        if label.startswith("topic:"):
            topic = label[len("topic:"):]
            edges.discard((src, consumer, label))
            for name in calls:
                if topic in comps[name].topics and name != consumer:
                    edges.add((name, consumer, label))
    return Graph(calls, edges, comps)
