#!/usr/bin/env bash
# Write these components in the layout nf-core tools reads into OUT_DIR (e.g. a checkout of a
# branch `nf-core` that CI refreshes), so that
#   nf-core modules      --git-remote <repo> --branch nf-core install omr/verify
#   nf-core subworkflows --git-remote <repo> --branch nf-core install omr_verify_parallel
# work. nf-core tools only looks in modules/<org_path>/ and subworkflows/<org_path>/, names a
# module by its process (OMR_VERIFY -> omr/verify), and tracks versions by the git history of
# those paths (so a symlink to nextflow_modules/ lists but does not install). Layout written:
#   .nf-core.yml                         repository_type: modules, org_path: omr
#   modules/omr/omr/<op>/                nextflow_modules/omr/<op>/
#   modules/omr/tests/                   nextflow_modules/tests/ (nf-test data and config)
#   subworkflows/omr/<name>/             nextflow_modules/subworkflows/<name>/, includes rewritten
# Usage: make_nf_core_layout.sh OUT_DIR
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: make_nf_core_layout.sh OUT_DIR}
mkdir -p "$out"
rm -rf "$out/modules/omr" "$out/subworkflows/omr"
mkdir -p "$out/modules/omr" "$out/subworkflows/omr"
cp -R "$src/omr" "$out/modules/omr/omr"
cp -R "$src/tests" "$out/modules/omr/tests"
cp "$src/nf-test.config" "$out/modules/omr/nf-test.config"
for dir in "$src"/subworkflows/*/; do
    name=$(basename "$dir")
    dest="$out/subworkflows/omr/$name"
    cp -R "$dir" "$dest"
    # ../../omr/<op>/main (beside nextflow_modules/omr) -> ../../../modules/omr/omr/<op>/main
    sed -e "s#from '../../omr/#from '../../../modules/omr/omr/#" "$dir/main.nf" > "$dest/main.nf"
    if [ -f "$dir/tests/main.nf.test" ]; then
        sed -e 's#script "../../../omr/#script "../../../../modules/omr/omr/#' \
            -e 's#${moduleDir}/../../tests/#${moduleDir}/../../../modules/omr/tests/#' \
            "$dir/tests/main.nf.test" > "$dest/tests/main.nf.test"
    fi
done
printf 'repository_type: modules\norg_path: omr\n' > "$out/.nf-core.yml"
