#!/usr/bin/env bash
# Quick start, step 1: set up .venv and run the main job end to end on a local registry.
set -euo pipefail
cd "$(dirname "$0")"
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
bash examples/quickstart/run.sh
if [ -f examples/snakemake/run.sh ]; then
    bash examples/snakemake/run.sh
fi
