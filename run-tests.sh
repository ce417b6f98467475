#!/usr/bin/env bash
# Quick start, step 2: set up .venv (and, as root, a single-node SLURM and headless Chromium) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
if [ -f .ci/install-slurm.sh ]; then
    bash .ci/install-slurm.sh
fi
# Headless Chromium for the catalog's browser tests (as root; they skip without it otherwise).
if [ -f .ci/install-chromium.sh ]; then
    bash .ci/install-chromium.sh
fi
export PATH="$PWD/.venv/bin:$PATH"
# Three workers on two cores: most of the suite waits (subprocesses, leases, SLURM, Snakemake start-up).
exec .venv/bin/python -m pytest -n 3 --dist loadgroup "$@"
