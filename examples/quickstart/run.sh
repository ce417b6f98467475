#!/usr/bin/env bash
# The core life cycle on a local registry: register two versions, promote, resolve,
# verify (fast and strict), pin in a lock file, audit the promotion trail.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${QUICKSTART_DIR:-$here/work}"
export OMR_REGISTRY="${OMR_REGISTRY:-$work/registry}"
rm -rf "$work" && mkdir -p "$work"
cd "$work"
model=celltype_classification_sc/human_pbmc

for v in 2026-02-13_001 2026-02-14_001; do
    mkdir -p "pkg-$v"
    python3 -c "import json,random,sys; random.seed(sys.argv[1]); json.dump({'centroids': [[random.random() for _ in range(4)] for _ in range(2)]}, open(sys.argv[2], 'w'))" "$v" "pkg-$v/model.json"
    printf 'CD3E\nCD4\nCD8A\nMS4A1\n' > "pkg-$v/model_genes.txt"
    echo '{"0": "T cell", "1": "B cell"}' > "pkg-$v/label_map.json"
    echo '{"val_auc": 0.97}' > "pkg-$v/metrics.json"
    omrw register "$model" --version "$v" --artifacts "pkg-$v" --param lr=0.01 --reason "quickstart"
done

omrw promote "$model@2026-02-13_001" --to production --reason "val AUC 0.97"
omrw promote "$model@2026-02-14_001" --to staging --reason "candidate"
echo "production is at: $(omrw resolve "$model@production" --verify strict)"
omrw verify --all --mode fast
omrw lock "$model@production" -o omr.lock.json
omrw promote "$model@2026-02-14_001" --to production --reason "better on holdout"
echo "with the lock, production still resolves to: $(omrw resolve "$model@production" --lock omr.lock.json --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')"
omrw lock --check omr.lock.json
omrw history "$model"
omrw list
omrw audit
echo "quickstart: OK (registry at $OMR_REGISTRY)"
