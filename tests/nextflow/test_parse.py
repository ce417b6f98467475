"""Every `.nf` file parses with reftrace (the Nextflow parser from PyPI), and reftrace refuses a
broken one; the text scanner the other checks use agrees with reftrace on what it reads."""

from __future__ import annotations


import pytest

from .conftest import EXAMPLE, MODULE_DIRS, NF_FILES, REPO
from .nfparse import (Evaluator, Unsupported, gstring_parts, parse_declaration, parse_processes, reftrace_parse,
                      render, script_template)


def test_the_components_exist():
    assert len(MODULE_DIRS) >= 7
    assert {p.name for p in MODULE_DIRS} >= {"resolve", "fetch", "verify", "verifymerge", "register", "promote", "lock"}
    assert len(NF_FILES) >= len(MODULE_DIRS) + 3


@pytest.mark.parametrize("path", NF_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_reftrace_parses(path):
    result = reftrace_parse(path)
    assert result.ok, f"reftrace rejects {path}: {result.error}"
    # reftrace and our scanner find the same processes, with the same labels and tags
    ours = parse_processes(path.read_text(), path)
    assert [p.name for p in result.processes] == [p.name for p in ours]
    for rt, mine in zip(result.processes, ours):
        assert [l.label for l in rt.labels] == [d.split(None, 1)[1].strip("'\"") for d in mine.directives
                                                if d.startswith("label")]
        assert [t.tag for t in rt.tags] == [d.split(None, 1)[1].strip("'\"") for d in mine.directives
                                            if d.startswith("tag")]


@pytest.mark.parametrize("config", [EXAMPLE / "nextflow.config", REPO / "nextflow_modules/tests/nextflow.config"],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_reftrace_parses_configs(config):
    import reftrace

    result = reftrace.ConfigFile.from_file(str(config))
    assert result.error is None, result.error


@pytest.mark.parametrize("breakage", [
    ("emit: json\n", "emit: json {\n"),                     # unbalanced brace
    ("    output:\n", "    output:\n    tuple val(meta\n"),  # unclosed parenthesis
    ('    """\n', '    ""\n'),                               # the command string never closes
])
def test_reftrace_rejects_a_broken_copy(tmp_path, breakage):
    src = REPO / "nextflow_modules/omr/resolve/main.nf"
    text = src.read_text()
    old, new = breakage
    assert old in text
    broken = tmp_path / "main.nf"
    broken.write_text(text.replace(old, new, 1))
    assert reftrace_parse(src).ok
    result = reftrace_parse(broken)
    assert not result.ok
    assert result.error


def test_reftrace_rejects_a_broken_subworkflow(tmp_path):
    src = REPO / "nextflow_modules/subworkflows/omr_verify_parallel/main.nf"
    broken = tmp_path / "main.nf"
    broken.write_text(src.read_text().replace("    emit:\n", "    emit: {\n", 1))
    assert not reftrace_parse(broken).ok


# ---------------------------------------------------------------------------- the scanner itself


def test_gstring_rules():
    parts = gstring_parts(r'echo ${meta.id} $prefix.json \$HOME \\ "\$(date)" $x')
    assert parts == [("text", "echo "), ("expr", "meta.id"), ("text", " "), ("expr", "prefix.json"),
                     ("text", " $HOME \\ \"$(date)\" "), ("expr", "x")]
    with pytest.raises(Unsupported, match="unescaped"):
        gstring_parts("echo $(date)")
    assert render("a ${x} b", lambda e: "X") == "a X b"


def test_declarations():
    d = parse_declaration('tuple val(meta), path("${prefix}.json"), emit: json')
    assert [(e.kind, e.arg) for e in d.elements] == [("val", "meta"), ("path", '"${prefix}.json"')]
    assert d.emit == "json" and d.topic is None
    d = parse_declaration('path "omr_provenance/*.json", optional: true, topic: omr_provenance, emit: provenance')
    assert d.elements[0].literal == "omr_provenance/*.json"
    assert d.options == {"optional": "true", "topic": "omr_provenance", "emit": "provenance"}
    d = parse_declaration("tuple val(meta), path(reports, stageAs: 'shards/*')")
    assert d.elements[1].options == {"stageAs": "'shards/*'"}


def test_evaluator():
    b = {"task": {"ext": {"args": None, "prefix": "p"}}, "meta": {"id": "m"}, "refs": ["a", "b"]}
    ev = Evaluator(b)
    assert ev.eval("task.ext.args ?: ''") == ""
    assert ev.eval('task.ext.prefix ?: "${meta.id}"') == "p"
    assert ev.eval("refs ? refs.join(' ') : '--all'") == "a b"
    assert ev.eval("task.ext.when == null || task.ext.when") is True
    b["refs"] = []
    assert ev.eval("refs ? refs.join(' ') : '--all'") == "--all"
    with pytest.raises(Unsupported):
        ev.eval("refs.collect { it }")
    local = Evaluator(b).run_prologue("def args = task.ext.args ?: ''\nprefix = task.ext.prefix ?: \"${meta.id}\"")
    assert local == {"args": ""} and b["prefix"] == "p"


def test_script_template_needs_a_final_string():
    tpl = script_template('    def a = 1\n    """\n    echo $a\n    """\n')
    assert tpl.prologue.strip() == "def a = 1" and tpl.interpolating and "echo $a" in tpl.raw
    with pytest.raises(Unsupported):
        script_template("    def a = 1\n")
