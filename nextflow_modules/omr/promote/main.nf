process OMR_PROMOTE {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(ref), val(alias)

    output:
    tuple val(meta), path("${prefix}.promote.json"), emit: json
    path "omr_provenance/*.json", topic: omr_provenance, emit: provenance
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    export OMR_ENGINE=nextflow OMR_RUN_DIR=omr_provenance NXF_TASK_NAME="${task.process} (${meta.id})"
    omrw promote \\
        '${ref}' \\
        --to '${alias}' \\
        --json \\
        ${args} \\
        > ${prefix}.promote.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo '{"kind": "promote", "alias": "${alias}", "ref": "${ref}", "stub": true}' > ${prefix}.promote.json
    mkdir -p omr_provenance
    echo '{"kind": "promote", "stub": true}' > omr_provenance/stub-promote-${prefix}.json
    """
}
