"""The README's quick start: exactly two commands, the second is what CI runs, and the main job
(examples/quickstart/run.sh) runs end to end on a local registry.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def _quickstart_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.split("#", 1)[0].strip()]


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    cmds = _quickstart_commands()
    assert cmds == ["./quickstart.sh", "./run-tests.sh"]
    ci = (REPO / ".ci" / "run").read_text()
    assert "./run-tests.sh" in ci
    for cmd in cmds:
        assert os.access(REPO / cmd, os.X_OK)
    # Both set up the same environment from the repo's own files.
    for script in ("quickstart.sh", "run-tests.sh"):
        assert "scripts/setup.sh" in (REPO / script).read_text()
    assert "-e '.[test]'" in (REPO / "scripts" / "setup.sh").read_text()


def test_main_job_runs_end_to_end(tmp_path):
    env = dict(os.environ, QUICKSTART_DIR=str(tmp_path / "qs"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("OMR_REGISTRY", None)
    proc = subprocess.run(["bash", str(REPO / "examples" / "quickstart" / "run.sh")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "quickstart: OK" in proc.stdout
    assert "with the lock, production still resolves to: 2026-02-13_001" in proc.stdout
    assert (tmp_path / "qs" / "registry" / "tasks" / "celltype_classification_sc").is_dir()
