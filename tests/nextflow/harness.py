"""Run a Nextflow process's `script:` (or `stub:`) block in bash, the way a Nextflow task would.

Nextflow cannot be installed where CI runs, so this is the closest executable check: the
process is read from its `main.nf` (see nfparse), its `when:` guard and the Groovy prologue of
the block are evaluated against a binding (`meta`, the inputs, `task.ext.*`, `task.process`,
`moduleDir`), the command template is rendered with Groovy's rules (`\\$` stays a literal `$`
for the shell, `${...}` and `$name.path` are interpolated), and the result is run as
`.command.sh` in a fresh work dir with `bash -euo pipefail` (or any shell given), with the
interpreter's bin dir first on PATH so the real `omrw` runs.

As Nextflow does:
* `path` inputs are staged into the work dir as symlinks (`stageAs:` patterns honoured) and the
  script sees their staged names;
* names assigned without `def` in the block are visible to the `output:` declarations, names
  declared with `def` are not (a module using `def prefix` and `${prefix}` in an output fails
  here as it would in Nextflow);
* after the script, `env(...)` outputs are read from the script's shell and each `eval(...)`
  output command is run in the work dir; a failing eval command fails the task;
* every `path(...)` output pattern must match at least one file unless `optional: true`.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .nfparse import Evaluator, Process, Staged, Unsupported, groovy_str, groovy_truth, load_process, render, \
    script_template

NEXTFLOW_DEFAULT_SHELL = ("bash", "-ue")                 # Nextflow's own process.shell default
PIPEFAIL_SHELL = ("bash", "-euo", "pipefail")
NFCORE_SHELL = ("bash", "-C", "-euo", "pipefail")        # nf-core's template: also noclobber (set -C)
DEFAULT_SHELL = PIPEFAIL_SHELL


class TaskFailed(AssertionError):
    """The task would fail in Nextflow: non-zero exit, a missing output, a failing eval."""

    def __init__(self, message: str, result: "TaskResult | None" = None):
        self.result = result
        if result is not None:
            message += (f"\n--- .command.sh ---\n{result.script}\n--- stdout ---\n{result.stdout[-4000:]}"
                        f"\n--- stderr ---\n{result.stderr[-4000:]}")
        super().__init__(message)


@dataclass
class TaskResult:
    process: str
    workdir: Path
    script: str
    returncode: int
    stdout: str
    stderr: str
    binding: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)     # emit name (or index) -> value(s)
    topics: dict[str, list[Any]] = field(default_factory=dict)

    def output(self, emit: str) -> Any:
        return self.outputs[emit]


def bin_dir() -> str:
    return str(Path(sys.executable).parent)


def task_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = bin_dir() + os.pathsep + env.get("PATH", "")
    env.update(extra or {})
    return env


def _stage(workdir: Path, element_options: dict[str, str], value: Any) -> Staged:
    """Symlink input files into the work dir like Nextflow's default stageInMode."""
    files = value if isinstance(value, (list, tuple)) else [value]
    stage_as = element_options.get("stageAs")
    pattern = None
    if stage_as:
        pattern = Evaluator({}).eval(stage_as)
    names = []
    for idx, f in enumerate(files, start=1):
        src = Path(f).resolve()
        if pattern is None:
            rel = src.name
        elif "*" in pattern:
            rel = pattern.replace("*", src.name, 1)
        elif "?" in pattern:
            rel = pattern.replace("?", str(idx), 1)
        else:
            rel = pattern
        dest = workdir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() or dest.is_symlink():
            raise TaskFailed(f"input file name collision when staging {src} as {rel}")
        dest.symlink_to(src)
        names.append(rel)
    return Staged(names)


def bind_inputs(proc: Process, inputs: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Binding for the declared inputs; `inputs` maps each input name to its value."""
    binding: dict[str, Any] = {}
    for decl in proc.inputs:
        for el in decl.elements:
            if el.kind not in ("val", "path", "file", "env"):
                raise Unsupported(f"{proc.name}: input qualifier {el.kind} is not supported by the harness")
            name = el.arg
            if name not in inputs:
                raise TaskFailed(f"{proc.name}: no value given for input {name!r}")
            value = inputs[name]
            if el.kind in ("path", "file"):
                binding[name] = _stage(workdir, el.options, value) if value not in (None, [], "") else Staged([])
            else:
                binding[name] = value
    extra = set(inputs) - set(binding)
    if extra:
        raise TaskFailed(f"{proc.name}: values given for undeclared inputs {sorted(extra)}")
    return binding


def _glob(workdir: Path, pattern: str) -> list[Path]:
    """Nextflow-style output glob: `*` never matches a hidden file; no wildcard = exact path."""
    if not any(c in pattern for c in "*?["):
        p = workdir / pattern
        return [p] if (p.exists() or p.is_symlink()) else []
    parts = pattern.split("/")
    current = [workdir]
    for part in parts:
        nxt = []
        for base in current:
            if not base.is_dir():
                continue
            for child in sorted(base.iterdir()):
                if fnmatch.fnmatchcase(child.name, part) and not (child.name.startswith(".") and not part.startswith(".")):
                    nxt.append(child)
        current = nxt
    return current


def run_process(main_nf: str | Path, inputs: dict[str, Any], workdir: str | Path, *, process: str | None = None,
                ext: dict[str, Any] | None = None, stub: bool = False, env: dict[str, str] | None = None,
                shell: tuple[str, ...] = DEFAULT_SHELL, check: bool = True, timeout: float = 300) -> TaskResult:
    """Run one task of the process in `main_nf`; raise TaskFailed (when `check`) as Nextflow would fail it."""
    main_nf = Path(main_nf).resolve()
    proc = load_process(main_nf, process)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        raise TaskFailed(f"work dir {workdir} is not empty")

    binding: dict[str, Any] = bind_inputs(proc, inputs, workdir)
    binding["task"] = {"ext": dict(ext or {}), "process": proc.name, "cpus": 1, "attempt": 1,
                       "index": 1, "workDir": str(workdir)}
    binding["moduleDir"] = str(main_nf.parent)
    binding["projectDir"] = str(main_nf.parent)
    binding["workflow"] = {"containerEngine": None}

    when = proc.sections.get("when")
    if when is not None and when.strip() and not groovy_truth(Evaluator(binding).eval(when.strip())):
        raise TaskFailed(f"{proc.name}: the when: guard is false for this task")

    block = "stub" if stub else "script"
    if block not in proc.sections:
        raise TaskFailed(f"{proc.name}: no {block}: block")
    tpl = script_template(proc.sections[block])
    evaluator = Evaluator(binding)
    local = evaluator.run_prologue(tpl.prologue)
    script_text = render(tpl.raw, lambda e: groovy_str(Evaluator(binding).eval(e)), tpl.interpolating)
    script_text = _dedent(script_text)

    env_outputs = [el.arg.strip("'\"") for d in proc.outputs for el in d.elements if el.kind == "env"]
    trailer = "".join(f'\nprintf "%s" "${{{name}}}" > .command.env.{name}' for name in env_outputs)
    (workdir / ".command.sh").write_text("#!/bin/bash\n" + script_text + trailer + "\n")

    run_env = task_env(env)
    proc_run = subprocess.run([*shell, ".command.sh"], cwd=workdir, env=run_env, capture_output=True, text=True,
                              timeout=timeout)
    (workdir / ".command.out").write_text(proc_run.stdout)
    (workdir / ".command.err").write_text(proc_run.stderr)
    (workdir / ".exitcode").write_text(str(proc_run.returncode))
    result = TaskResult(proc.name, workdir, script_text, proc_run.returncode, proc_run.stdout, proc_run.stderr,
                        binding)
    if proc_run.returncode != 0:
        if check:
            raise TaskFailed(f"{proc.name}: script exited {proc_run.returncode}", result)
        return result

    # Outputs see the binding without the block's `def` locals.
    out_binding = {k: v for k, v in binding.items() if k not in local or k in inputs}
    for idx, decl in enumerate(proc.outputs):
        values = []
        for el in decl.elements:
            values.append(_output_value(proc, el, decl, out_binding, workdir, run_env, result, timeout))
        value = values[0] if len(values) == 1 else tuple(values)
        if decl.options.get("optional", "false") == "true" and any(v is None for v in values):
            value = None
        result.outputs[decl.emit or str(idx)] = value
        if decl.topic and value is not None:
            result.topics.setdefault(decl.topic, []).append(value)
    return result


def _output_value(proc: Process, el, decl, binding, workdir: Path, env, result: TaskResult, timeout: float) -> Any:
    ev = Evaluator(dict(binding))
    if el.kind == "val":
        try:
            return ev.eval(el.arg)
        except Unsupported as e:
            raise TaskFailed(f"{proc.name}: output val({el.arg}): {e}", result) from None
    if el.kind in ("path", "file"):
        try:
            pattern = ev.eval(el.arg)
        except Unsupported as e:
            raise TaskFailed(f"{proc.name}: output path({el.arg}): {e}", result) from None
        matches = _glob(workdir, str(pattern))
        if not matches:
            if decl.options.get("optional", "false") == "true":
                return None
            raise TaskFailed(f"{proc.name}: missing output file(s) {pattern!r} (emit: {decl.emit})", result)
        return matches[0] if len(matches) == 1 else matches
    if el.kind == "env":
        name = el.arg.strip("'\"")
        f = workdir / f".command.env.{name}"
        if not f.exists():
            raise TaskFailed(f"{proc.name}: missing environment output {name}", result)
        return f.read_text()
    if el.kind == "eval":
        cmd = ev.eval(el.arg)
        run = subprocess.run(["bash", "-c", cmd], cwd=workdir, env=env, capture_output=True, text=True,
                             timeout=timeout)
        if run.returncode != 0:
            raise TaskFailed(f"{proc.name}: eval output command failed ({run.returncode}): {cmd}\n{run.stderr}", result)
        return run.stdout.strip()
    if el.kind == "stdout":
        return result.stdout
    raise Unsupported(f"{proc.name}: output qualifier {el.kind}")


def _dedent(text: str) -> str:
    """Strip the common indentation, as Nextflow does with script strings."""
    lines = text.split("\n")
    indents = [len(l) - len(l.lstrip()) for l in lines if l.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(l[cut:] if l.strip() else "" for l in lines).strip("\n") + "\n"
