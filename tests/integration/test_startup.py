"""Start-up cost guard: a local `omrw resolve` must not load fsspec, rich, yaml or rocrate, nor
pydantic (its files are read by `fastread`), nor, without a trust root, the governance
machinery (policy, signatures, hooks, cryptography).

(Timings live in benchmarks/bench_core.py; this checks the import discipline that makes them.)
"""

from __future__ import annotations

import json
import subprocess
import sys

from omr_workflows.registry import Registry
from tests.conftest import make_artifacts

PROBE = """
import json, sys, io, contextlib
from omr_workflows.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    code = main(sys.argv[1:])
heavy = [m for m in ("pydantic", "pydantic_core", "dataclasses", "secrets", "socket", "fsspec", "rich", "yaml", "rocrate", "snakemake", "s3fs", "boto3", "cryptography",
                    "http.client", "urllib.request", "omr_workflows.policy", "omr_workflows.governance",
                    "omr_workflows.hooks", "omr_workflows.signing.keys", "omr_workflows.bundle.ops",
                    "omr_workflows.bundle.tarfmt", "tarfile") if m in sys.modules]
print(json.dumps({"code": code, "heavy": heavy, "out": out.getvalue()}))
"""


def _probe(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def test_local_resolve_imports_nothing_heavy(local_registry, tmp_path):
    reg = Registry(local_registry)
    reg.register("cls", "m", "v1", make_artifacts(tmp_path / "pkg"))
    reg.promote("cls/m@v1", "production")
    digest = reg.resolve("cls/m@v1").digest
    for args in (["resolve", "cls/m@latest"], ["resolve", "cls/m@v1", "--json"], ["resolve", "cls/m@production"],
                 ["resolve", "omr://cls/m@production#model.pt"], ["resolve", f"cls/m@{digest}"],
                 ["--json", "resolve", "cls/m"]):
        got = _probe("--registry", local_registry, *args)
        assert got["code"] == 0 and "versions/v1" in got["out"]
        assert got["heavy"] == [], f"`omrw {' '.join(args)}` imported {got['heavy']}"


def test_the_parser_built_for_one_command_parses_like_the_whole(local_registry):
    from omr_workflows.cli.main import build_parser

    for argv in (["--registry", local_registry, "resolve", "cls/m@v1", "--verify", "fast"],
                 ["--json", "--registry", "resolve", "resolve", "x/y"], ["provenance", "collect", "--help-not"],
                 ["verify", "cls/m@v1", "--mode", "strict"]):
        try:
            whole = vars(build_parser().parse_args(argv))
        except SystemExit as e:
            whole = e.code
        try:
            one = vars(build_parser(argv).parse_args(argv))
        except SystemExit as e:
            one = e.code
        assert {k: v for k, v in one.items() if k != "func"} == {k: v for k, v in whole.items() if k != "func"} \
            if isinstance(one, dict) else one == whole, argv


def test_import_package_is_lazy():
    code = "import sys, omr_workflows; print(sorted(m for m in ('pydantic', 'fsspec', 'xxhash') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_register_and_promote_without_a_policy_import_no_governance(local_registry, tmp_path):
    art = make_artifacts(tmp_path / "pkg")
    got = _probe("--registry", local_registry, "register", "cls/m", "--version", "v1", "--artifacts", str(art),
                 "--no-provenance")
    assert got["code"] == 0
    assert not [m for m in got["heavy"] if m.startswith(("omr_workflows.", "cryptography", "http", "urllib"))], got
