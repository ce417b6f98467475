"""What every omr wrapper shares: find `omrw`, run one `omrw ... --json` call, keep the log.

Each wrapper imports this file from the folder above its own (`snakemake.scriptdir/..`), so
the wrappers work from a checkout, an installed package (`omrw components wrappers`) or any
`--wrapper-prefix file:<dir>/`. Nothing here imports omr_workflows: the call goes through
the CLI so that a wrapper behaves exactly like the command a user would type, exit codes
and error messages included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

#: Where resolve/verify records go when neither params.provenance_dir nor $OMR_RUN_DIR is
#: set: the rule library's default (`outdir: omr`), relative to the working directory.
DEFAULT_RUN_DIR = os.path.join("omr", "provenance", "records")
VERIFY_MODES = ("none", "fast", "strict")


class WrapperError(Exception):
    """A wrapper input or parameter is wrong; the message names it."""


def omrw_command() -> list[str]:
    """`omrw` from PATH, else the module of the interpreter running the wrapper."""
    exe = shutil.which("omrw")
    if exe:
        return [exe]
    return [sys.executable, "-m", "omr_workflows.cli.main"]


def param(snakemake, name: str, default=None):
    value = snakemake.params.get(name, default)
    return default if value is None else value


def as_list(value) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def extra_args(snakemake) -> list[str]:
    """`params.extra`: a string (split like a shell would) or a list of arguments."""
    import shlex

    extra = param(snakemake, "extra", "")
    return shlex.split(extra) if isinstance(extra, str) else [str(a) for a in extra]


def records_output(snakemake) -> str | None:
    """The output named `records`: a `directory()` for this job's run provenance records."""
    path = snakemake.output.get("records")
    return str(path) if path else None


def primary_output(snakemake, name: str, what: str) -> str:
    """The output named `name`, else the only output besides `records`."""
    named = snakemake.output.get(name)
    if named:
        return str(named)
    records = records_output(snakemake)
    others = [str(o) for o in snakemake.output if str(o) != records]
    if len(others) != 1:
        raise WrapperError(f"{snakemake.rule}: expects one output ({what}; name it `{name}` when there are "
                           f"more), got {len(others)}")
    return others[0]


def existing_input(snakemake, name: str, kind: str = "file") -> str | None:
    """Named input `name` (or None); raise if it is given but missing or of the wrong kind."""
    paths = as_list(snakemake.input.get(name))
    if not paths:  # absent, or declared as an empty list
        return None
    if len(paths) > 1:
        raise WrapperError(f"{snakemake.rule}: input {name} must be one {kind}, got {len(paths)}")
    path = paths[0]
    check = os.path.isdir if kind == "dir" else os.path.isfile
    if not check(path):
        raise WrapperError(f"{snakemake.rule}: input {name}={path!r} is not an existing {kind}")
    return path


def verify_mode(snakemake, name: str = "verify", allowed=VERIFY_MODES, default: str | None = None) -> str | None:
    mode = param(snakemake, name, default)
    if mode is not None and mode not in allowed:
        raise WrapperError(f"{snakemake.rule}: params.{name}={mode!r}: use one of {', '.join(allowed)}")
    return mode


def read_json(path: str, what: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise WrapperError(f"{what} {path!r} is not readable JSON: {e}") from None


def write_json(path: str, data) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


def governance_args(snakemake) -> list[str]:
    """`--trust FILE` (params.trust) and `--key KEYFILE` (params.key), when given.

    Without them omrw uses its own defaults: $OMR_TRUST, ./omr-trust.json, ... for the trust
    root, $OMR_SIGNING_KEY for the signing key. `trust: none` turns the point-of-use checks off.
    A trust file or key that does not exist is a wrapper error naming the param.
    """
    out = []
    for name, opt in (("trust", "--trust"), ("key", "--key")):
        value = param(snakemake, name)
        if not value:
            continue
        value = str(value)
        if not (name == "trust" and value == "none") and not os.path.isfile(value):
            raise WrapperError(f"{snakemake.rule}: params.{name}={value!r} is not an existing file")
        out += [opt, value]
    return out


def run_omrw(snakemake, args: list[str], *, records: bool = False, ok_codes=(0,)):
    """Run `omrw ARGS --json [--registry R] [--trust T] [--key K]` once; return (exit code, parsed stdout).

    stderr goes to `log[0]` when the rule has a log (after a `$ omrw ...` line), else to
    the job's stderr. `records=True` sets OMR_RUN_DIR so that resolve/verify write their
    run provenance record (params.provenance_dir, else the `records` output, else
    $OMR_RUN_DIR, else the library default). An exit code outside `ok_codes` raises SystemExit with omrw's code, so
    Snakemake marks the job failed and the log names the cause.
    """
    cmd = omrw_command() + list(args) + ["--json"]
    registry = param(snakemake, "registry")
    if registry:
        cmd += ["--registry", str(registry)]
    cmd += governance_args(snakemake)
    env = dict(os.environ)
    env["OMR_ENGINE"] = "snakemake"
    if records:
        run_dir = (param(snakemake, "provenance_dir") or records_output(snakemake) or env.get("OMR_RUN_DIR")
                   or DEFAULT_RUN_DIR)
        os.makedirs(run_dir, exist_ok=True)
        env["OMR_RUN_DIR"] = os.path.abspath(str(run_dir))
    log = snakemake.log[0] if len(snakemake.log) else None
    prog = omrw_command()
    shown = " ".join(["omrw" if len(prog) == 1 else " ".join(prog), *cmd[len(prog):]])
    if log:
        os.makedirs(os.path.dirname(os.path.abspath(log)), exist_ok=True)
        with open(log, "w", encoding="utf-8") as err:
            err.write(f"$ {shown}\n")
            err.flush()
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, env=env, text=True)
    else:
        sys.stderr.write(f"$ {shown}\n")
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, env=env, text=True)
    data = None
    if proc.stdout.strip():
        try:
            data = json.loads(proc.stdout)
        except ValueError:
            data = None
    if proc.returncode not in ok_codes:
        where = f" (see {log})" if log else ""
        sys.stderr.write(f"{snakemake.rule}: omrw {args[0] if args else ''} exited {proc.returncode}{where}\n")
        raise SystemExit(proc.returncode)
    if data is None:
        raise WrapperError(f"{snakemake.rule}: omrw {args[0]} printed no JSON document")
    return proc.returncode, data


def main(snakemake, body) -> None:
    """Run a wrapper body; a WrapperError becomes one line on stderr (and the log) and exit 2."""
    try:
        body(snakemake)
    except WrapperError as e:
        msg = f"omr wrapper error: {e}\n"
        sys.stderr.write(msg)
        if len(snakemake.log):
            with open(snakemake.log[0], "a", encoding="utf-8") as f:
                f.write(msg)
        raise SystemExit(2)
