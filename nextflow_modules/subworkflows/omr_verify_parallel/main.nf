//
// Verify registered versions in parallel: plan N byte-balanced shards once, run OMR_VERIFY once
// per shard (each its own task, so on a cluster each lands on its own node), then merge. The
// merge proves that every planned unit was verified exactly once and fails the run naming every
// bad file of every shard; a missing shard fails it too.
//

include { OMR_VERIFYPLAN  } from '../../omr/verifyplan/main'
include { OMR_VERIFY      } from '../../omr/verify/main'
include { OMR_VERIFYMERGE } from '../../omr/verifymerge/main'

workflow OMR_VERIFY_PARALLEL {

    take:
    ch_targets  // channel: [ val(meta), val(refs), val(mode) ]  refs: [] = the whole registry; mode: 'fast' | 'strict'
    val_shards  // integer: number of shards N (one OMR_VERIFY task each)

    main:
    OMR_VERIFYPLAN ( ch_targets, val_shards )

    // One task per shard of the plan. Every shard re-plans from the same arguments (planning is
    // deterministic) and its report carries the plan digest, so a registry that changes between
    // plan and shards is caught by the merge instead of going unnoticed.
    ch_shards = OMR_VERIFYPLAN.out.plan
        .flatMap { meta, refs, mode, plan ->
            def header = new groovy.json.JsonSlurper().parseText(plan.text)
            def n = header.shard_count as Integer
            (1..n).collect { i ->
                [ meta + [ id: "${meta.id}_shard${i}of${n}", shard: i, shards: n, parent: meta ], refs, mode, "${i}/${n}" ]
            }
        }

    OMR_VERIFY ( ch_shards )

    // Merge as soon as the last shard of a plan finishes (groupKey knows how many to expect).
    ch_to_merge = OMR_VERIFY.out.report
        .map { meta, report -> [ groupKey(meta.parent, meta.shards), report ] }
        .groupTuple()
        .map { key, reports -> [ key.getGroupTarget(), reports.sort { it.name } ] }

    OMR_VERIFYMERGE ( ch_to_merge )

    emit:
    report  = OMR_VERIFYMERGE.out.report  // channel: [ val(meta), path(merged.json) ]  only for plans that passed
    shards  = OMR_VERIFY.out.report       // channel: [ val(meta), path(report.json) ]  meta.parent: the input meta
    plan    = OMR_VERIFYPLAN.out.plan     // channel: [ val(meta), val(refs), val(mode), path(plan.json) ]
}
