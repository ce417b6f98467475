process OMR_LOCK {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(refs)

    output:
    tuple val(meta), path("${prefix}.omr.lock.json"), emit: lock
    tuple val(meta), path("${prefix}.lock-result.json"), emit: json
    path "omr_provenance/*.json", topic: omr_provenance, emit: provenance
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    // The trust root (`omrw trust`, e.g. `ext.trust = { params.omr_trust }`): a protected alias that is not
    // an approved promotion, or a rewritten audit chain, fails the task (exit 1). Unset: $OMR_TRUST, ./omr-trust.json, ...
    def trust = task.ext.trust ? "--trust '${task.ext.trust}'" : ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    export OMR_ENGINE=nextflow OMR_RUN_DIR=omr_provenance NXF_TASK_NAME="${task.process} (${meta.id})"
    omrw lock \\
        ${refs.join(' ')} \\
        -o ${prefix}.omr.lock.json \\
        --json \\
        ${trust} \\
        ${args} \\
        > ${prefix}.lock-result.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo '{"stub": true, "models": []}' > ${prefix}.omr.lock.json
    echo '{"stub": true}' > ${prefix}.lock-result.json
    mkdir -p omr_provenance
    echo '{"kind": "lock", "stub": true}' > omr_provenance/stub-lock-${prefix}.json
    """
}
