process OMR_VERIFYMERGE {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(reports, stageAs: 'shards/*')

    output:
    tuple val(meta), path("${prefix}.merged.json"), emit: report
    tuple val(meta), path("${prefix}.verify-merge.json"), emit: json
    path "omr_provenance/*.json", optional: true, topic: omr_provenance, emit: provenance
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    export OMR_ENGINE=nextflow NXF_TASK_NAME="${task.process} (${meta.id})"
    omrw verify-merge \\
        ${reports} \\
        --report ${prefix}.merged.json \\
        --provenance-dir omr_provenance \\
        --json \\
        ${args} \\
        > ${prefix}.verify-merge.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo '{"schema": "omr-verify-merged/1", "ok": true, "stub": true}' > ${prefix}.merged.json
    echo '{"ok": true, "stub": true}' > ${prefix}.verify-merge.json
    """
}
