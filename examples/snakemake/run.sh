#!/usr/bin/env bash
# The Snakemake example end to end on a local registry (safe to run again):
#   1. training workflow: train a toy classifier, register it, promote it to production
#   2. inference workflow: use the production model through storage.omr(...) and the rule library
#   3. snakemake --report: an HTML report whose Provenance section is the pinned-models table
#
# Everything goes to $WORKDIR (default: examples/snakemake/work); the registry is
# $OMR_REGISTRY, else $WORKDIR/registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work="${WORKDIR:-$here/work}"
export OMR_REGISTRY="${OMR_REGISTRY:-$work/registry}"
python="${PYTHON:-python3}"
mkdir -p "$work"

# Snakemake finds storage plugins only on sys.path (pkgutil.iter_modules). If this install
# hides the plugin (a default setuptools editable install does), use the checkout's copy.
if ! "$python" -c 'import pkgutil, sys; sys.exit(not any(m.name == "snakemake_storage_plugin_omr" for m in pkgutil.iter_modules()))'; then
    repo="$(cd "$here/../.." && pwd)"
    if [ -d "$repo/snakemake_storage_plugin_omr" ]; then
        echo "note: snakemake_storage_plugin_omr is not visible on sys.path; using $repo" >&2
        export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
    fi
fi

smk=("$python" -m snakemake --snakefile "$here/Snakefile" --directory "$work" --cores "${CORES:-2}" "$@")
"${smk[@]}" publish
"${smk[@]}"
"${smk[@]}" --report "$work/report.html"

echo
echo "registry:    $OMR_REGISTRY"
echo "predictions: $work/results/predictions/"
echo "provenance:  $work/results/omr/provenance/omr_provenance.md"
echo "report:      $work/report.html"
sed -n '1,12p' "$work/results/omr/provenance/omr_provenance.md"
