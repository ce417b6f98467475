#!/usr/bin/env bash
# Submit a SLURM job array that verifies every model of a registry in N shards, plus a merge job
# that runs after the whole array (whatever its outcome) and proves full coverage.
#
# Usage: submit.sh [options] [-- extra sbatch options for both jobs, e.g. --partition=P --time=1:00:00]
#   -n, --shards N          number of shards (array tasks); default: planned from the registry size
#   -o, --out DIR           directory for reports and logs (default ./omrw-verify-YYYYmmdd-HHMMSS);
#                           must be on a filesystem that every compute node sees, and new or empty
#   -r, --registry URL      registry (default $OMR_REGISTRY)
#   -m, --mode fast|strict  verification mode (default $OMR_VERIFY_MODE, else fast)
#   --max-parallel K        run at most K array tasks at once (sbatch --array=...%K)
#   --bytes-per-shard SIZE  target bytes per shard when planning N (default 50G; K/M/G/T suffixes)
#   --max-shards M          upper bound when planning N (default 64)
#
# Prints, on stdout, shell assignments for scripts (eval "$(./submit.sh ...)"):
#   OMRW_ARRAY_JOB=<array job id>  OMRW_MERGE_JOB=<merge job id>  OMRW_SHARDS=<N>  OMRW_OUT=<dir>
# Results: OUT/merged.json and OUT/merge.exit (0 = every byte verified; 1 = a mismatch, a failed
# or missing shard). Job logs are in OUT/logs/.
set -euo pipefail

HERE=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
PYTHON=${PYTHON:-python3}

die() {
    echo "submit.sh: error: $1" >&2
    exit "${2:-2}"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit "${1:-0}"
}

to_bytes() {
    local v=$1 n unit
    n=${v%[KkMmGgTt]}
    unit=${v#"$n"}
    [[ $n =~ ^[0-9]+$ ]] || die "not a size: '$v' (use e.g. 500M or 50G)"
    case $unit in
        "") echo "$n" ;;
        [Kk]) echo $((n * 1024)) ;;
        [Mm]) echo $((n * 1024 ** 2)) ;;
        [Gg]) echo $((n * 1024 ** 3)) ;;
        [Tt]) echo $((n * 1024 ** 4)) ;;
    esac
}

need_value() {
    [ "$#" -ge 2 ] || die "option $1 needs a value"
}

N=${OMRW_SHARDS:-}
OUT=""
MODE=${OMR_VERIFY_MODE:-fast}
MAX_PARALLEL=""
BYTES_PER_SHARD=$((50 * 1024 ** 3))
MAX_SHARDS=64
while [ "$#" -gt 0 ]; do
    case $1 in
        -n | --shards) need_value "$@"; N=$2; shift 2 ;;
        -o | --out) need_value "$@"; OUT=$2; shift 2 ;;
        -r | --registry) need_value "$@"; export OMR_REGISTRY=$2; shift 2 ;;
        -m | --mode) need_value "$@"; MODE=$2; shift 2 ;;
        --max-parallel) need_value "$@"; MAX_PARALLEL=$2; shift 2 ;;
        --bytes-per-shard) need_value "$@"; BYTES_PER_SHARD=$(to_bytes "$2"); shift 2 ;;
        --max-shards) need_value "$@"; MAX_SHARDS=$2; shift 2 ;;
        -h | --help) usage 0 ;;
        --) shift; break ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done
SBATCH_EXTRA=("$@")

[ -n "${OMR_REGISTRY:-}" ] || die "no registry: pass --registry URL or export OMR_REGISTRY"
case $MODE in fast | strict) ;; *) die "--mode must be fast or strict, not '$MODE'" ;; esac
[[ $MAX_SHARDS =~ ^[1-9][0-9]*$ ]] || die "--max-shards must be a positive integer, not '$MAX_SHARDS'"
[ -z "$N" ] || [[ $N =~ ^[1-9][0-9]*$ ]] || die "--shards must be a positive integer, not '$N'"
[ -z "$MAX_PARALLEL" ] || [[ $MAX_PARALLEL =~ ^[1-9][0-9]*$ ]] || die "--max-parallel must be a positive integer, not '$MAX_PARALLEL'"
command -v omrw >/dev/null 2>&1 || die "omrw not on PATH (activate the environment that has omr-workflows)"
command -v sbatch >/dev/null 2>&1 || die "sbatch not on PATH"

OUT=${OUT:-omrw-verify-$(date +%Y%m%d-%H%M%S)}
mkdir -p -- "$OUT/logs"
OUT=$(cd -- "$OUT" && pwd)
shopt -s nullglob
stale=("$OUT"/shard-*.json)
shopt -u nullglob
# Old shard reports would be merged with the new ones.
if [ "${#stale[@]}" -gt 0 ] || [ -e "$OUT/merged.json" ]; then
    die "$OUT already holds reports from an earlier run; choose a new --out"
fi

plan() {  # plan N -> writes the plan JSON to stdout; omrw's own error and exit code on failure
    omrw verify --plan --shards "$1" --all --mode "$MODE" --json
}

plan_total() {  # plan_total FILE FIELD -> the sum of FIELD (units, bytes) over the plan's shards
    "$PYTHON" -c 'import json, sys; print(sum(s[sys.argv[2]] for s in json.load(open(sys.argv[1]))["shards"]))' "$1" "$2"
}

if [ -z "$N" ]; then
    plan 1 > "$OUT/plan-1.json" || die "omrw verify --plan failed (see above)" $?
    total_bytes=$(plan_total "$OUT/plan-1.json" bytes)
    total_units=$(plan_total "$OUT/plan-1.json" units)
    rm -f -- "$OUT/plan-1.json"
    if [ "$total_units" -eq 0 ]; then
        echo "submit.sh: the registry $OMR_REGISTRY holds nothing to verify; no jobs submitted" >&2
        exit 0
    fi
    N=$(((total_bytes + BYTES_PER_SHARD - 1) / BYTES_PER_SHARD))
    [ "$N" -ge 1 ] || N=1
    [ "$N" -le "$MAX_SHARDS" ] || N=$MAX_SHARDS
    [ "$N" -le "$total_units" ] || N=$total_units
    echo "submit.sh: planned $N shard(s) for $total_units unit(s), $total_bytes byte(s)" >&2
fi

# The plan the shards will follow, kept beside the reports (its digest is in every shard report).
plan "$N" > "$OUT/plan.json" || die "omrw verify --plan failed (see above)" $?

export OMR_VERIFY_MODE=$MODE
ARRAY="0-$((N - 1))${MAX_PARALLEL:+%$MAX_PARALLEL}"
array_job=$(sbatch --parsable --export=ALL --array="$ARRAY" \
    --output="$OUT/logs/verify-%A_%a.out" --error="$OUT/logs/verify-%A_%a.err" \
    "${SBATCH_EXTRA[@]}" "$HERE/verify-array.sbatch" "$OUT" "$N")
array_job=${array_job%%;*}
# An array without its merge would verify without ever reporting: cancel it if the merge is refused.
if ! merge_job=$(sbatch --parsable --export=ALL --dependency="afterany:$array_job" \
    --output="$OUT/logs/merge-%j.out" --error="$OUT/logs/merge-%j.err" \
    "${SBATCH_EXTRA[@]}" "$HERE/merge.sbatch" "$OUT"); then
    scancel "$array_job" || true
    die "submitting the merge job failed (see above); array job $array_job cancelled" 5
fi
merge_job=${merge_job%%;*}

echo "submit.sh: verification array $array_job ($N shards) and merge job $merge_job submitted; results in $OUT" >&2
printf 'OMRW_ARRAY_JOB=%q\nOMRW_MERGE_JOB=%q\nOMRW_SHARDS=%q\nOMRW_OUT=%q\n' "$array_job" "$merge_job" "$N" "$OUT"
