#!/usr/bin/env bash
# The air-gap recipe end to end on two local registries (README: "Ship a pipeline with its models...").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export PATH="$root/.venv/bin:$PATH"
work="${WORK:-$here/work}"
rm -rf "$work" && mkdir -p "$work/pkg"
cd "$work"
M=celltype_classification_sc/human_pbmc
head -c 1048576 /dev/urandom > pkg/model.pt
echo '{"auc": 0.97}' > pkg/metrics.json

# --- training site -------------------------------------------------------------------------
export OMR_REGISTRY="$work/training"
omrw keygen -o root >/dev/null && omrw keygen -o alice >/dev/null && omrw keygen -o bob >/dev/null
omrw trust root.pub -o trust.json >/dev/null
cat > policy.json <<JSON
{"serial": 1,
 "signers": [{"id": "alice", "name": "Alice", "email": "alice@lab.org", "public_key": $(python3 -c 'import json;print(json.dumps(open("alice.pub").read()))')},
             {"id": "bob", "name": "Bob", "email": "bob@lab.org", "public_key": $(python3 -c 'import json;print(json.dumps(open("bob.pub").read()))')}],
 "rules": [{"match": "*", "protected_aliases": ["production"], "approvals_required": 1}]}
JSON
omrw policy set policy.json --key root.key >/dev/null
export OMR_TRUST="$work/trust.json"
omrw register "$M" --version 2026-02-13_001 --artifacts pkg --sign alice.key --no-provenance >/dev/null
omrw promote "$M@2026-02-13_001" --to production --key alice.key >/dev/null      # a request
omrw approve "$M@2026-02-13_001" --to production --key bob.key --reason "val AUC 0.97" >/dev/null
omrw lock "$M@production" -o omr.lock.json >/dev/null

omrw export --lock omr.lock.json -o models.omrb --dry-run
omrw export --lock omr.lock.json -o models.omrb

# --- the air-gapped cluster ---------------------------------------------------------------
export OMR_REGISTRY="$work/cluster" OMR_OFFLINE=1
omrw import models.omrb --key alice.key
omrw history "$M"
omrw audit
omrw verify "$M@2026-02-13_001" --mode strict
echo "pipeline gets: $(omrw resolve --lock omr.lock.json "$M@production")"

# --- mirror (e.g. bucket -> login node), twice: the second copies nothing ------------------
omrw mirror "$work/training" "$work/mirror" --lock omr.lock.json --key alice.key
omrw mirror "$work/training" "$work/mirror" --lock omr.lock.json --key alice.key
