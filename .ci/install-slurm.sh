#!/usr/bin/env bash
# Install a single-node SLURM (Debian slurm-wlm + munge) for the `slurm`-marked tests.
#
# Never fails CI: where it cannot install (not root, no apt-get, apt fails), it says why and
# exits 0, and the tests that need SLURM then skip with a reason. Idempotent: does nothing
# (and touches no network) when slurmctld, slurmd, sbatch and munged are already installed.
# The Debian packages' services are not started here; tests start their own daemons with a
# generated slurm.conf under a temp dir (tests/slurm_cluster.py).
set -euo pipefail

have_all() {
    local cmd
    for cmd in slurmctld slurmd sbatch squeue sinfo munged mungekey; do
        command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || return 1
    done
}

version() {
    # slurmctld -V needs no slurm.conf (sinfo --version does).
    PATH="$PATH:/usr/sbin:/sbin" slurmctld -V 2>/dev/null || echo "slurm version unknown"
}

if have_all; then
    echo "install-slurm: SLURM and munge already installed ($(version))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-slurm: not root; skipping SLURM install (SLURM tests will be skipped)" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-slurm: apt-get not found; skipping SLURM install (SLURM tests will be skipped)" >&2
    exit 0
fi

echo "install-slurm: installing slurm-wlm and munge with apt-get"
if ! apt-get update -qq; then
    echo "install-slurm: apt-get update failed; SLURM tests will be skipped" >&2
    exit 0
fi
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge; then
    echo "install-slurm: apt-get install slurm-wlm munge failed; SLURM tests will be skipped" >&2
    exit 0
fi

if have_all; then
    echo "install-slurm: installed ($(version))"
else
    echo "install-slurm: packages installed but some SLURM/munge commands are still missing; SLURM tests will be skipped" >&2
fi
exit 0
