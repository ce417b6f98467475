#!/usr/bin/env bash
# Make a registry for `-profile test`: the toy model as celltype/pbmc@2026-01-01_001, promoted to
# production. Usage: make_test_registry.sh [REGISTRY]   (default: ./omr-test-registry)
set -euo pipefail
registry=${1:-omr-test-registry}
here=$(cd "$(dirname "$0")" && pwd)
omrw register celltype/pbmc --registry "$registry" --version 2026-01-01_001 \
    --artifacts "$here/toy_model" --reason "example pipeline test model" --no-provenance
omrw promote celltype/pbmc@2026-01-01_001 --registry "$registry" --to production --reason "example pipeline"
