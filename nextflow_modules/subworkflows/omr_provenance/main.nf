//
// Collect the provenance records every omr module emits on the `omr_provenance` topic into one
// report for the run: omr_provenance.json, a Workflow Run RO-Crate (ro-crate-metadata.json),
// omr_provenance.md and omr_provenance.html. Publish it with the run, e.g.
// `withName: 'OMR_PROVENANCECOLLECT' { publishDir = [ path: "${params.outdir}/provenance", mode: 'copy' ] }`.
//
// nf-prov (`prov.formats.wrroc`) writes its own Workflow Run RO-Crate when the run completes,
// after every task: join ours to it then, with
// `omrw provenance merge-into <its crate folder> --report <published>/omr_provenance/omr_provenance.json`
// (adds the model versions to its run action; removes or changes none of its entities).
//

include { OMR_PROVENANCECOLLECT } from '../../omr/provenancecollect/main'

workflow OMR_PROVENANCE {

    take:
    ch_records  // channel: [ path(json) ]  usually channel.topic('omr_provenance'); closes when the producers finish
    val_name    // string: report name, the meta.id of the collect task (e.g. 'omr_provenance')

    main:
    // `collect` waits for the topic to close, i.e. for every task that can still add a record.
    // `ifEmpty([])` still writes a report (saying no model was used) when no record came in.
    ch_all = ch_records
        .collect()
        .ifEmpty([])
        .map { records -> [ [ id: val_name ], records ] }

    OMR_PROVENANCECOLLECT ( ch_all )

    emit:
    report = OMR_PROVENANCECOLLECT.out.report  // channel: [ val(meta), path(dir) ]
    json   = OMR_PROVENANCECOLLECT.out.json    // channel: [ val(meta), path(omr_provenance.json) ]
    crate  = OMR_PROVENANCECOLLECT.out.crate   // channel: [ val(meta), path(ro-crate-metadata.json) ]
    html   = OMR_PROVENANCECOLLECT.out.html    // channel: [ val(meta), path(omr_provenance.html) ]
}
