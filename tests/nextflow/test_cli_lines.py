"""Every `omrw` command line in every script block (and stub, and `eval` output) is accepted by
the real CLI parser, `omr_workflows.cli.main.build_parser()`, with Nextflow interpolations
replaced by a placeholder and `$args` removed."""

from __future__ import annotations

import pytest

from .conftest import EXAMPLE, MODULE_DIRS
from .nflint import PLACEHOLDER, check_omrw_args, omrw_commands, render_for_lint, shell_commands
from .nfparse import parse_processes, script_template

PROCESSES = [(main.parent.name, proc) for main in [d / "main.nf" for d in MODULE_DIRS]
             for proc in parse_processes(main.read_text(), main)]
PROCESSES += [("example", proc) for proc in parse_processes((EXAMPLE / "main.nf").read_text())]


def command_lines(proc, block):
    tpl = script_template(proc.sections[block])
    return omrw_commands(render_for_lint(tpl.raw, tpl.interpolating))


@pytest.mark.parametrize("name,proc", PROCESSES, ids=[f"{n}:{p.name}" for n, p in PROCESSES])
def test_script_command_lines_parse(name, proc):
    commands = command_lines(proc, "script")
    if name != "example":
        assert commands, f"{proc.name}: no omrw command in script:"
    for words in commands:
        assert "--json" in words, f"{proc.name}: omrw {' '.join(words)} lacks --json"
        err = check_omrw_args(words)
        assert err is None, f"{proc.name}: omrw {' '.join(words)}: {err}"
    if "stub" in proc.sections:
        for words in command_lines(proc, "stub"):
            assert check_omrw_args(words) is None


@pytest.mark.parametrize("name,proc", [p for p in PROCESSES if p[0] != "example"],
                         ids=[f"{n}:{p.name}" for n, p in PROCESSES if n != "example"])
def test_versions_eval_parses(name, proc):
    evals = [e for d in proc.outputs for e in d.elements if e.kind == "eval"]
    assert evals
    for e in evals:
        [words] = omrw_commands(render_for_lint(e.arg[1:-1], e.arg.startswith('"')))
        assert words == ["--version"]
        assert check_omrw_args(words) is None


def test_the_check_refuses_what_the_cli_refuses():
    assert check_omrw_args(["resolve", PLACEHOLDER, "--json"]) is None
    assert "unrecognized" in check_omrw_args(["resolve", PLACEHOLDER, "--jsonn"])
    assert "unrecognized" in check_omrw_args(["resolve", PLACEHOLDER, PLACEHOLDER])     # one REF only
    assert "required" in check_omrw_args(["promote", PLACEHOLDER])                     # --to is required
    assert "invalid choice" in check_omrw_args(["resolve", "x", "--verify", "sometimes"])
    assert "invalid choice" in check_omrw_args(["verfy", "--all"])
    # a placeholder stands for any value of a typed/choice option ...
    assert check_omrw_args(["verify", "--all", "--jobs", PLACEHOLDER, "--mode", PLACEHOLDER]) is None
    # ... but a literal value is still checked
    assert check_omrw_args(["verify", "--all", "--jobs", "many"]) is not None


def test_shell_command_splitting():
    script = ("export A=1\nstatus=0\nomrw verify --all \\\n  --json > out.json || status=$?\n"
              "X=$(omrw resolve r --json)\nOMR_DEBUG=1 omrw show r --json 2> err | tee f\n")
    assert omrw_commands(script) == [["verify", "--all", "--json"], ["resolve", "r", "--json"],
                                     ["show", "r", "--json"]]
    assert ["tee", "f"] in shell_commands(script)
