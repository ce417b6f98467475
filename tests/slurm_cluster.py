"""A real single-node SLURM cluster (slurmctld + slurmd + munged) for tests, started and stopped here.

Everything lives under one temp dir: a generated slurm.conf, a fresh munge key, the munge socket,
state, spool, pid and log files. Nothing is read from or written to /etc, so the cluster also works
from a fresh clone on a machine where `slurm-wlm` and `munge` are merely installed
(`.ci/install-slurm.sh`) and never configured. Ports are picked free, so a system SLURM or a second
test session on the same host does not clash.

The daemons run in the foreground as children of this process and are stopped by PID (SIGTERM,
then SIGKILL). Where util-linux `setpriv` exists they also get a parent-death signal, so a test
process killed outright does not leave daemons behind.

Accounting is off (no slurmdbd), so `sacct` does not work: `wait()` polls `squeue` until the jobs
are gone and then reads the final state from `scontrol show job` (kept for MinJobAge seconds);
tests should still judge success from the files their jobs write.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
DAEMONS = ("slurmctld", "slurmd", "munged", "mungekey")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel")
# Variables of an enclosing SLURM job (tests run inside a real allocation) would steer our client
# commands to the wrong cluster or job; they are dropped from the environment we hand out.
FOREIGN_PREFIXES = ("SLURM_", "SBATCH_", "SALLOC_", "SRUN_", "SQUEUE_", "SINFO_", "SCONTROL_")
NODE = "node1"
PARTITION = "debug"


class SlurmError(RuntimeError):
    """The cluster failed to start, a command failed, or jobs did not finish in time."""


def find_program(name: str) -> str | None:
    """`shutil.which` that also looks in the sbin dirs, which a non-login PATH often lacks."""
    found = shutil.which(name)
    if found:
        return found
    for d in SBIN_DIRS:
        candidate = Path(d) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def missing_reason() -> str | None:
    """Why a cluster cannot be started here, or None when it can (used for pytest skips)."""
    missing = [name for name in DAEMONS + CLIENTS if find_program(name) is None]
    if missing:
        return (f"single-node SLURM not installed (missing: {', '.join(missing)}); "
                "run .ci/install-slurm.sh as root")
    if os.geteuid() != 0:
        return "the single-node SLURM test cluster runs slurmd/slurmctld as root; tests not run as root"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass
class JobState:
    """One job (or array task) as `scontrol show job` reported it after it left the queue."""

    job_id: str
    state: str
    exit_code: str
    array_task: str | None = None

    @property
    def ok(self) -> bool:
        return self.state == "COMPLETED" and self.exit_code == "0:0"


class SlurmCluster:
    """slurmctld + slurmd (one node) + munged under `base` (a fresh temp dir when not given).

    Use as a context manager, or call start() and stop(); stop() is idempotent and always
    stops every daemon this object started.
    """

    def __init__(self, base: str | os.PathLike | None = None, start_timeout: float = 60.0,
                 keep_dir: bool = False):
        # A short base path: the munge socket path must stay under the 108-byte sun_path limit,
        # which deep pytest tmp dirs can exceed.
        self._own_base = base is None
        self.base = Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="omrw-slurm-"))
        self.start_timeout = start_timeout
        self.keep_dir = keep_dir
        self.conf = self.base / "etc" / "slurm.conf"
        self.munge_dir = self.base / "munge"
        self.munge_socket = self.munge_dir / "munge.socket.2"
        self.munge_key = self.base / "etc" / "munge.key"
        self.log_dir = self.base / "log"
        self.cpus = _cpu_count()
        self._procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []
        self.started = False

    # ------------------------------------------------------------------ environment
    @property
    def env(self) -> dict[str, str]:
        """Variables a client command (sbatch, squeue, ...) and a job need to reach this cluster.

        The munge socket comes from AuthInfo in slurm.conf; no MUNGE variable is needed.
        """
        return {"SLURM_CONF": str(self.conf)}

    def environ(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The current process environment, minus an enclosing SLURM job's variables, plus `env`."""
        full = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
        full.update(self.env)
        full.update(extra or {})
        return full

    # ------------------------------------------------------------------ configuration
    def slurm_conf(self) -> str:
        host = socket.gethostname().split(".")[0]
        d = self.base
        lines = [
            "# Generated by tests/slurm_cluster.py: a throw-away single-node cluster.",
            "ClusterName=omrwtest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmdPort={self.slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}",
            f"SlurmctldPidFile={d / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.log_dir / 'slurmctld.log'}",
            f"SlurmdLogFile={self.log_dir / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            # Without a default memory per CPU every job is given the whole node's memory,
            # and jobs run one at a time.
            "DefMemPerCPU=500",
            "MailProg=/bin/true",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "ReturnToService=2",
            # Finished jobs stay visible to `scontrol show job` this long (seconds).
            "MinJobAge=600",
            # A CI machine with less memory than RealMemory must not mark the node INVALID.
            "SlurmdParameters=config_overrides",
            f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=8000 State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
        ]
        return "\n".join(lines) + "\n"

    def _prepare(self) -> None:
        for sub in ("etc", "state", "spool", "run", "log"):
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        # munged refuses a socket dir that others may write to.
        self.munge_dir.mkdir(exist_ok=True)
        os.chmod(self.munge_dir, 0o711)
        os.chmod(self.base, 0o755)
        self.ctld_port = _free_port()
        self.slurmd_port = _free_port()
        while self.slurmd_port == self.ctld_port:
            self.slurmd_port = _free_port()
        self.conf.write_text(self.slurm_conf())

    # ------------------------------------------------------------------ processes
    def _spawn(self, name: str, argv: list[str]) -> None:
        prefix: list[str] = []
        setpriv = shutil.which("setpriv")
        if setpriv:
            prefix = [setpriv, "--pdeathsig", "TERM", "--"]
        out = open(self.log_dir / f"{name}.stdout", "ab")
        self._logs.append(out)
        self._procs[name] = subprocess.Popen(
            prefix + argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=self.environ(), cwd=self.base, start_new_session=True,
        )

    def _run(self, argv: list[str], timeout: float = 30.0, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.environ(), timeout=timeout)
        if check and proc.returncode != 0:
            raise SlurmError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc

    def _wait_for(self, what: str, predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    raise SlurmError(f"{name} exited with {proc.returncode} while waiting for {what}\n{self.logs()}")
            if predicate():
                return
            time.sleep(0.2)
        raise SlurmError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.logs()}")

    def start(self) -> "SlurmCluster":
        reason = missing_reason()
        if reason:
            raise SlurmError(reason)
        if self.started:
            return self
        self.started = True
        try:
            self._prepare()
            if not self.munge_key.exists():
                self._run([find_program("mungekey"), "-c", "-k", str(self.munge_key)])
                os.chmod(self.munge_key, 0o600)
            self._spawn("munged", [
                find_program("munged"), "--foreground",
                f"--socket={self.munge_socket}", f"--key-file={self.munge_key}",
                f"--pid-file={self.base / 'run' / 'munged.pid'}",
                f"--log-file={self.log_dir / 'munged.log'}",
                f"--seed-file={self.base / 'run' / 'munged.seed'}",
            ])
            self._wait_for("the munge socket", self.munge_socket.exists, self.start_timeout)
            self._spawn("slurmctld", [find_program("slurmctld"), "-D", "-c", "-f", str(self.conf)])
            self._spawn("slurmd", [find_program("slurmd"), "-D", "-f", str(self.conf), "-N", NODE])
            self._wait_for(f"node {NODE} to be idle", self._node_idle, self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _node_idle(self) -> bool:
        proc = self._run([find_program("sinfo"), "-h", "-o", "%T"], timeout=10, check=False)
        return proc.returncode == 0 and proc.stdout.split() == ["idle"]

    def _foreign_pids(self) -> list[int]:
        """Processes (job steps, job scripts) that carry our SLURM_CONF in their environment."""
        marker = f"SLURM_CONF={self.conf}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        """Cancel jobs, then stop slurmd, slurmctld and munged by PID; idempotent."""
        if self._procs.get("slurmctld") and self._procs["slurmctld"].poll() is None:
            try:
                self._run([find_program("scancel"), "--partition", PARTITION], timeout=10, check=False)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self.queue():
                    time.sleep(0.3)
            except Exception:
                pass  # best effort: the daemons are stopped below regardless
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None:
                continue
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        self._procs.clear()
        # Job steps are double-forked away from slurmd; kill any that outlived the cancel.
        for pid in self._foreign_pids() if self.started else []:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for f in self._logs:
            f.close()
        self._logs.clear()
        if self.started and self._own_base and not self.keep_dir:
            shutil.rmtree(self.base, ignore_errors=True)
        self.started = False

    def __enter__(self) -> "SlurmCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ diagnostics
    def logs(self, lines: int = 60) -> str:
        """The tail of every daemon log, for failure messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*")) if self.log_dir.exists() else []:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            parts.append(f"----- {path.name} -----\n" + "\n".join(text))
        return "\n".join(parts)

    # ------------------------------------------------------------------ jobs
    def sbatch(self, args: list[str], env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None) -> str:
        """Submit with `sbatch --parsable ARGS`; returns the job id (the array job id for arrays)."""
        proc = subprocess.run([find_program("sbatch"), "--parsable", *args], capture_output=True, text=True,
                              env=self.environ(env), cwd=cwd, timeout=30)
        if proc.returncode != 0:
            raise SlurmError(f"sbatch {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def queue(self) -> list[tuple[str, str, str]]:
        """(array job id or job id, job id, state) for every job still in the queue."""
        proc = self._run([find_program("squeue"), "-h", "-o", "%F %A %T"], timeout=15)
        return [tuple(line.split()) for line in proc.stdout.splitlines() if line.strip()]  # type: ignore[misc]

    def wait(self, job_ids, timeout: float = 300.0) -> dict[str, list[JobState]]:
        """Poll `squeue` until none of `job_ids` (plain or array job ids) is queued or running.

        Returns the final state of each job (each array task) from `scontrol show job`; raises
        SlurmError with the queue and daemon logs on timeout.
        """
        ids = {str(j) for j in ([job_ids] if isinstance(job_ids, (str, int)) else job_ids)}
        deadline = time.monotonic() + timeout
        while True:
            pending = [row for row in self.queue() if row[0] in ids or row[1] in ids]
            if not pending:
                break
            if time.monotonic() > deadline:
                raise SlurmError(f"jobs {sorted(ids)} still queued after {timeout:.0f}s: {pending}\n{self.logs()}")
            time.sleep(0.5)
        return {job_id: self.job_states(job_id) for job_id in ids}

    def job_states(self, job_id: str) -> list[JobState]:
        """Final state of a job or of every task of an array job; empty once SLURM forgot it."""
        proc = self._run([find_program("scontrol"), "-o", "show", "job", str(job_id)], timeout=15, check=False)
        states = []
        for line in proc.stdout.splitlines():
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if "JobId" in fields:
                states.append(JobState(fields["JobId"], fields.get("JobState", "?"), fields.get("ExitCode", "?"),
                                       fields.get("ArrayTaskId")))
        return states
