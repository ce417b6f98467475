#!/usr/bin/env nextflow
//
// Example: classify cells with the production model from an omr registry, on a laptop or a
// SLURM cluster, with the model's exact version and digest in the run's provenance report.
//
//   resolve celltype/pbmc@production -> pin its digest
//     -> verify those bytes in N shards (one task per shard) and merge
//     -> copy the verified version into the work dir -> toy inference
//   every omr task's provenance record -> one JSON + RO-Crate + HTML report in results/provenance
//
// nextflow run examples/nextflow -profile test -stub     (no registry needed)
// nextflow run examples/nextflow -profile test,conda --omr_registry /path/to/registry
//

include { OMR_RESOLVE         } from '../../nextflow_modules/omr/resolve/main'
include { OMR_FETCH           } from '../../nextflow_modules/omr/fetch/main'
include { OMR_VERIFY_PARALLEL } from '../../nextflow_modules/subworkflows/omr_verify_parallel/main'
include { OMR_PROVENANCE      } from '../../nextflow_modules/subworkflows/omr_provenance/main'

process TOY_INFERENCE {
    tag "${meta.id}"
    label 'process_single'

    input:
    tuple val(meta), path(model), path(cells)

    output:
    tuple val(meta), path("${meta.id}.predictions.tsv"), emit: predictions

    script:
    """
    toy_infer.py --model ${model} --cells ${cells} --out ${meta.id}.predictions.tsv
    """

    stub:
    """
    printf 'cell\\tlabel\\n' > ${meta.id}.predictions.tsv
    """
}

workflow {
    ch_model = channel.of([ [ id: params.model_id ], params.model_ref ])
    ch_cells = channel.fromPath(params.cells, checkIfExists: true)

    // The alias is read once; everything after uses the digest it pointed to, so a promotion
    // during the run cannot mix two versions.
    OMR_RESOLVE ( ch_model )

    OMR_VERIFY_PARALLEL (
        OMR_RESOLVE.out.pinned.map { meta, pinned -> [ meta, [ pinned ], params.verify_mode ] },
        params.verify_shards
    )

    OMR_FETCH ( OMR_RESOLVE.out.pinned )

    // Inference waits for the merged verification of the same model (join on meta).
    ch_verified_model = OMR_FETCH.out.model
        .join ( OMR_VERIFY_PARALLEL.out.report )
        .map { meta, model, merged -> [ meta, model ] }

    TOY_INFERENCE ( ch_verified_model.combine ( ch_cells ) )

    OMR_PROVENANCE ( channel.topic('omr_provenance'), 'omr_provenance' )
}
