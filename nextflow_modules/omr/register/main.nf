process OMR_REGISTER {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(model), val(version), path(artifacts)

    output:
    tuple val(meta), path("${prefix}.register.json"), emit: json
    path "omr_provenance/*.json", topic: omr_provenance, emit: provenance
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    export OMR_ENGINE=nextflow OMR_RUN_DIR=omr_provenance NXF_TASK_NAME="${task.process} (${meta.id})"
    omrw register \\
        '${model}' \\
        --version '${version}' \\
        --artifacts ${artifacts} \\
        --json \\
        ${args} \\
        > ${prefix}.register.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo '{"ok": true, "task": "stub", "model_name": "stub", "version": "${version}", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "uri": "omr://${model}@${version}", "stub": true}' > ${prefix}.register.json
    mkdir -p omr_provenance
    echo '{"kind": "register", "stub": true}' > omr_provenance/stub-register-${prefix}.json
    """
}
