"""An nf-core style lint of our own for `nextflow_modules/` (modules, subworkflows) and pipelines.

`nf-core modules lint` needs Nextflow and the nf-core layout (`modules/<org>/`); this checker is
pure Python over the files' text (see nfparse; reftrace, the parser, first has to accept each
file) and checks the conventions of DESIGN 9 that our modules promise:

module main.nf   one process `OMR_<DIR>`; `tag "${meta.id}"`; exactly one standard label;
                 `conda "${moduleDir}/environment.yml"`; first input `tuple val(meta), ...`;
                 every output has `emit:`; versions on `topic: versions` as
                 `tuple val("${task.process}"), val('omrw'), eval('omrw --version ...')`; a
                 provenance output on `topic: omr_provenance` (except the topic's sink); the
                 standard `when:` block; `task.ext.args` and `task.ext.prefix` used, `$args`
                 passed to omrw; a `stub:` block; every `omrw` call with `--json`; no pipe in a
                 script unless it sets pipefail (Nextflow's default shell is `bash -ue`);
                 every `omrw` command line (script, stub and eval outputs) accepted by the real
                 CLI parser, `omr_workflows.cli.main.build_parser()`.
module files     meta.yml (name, keywords, tools, inputs and outputs matching main.nf, topics),
                 environment.yml (pip-installs omr-workflows pinned to this version),
                 tests/main.nf.test (the process, a stub test).
subworkflows     includes first, resolvable, naming what the target defines; take/main/emit with
                 `ch_`/`val_` names and a comment on every take/emit line.

`lint_path(path)` returns a list of `Finding(check, path, message)`; empty means clean.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .nfparse import (STANDARD_LABELS, Process, Unsupported, parse_includes, parse_processes, parse_workflows,
                      reftrace_parse, render, script_template, statements)

REPO = Path(__file__).resolve().parents[2]
MODULES_ROOT = REPO / "nextflow_modules"
PLACEHOLDER = "omrplaceholder"
WHEN = "task.ext.when == null || task.ext.when"
# The sink of the topic consumes it; producing into it too would wait on itself forever.
PROVENANCE_SINKS = {"OMR_PROVENANCECOLLECT"}
# Their omrw commands write no run record (planning touches no version's bytes; import and
# mirror record each version in the target's audit log as an `import` event instead), and `omrw
# provenance collect` refuses any other JSON in its input folder, so they have nothing to put on
# the topic. register, promote and lock write records ($OMR_RUN_DIR) since issue 11.
NO_RUN_RECORD = {"OMR_VERIFYPLAN"}


@dataclass(frozen=True)
class Finding:
    check: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: [{self.check}] {self.message}"


# --------------------------------------------------------------------------- omrw command lines


class _ArgError(Exception):
    pass


class _AnyChoice(list):
    """Choices that also admit the placeholder standing for a Nextflow interpolation."""

    def __contains__(self, item) -> bool:
        return (isinstance(item, str) and PLACEHOLDER in item) or super().__contains__(item)


def _lenient_type(orig):
    def convert(value):
        if isinstance(value, str) and PLACEHOLDER in value:
            return value
        return orig(value)
    convert.__name__ = getattr(orig, "__name__", "type")
    return convert


def _raise(message):
    raise _ArgError(message)


def _walk_parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                yield from _walk_parsers(sub)


_PARSER = None


def cli_parser() -> argparse.ArgumentParser:
    """The real `omrw` parser, made to raise instead of exiting and to accept placeholders
    where a value comes from a Nextflow interpolation (types and choices still apply to
    literal values)."""
    global _PARSER
    if _PARSER is None:
        from omr_workflows.cli.main import build_parser

        parser = build_parser()
        for p in _walk_parsers(parser):
            p.error = _raise  # type: ignore[method-assign]
            for action in p._actions:
                if action.type is not None:
                    action.type = _lenient_type(action.type)
                if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
                    action.choices = _AnyChoice(action.choices)
        _PARSER = parser
    return _PARSER


def check_omrw_args(args: list[str]) -> str | None:
    """None if the real CLI parser accepts `omrw ARGS`, else its error message."""
    parser = cli_parser()
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            parser.parse_args(args)
    except _ArgError as e:
        return str(e)
    except SystemExit as e:           # --help / --version
        if e.code not in (0, None):
            return err.getvalue().strip() or f"exit {e.code}"
    return None


_SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "|&", ";;"}
_REDIRECTS = {">", ">>", "<", ">&", "&>", "<<", "<<<", ">|", "&>>"}


def shell_commands(script: str) -> list[list[str]]:
    """Simple commands of a rendered script, as word lists (env assignments and redirections
    removed; command substitutions `$(...)` open a new command)."""
    text = re.sub(r"\\\n", " ", script)
    commands: list[list[str]] = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        lex = shlex.shlex(s, posix=True, punctuation_chars=";&|<>()")
        lex.whitespace_split = True
        lex.commenters = ""
        try:
            tokens = list(lex)
        except ValueError as e:
            raise Unsupported(f"cannot split shell line {s!r}: {e}") from None
        current: list[str] = []
        skip_next = False
        for idx, tok in enumerate(tokens):
            if skip_next:
                skip_next = False
                continue
            if tok in _SEPARATORS:
                if current:
                    commands.append(current)
                current = []
                continue
            if tok in _REDIRECTS:
                skip_next = True
                continue
            if tok.isdigit() and idx + 1 < len(tokens) and tokens[idx + 1] in _REDIRECTS:
                continue
            if tok.endswith("$") and idx + 1 < len(tokens) and tokens[idx + 1] == "(":
                tok = tok[:-1]           # `x=$(cmd)`: the assignment, then cmd
                if not tok:
                    continue
            if not current and re.match(r"^[A-Za-z_]\w*=", tok):
                continue                 # VAR=value before a command (or a plain assignment)
            current.append(tok)
        if current:
            commands.append(current)
    return commands


def omrw_commands(script: str) -> list[list[str]]:
    """The `omrw` invocations of a rendered script, as argument lists (without `omrw`)."""
    return [c[1:] for c in shell_commands(script) if c and Path(c[0]).name == "omrw"]


#: Interpolations that stand for whole arguments built in the block's prologue (empty when unset):
#: `$args` (task.ext.args), `$trust` (`--trust FILE` from task.ext.trust) and `$selection`
#: (OMR_MIRROR's `--lock FILE`, `--model M ...` or `--all`, which the parser cannot require).
OPTIONAL_ARGS = {"args", "trust", "selection"}


def render_for_lint(raw: str, interpolating: bool = True) -> str:
    """Template text with `$args` and `$trust` removed and every other interpolation a placeholder."""
    def value(expr: str) -> str:
        return "" if expr.strip() in OPTIONAL_ARGS else PLACEHOLDER
    return render(raw, value, interpolating)


# --------------------------------------------------------------------------- modules


def _findings_for_process(proc: Process, path: str, module_dir: Path | None) -> list[Finding]:
    out: list[Finding] = []

    def bad(check: str, message: str) -> None:
        out.append(Finding(check, path, message))

    if module_dir is not None:
        expected = "OMR_" + module_dir.name.upper()
        if proc.name != expected:
            bad("process_name", f"process {proc.name} should be named {expected} (from the directory)")

    directives = [d.strip() for d in proc.directives]
    tags = [d for d in directives if re.match(r"tag\b", d)]
    if tags != ['tag "${meta.id}"']:
        bad("tag", f'expected exactly one `tag "${{meta.id}}"`, found {tags or "none"}')
    labels = [d for d in directives if re.match(r"label\b", d)]
    if len(labels) != 1:
        bad("label", f"expected exactly one label, found {len(labels)}: {labels}")
    for lab in labels:
        m = re.fullmatch(r"label\s+['\"](\w+)['\"]", lab)
        if not m or m.group(1) not in STANDARD_LABELS:
            bad("label", f"{lab!r} is not one of the standard labels {', '.join(STANDARD_LABELS)}")
    condas = [d for d in directives if re.match(r"conda\b", d)]
    if condas != ['conda "${moduleDir}/environment.yml"']:
        bad("conda", f'expected `conda "${{moduleDir}}/environment.yml"`, found {condas or "none"}')

    for section in ("input", "output", "when", "script", "stub"):
        if section not in proc.sections:
            bad({"stub": "stub", "when": "when"}.get(section, "sections"), f"no {section}: block")

    try:
        inputs = proc.inputs
        outputs = proc.outputs
    except Unsupported as e:
        bad("declarations", str(e))
        return out

    if not inputs or inputs[0].elements[0].kind != "val" or inputs[0].elements[0].arg != "meta" \
            or not inputs[0].text.startswith("tuple"):
        bad("inputs", "the first input must be `tuple val(meta), ...`")

    emits = []
    for decl in outputs:
        if not decl.emit:
            bad("emit", f"output without emit: `{decl.text}`")
        else:
            emits.append(decl.emit)
    dup = {e for e in emits if emits.count(e) > 1}
    if dup:
        bad("emit", f"duplicate emit names {sorted(dup)}")

    versions = [d for d in outputs if d.topic == "versions"]
    if not versions:
        bad("versions_topic", "no output on `topic: versions`")
    for d in versions:
        kinds = [(e.kind, e.arg) for e in d.elements]
        ok = (d.text.startswith("tuple") and len(kinds) == 3 and kinds[0] == ("val", '"${task.process}"')
              and kinds[1] == ("val", "'omrw'") and kinds[2][0] == "eval"
              and re.match(r"""^['"]omrw --version\b""", kinds[2][1]))
        if not ok:
            bad("versions_topic", "versions output must be "
                "`tuple val(\"${task.process}\"), val('omrw'), eval('omrw --version ...'), topic: versions`")
        if d.emit and not d.emit.startswith("versions"):
            bad("versions_topic", f"versions output emit {d.emit!r} should start with 'versions'")
    prov = [d for d in outputs if d.topic == "omr_provenance"]
    if proc.name in PROVENANCE_SINKS | NO_RUN_RECORD:
        if prov:
            bad("provenance_topic", f"{proc.name} writes no run record; nothing it emits may go on omr_provenance")
    elif not prov:
        bad("provenance_topic", "no output on `topic: omr_provenance`")
    for d in outputs:
        if d.topic and d.topic not in ("versions", "omr_provenance"):
            bad("topics", f"unknown topic {d.topic!r}")

    when = proc.sections.get("when")
    if when is not None and " ".join(when.split()) != WHEN:
        bad("when", f"when: block must be exactly `{WHEN}`, found `{' '.join(when.split())}`")

    for block in ("script", "stub"):
        if block not in proc.sections:
            continue
        try:
            tpl = script_template(proc.sections[block])
            rendered = render_for_lint(tpl.raw, tpl.interpolating)
        except Unsupported as e:
            bad("script" if block == "script" else "stub", f"{block}: {e}")
            continue
        prologue = statements(tpl.prologue)
        if not any(re.fullmatch(r"(def\s+)?prefix\s*=\s*task\.ext\.prefix\s*\?:\s*\"\$\{meta\.id\}\"", s)
                   for s in prologue):
            bad("ext_prefix", f"{block}: missing `prefix = task.ext.prefix ?: \"${{meta.id}}\"`")
        elif any(re.match(r"def\s+prefix\b", s) for s in prologue) and "prefix" in proc.sections.get("output", ""):
            bad("ext_prefix", f"{block}: `def prefix` hides prefix from the output: block; assign it without def")
        if block == "script":
            if "def args = task.ext.args ?: ''" not in prologue:
                bad("ext_args", "script: missing `def args = task.ext.args ?: ''`")
        try:
            commands = omrw_commands(rendered)
        except Unsupported as e:
            bad("omrw_cli", f"{block}: {e}")
            continue
        if block == "script":
            if not commands:
                bad("omrw_cli", "script: no omrw command")
            raw_commands = _raw_omrw_segments(tpl.raw)
            for seg in raw_commands:
                if not re.search(r"\$\{?args\}?(?![\w.])", seg):
                    bad("ext_args", f"script: omrw command does not pass $args: {_short(seg)}")
            if "|" in re.sub(r"\|\|", "", rendered) and "pipefail" not in rendered:
                bad("pipefail", "script: a pipe hides failures under Nextflow's default `bash -ue`; "
                                "avoid it or `set -o pipefail`")
        if block == "script":
            for words in commands:
                if "--provenance-dir" in words[:-1]:
                    where = words[words.index("--provenance-dir") + 1]
                    if not any(e.kind == "path" and e.is_literal and e.literal == f"{where}/*.json"
                               for d in prov for e in d.elements):
                        bad("provenance_topic", f"records go to --provenance-dir {where} but no "
                                                f"`path \"{where}/*.json\"` output is on topic omr_provenance")
        for words in commands:
            if block == "script" and "--json" not in words:
                bad("omrw_json", f"{block}: omrw {_short(' '.join(words))} lacks --json")
            err = check_omrw_args(words)
            if err:
                bad("omrw_cli", f"{block}: `omrw {_short(' '.join(words))}` is refused by the CLI parser: {err}")
    for d in outputs:
        for e in d.elements:
            if e.kind == "eval":
                try:
                    cmd = render_for_lint(e.arg[1:-1], e.arg.startswith('"'))
                    for words in omrw_commands(cmd):
                        err = check_omrw_args(words)
                        if err:
                            bad("omrw_cli", f"eval output `omrw {' '.join(words)}`: {err}")
                except Unsupported as ex:
                    bad("omrw_cli", f"eval output: {ex}")
    return out


def _raw_omrw_segments(raw: str) -> list[str]:
    text = re.sub(r"\\\\\n", " ", raw)
    return [m.group(0) for m in re.finditer(r"(?m)(?:^[ \t]*|[;(&|][ \t]*)omrw\b[^\n;|&]*", text)]


def _short(text: str, n: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "..."


def lint_module(module_dir: str | Path) -> list[Finding]:
    d = Path(module_dir)
    main = d / "main.nf"
    rel = _rel(main)
    out: list[Finding] = []
    if not main.exists():
        return [Finding("files", rel, "missing main.nf")]
    parsed = reftrace_parse(main)
    if not parsed.ok:
        return [Finding("parse", rel, f"reftrace rejects the file: {parsed.error}")]
    try:
        procs = parse_processes(main.read_text(), main)
    except Unsupported as e:
        return [Finding("parse", rel, str(e))]
    if len(procs) != 1 or len(parsed.processes) != 1:
        return [Finding("process_name", rel, f"expected one process, found {len(procs)}")]
    proc = procs[0]
    rt = parsed.processes[0]
    # reftrace's reading of the directives must agree with ours (guards the text scanner).
    if [l.label for l in rt.labels] != [re.sub(r"^label\s+['\"](\w+)['\"]$", r"\1", d.strip())
                                        for d in proc.directives if d.strip().startswith("label")]:
        out.append(Finding("label", rel, f"reftrace sees labels {[l.label for l in rt.labels]}"))
    out += _findings_for_process(proc, rel, d)
    out += _lint_meta_yml(d, proc)
    out += _lint_environment(d)
    out += _lint_nf_test(d, proc.name, kind="process")
    return out


def _element_names(decl) -> list[str]:
    names = []
    for e in decl.elements:
        if e.is_literal:
            names.append(e.literal)
        else:
            names.append(e.arg.strip("'\""))
    return names


def _lint_meta_yml(d: Path, proc: Process) -> list[Finding]:
    import yaml

    path = d / "meta.yml"
    rel = _rel(path)
    if not path.exists():
        return [Finding("meta_yml", rel, "missing meta.yml")]
    out = []
    try:
        meta = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        return [Finding("meta_yml", rel, f"not valid YAML: {e}")]
    for key in ("name", "description", "keywords", "tools", "input", "output", "topics", "authors"):
        if key not in (meta or {}):
            out.append(Finding("meta_yml", rel, f"missing key {key!r}"))
    if out:
        return out
    if meta["name"] != f"omr_{d.name}":
        out.append(Finding("meta_yml", rel, f"name {meta['name']!r} should be 'omr_{d.name}'"))
    if len(meta["keywords"]) < 3:
        out.append(Finding("meta_yml", rel, "at least three keywords"))
    # inputs: one list per input declaration, one key per element
    declared_in = [_element_names(decl) for decl in proc.inputs]
    meta_in = [[next(iter(e)) for e in (ch if isinstance(ch, list) else [ch])] for ch in meta["input"]]
    if declared_in != meta_in:
        out.append(Finding("meta_yml", rel, f"input {meta_in} does not match main.nf {declared_in}"))
    emits = {decl.emit: decl for decl in proc.outputs if decl.emit}
    if set(meta["output"]) != set(emits):
        out.append(Finding("meta_yml", rel, f"output keys {sorted(meta['output'])} != emit names {sorted(emits)}"))
    for name, decl in emits.items():
        entry = meta["output"].get(name)
        if not entry:
            continue
        channel = entry[0]
        keys = [next(iter(e)) for e in (channel if isinstance(channel, list) else [channel])]
        if keys != _element_names(decl):
            out.append(Finding("meta_yml", rel, f"output {name}: elements {keys} != main.nf {_element_names(decl)}"))
    topics = {decl.topic for decl in proc.outputs if decl.topic}
    if set(meta["topics"] or {}) != topics:
        out.append(Finding("meta_yml", rel, f"topics {sorted(meta['topics'] or {})} != main.nf {sorted(topics)}"))
    return out


def _lint_environment(d: Path) -> list[Finding]:
    import yaml

    path = d / "environment.yml"
    rel = _rel(path)
    if not path.exists():
        return [Finding("environment_yml", rel, "missing environment.yml")]
    env = yaml.safe_load(path.read_text()) or {}
    version = _project_version()
    pips = [p for dep in env.get("dependencies", []) if isinstance(dep, dict) for p in dep.get("pip", [])]
    wanted = re.compile(r"^omr-workflows(\[[\w,]+\])?==" + re.escape(version) + "$")
    if not any(wanted.match(p) for p in pips):
        return [Finding("environment_yml", rel, f"must pip-install omr-workflows=={version}, found {pips}")]
    if "conda-forge" not in env.get("channels", []):
        return [Finding("environment_yml", rel, "channels must include conda-forge")]
    return []


def _project_version() -> str:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _lint_nf_test(d: Path, name: str, kind: str) -> list[Finding]:
    path = d / "tests" / "main.nf.test"
    rel = _rel(path)
    if not path.exists():
        return [Finding("nf_test", rel, "missing tests/main.nf.test")]
    text = path.read_text()
    out = []
    block = "nextflow_process" if kind == "process" else "nextflow_workflow"
    if f"{block} {{" not in text:
        out.append(Finding("nf_test", rel, f"not a {block} spec"))
    if f'{kind} "{name}"' not in text:
        out.append(Finding("nf_test", rel, f'does not test {kind} "{name}"'))
    if 'script "../main.nf"' not in text:
        out.append(Finding("nf_test", rel, 'must use script "../main.nf"'))
    if '"-stub"' not in text:
        out.append(Finding("nf_test", rel, "no stub test (options \"-stub\")"))
    return out


# --------------------------------------------------------------------------- subworkflows and pipelines


def lint_includes(path: Path) -> list[Finding]:
    """Includes come first, resolve to files, and name processes/workflows those files define."""
    text = path.read_text()
    rel = _rel(path)
    out = []
    includes = parse_includes(text, path)
    first_code = re.search(r"(?m)^[ \t]*(process|workflow|def)\b", _strip_comments(text))
    last_include = max((text.find(f"from '{i.source}'") for i in includes), default=-1)
    if first_code and last_include > first_code.start():
        out.append(Finding("includes", rel, "includes must come before any process, workflow or function"))
    for inc in includes:
        if inc.path is None:
            continue
        if not inc.path.exists():
            out.append(Finding("includes", rel, f"include from '{inc.source}': {inc.path} does not exist"))
            continue
        target = inc.path.read_text()
        defined = {p.name for p in parse_processes(target)} | {w.name for w in parse_workflows(target) if w.name}
        for local, original in inc.names.items():
            if original not in defined:
                out.append(Finding("includes", rel, f"'{inc.source}' defines no process or workflow {original}"))
    return out


def _strip_comments(text: str) -> str:
    from .nfparse import blank_comments
    return blank_comments(text)


def lint_subworkflow(sw_dir: str | Path) -> list[Finding]:
    d = Path(sw_dir)
    main = d / "main.nf"
    rel = _rel(main)
    parsed = reftrace_parse(main)
    if not parsed.ok:
        return [Finding("parse", rel, f"reftrace rejects the file: {parsed.error}")]
    out = lint_includes(main)
    text = main.read_text()
    wfs = [w for w in parse_workflows(text) if w.name]
    expected = d.name.upper()
    if [w.name for w in wfs] != [expected]:
        out.append(Finding("workflow_name", rel, f"expected one workflow {expected}, found {[w.name for w in wfs]}"))
        return out
    wf = wfs[0]
    for section in ("take", "main", "emit"):
        if section not in wf.sections:
            out.append(Finding("take_main_emit", rel, f"no {section}: block"))
    raw_lines = {ln.strip() for ln in text.splitlines()}
    for section in ("take", "emit"):
        for line in wf.sections.get(section, "").splitlines():
            if not line.strip():
                continue
            name = line.split("=")[0].strip()
            original = next((r for r in raw_lines if r.startswith(line.strip())), "")
            if section == "take" and not re.match(r"^(ch|val)_\w+$", name):
                out.append(Finding("channel_names", rel, f"take {name!r}: name channels ch_*, values val_*"))
            if "//" not in original:
                out.append(Finding("channel_comments", rel, f"{section} {name!r}: comment the shape (// channel: [ ... ])"))
    if not (d / "meta.yml").exists():
        out.append(Finding("meta_yml", _rel(d / "meta.yml"), "missing meta.yml"))
    out += _lint_nf_test(d, wf.name, kind="workflow")
    return out


def lint_path(path: str | Path) -> list[Finding]:
    """Lint a module dir, a subworkflow dir, or every component under `nextflow_modules/`."""
    p = Path(path)
    if (p / "main.nf").exists():
        return lint_subworkflow(p) if p.parent.name == "subworkflows" else lint_module(p)
    out = []
    for main in sorted(p.glob("omr/*/main.nf")):
        out += lint_module(main.parent)
    for main in sorted(p.glob("subworkflows/*/main.nf")):
        out += lint_subworkflow(main.parent)
    return out


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    import sys

    ap = argparse.ArgumentParser(description="nf-core style lint of omr Nextflow components")
    ap.add_argument("paths", nargs="*", default=[str(MODULES_ROOT)])
    a = ap.parse_args(argv)
    findings = [f for p in a.paths for f in lint_path(p)]
    for f in findings:
        print(f)
    print(f"{len(findings)} finding(s)", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
