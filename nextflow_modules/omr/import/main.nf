process OMR_IMPORT {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(bundle)

    output:
    tuple val(meta), path("${prefix}.import.json"), emit: json
    // One record per version brought in (and per alias moved): none when everything was present.
    path "omr_provenance/*.json", optional: true, topic: omr_provenance, emit: provenance
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    // The trust root (`omrw trust`): the bundle's signatures are checked against it, and only a policy
    // it signed is obeyed. Unset: $OMR_TRUST, ./omr-trust.json, ...
    def trust = task.ext.trust ? "--trust '${task.ext.trust}'" : ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // The target registry is $OMR_REGISTRY or `--registry URL` in ext.args (`--aliases` there moves its
    // aliases too). omrw checks the whole bundle before anything is visible: a damaged member fails the
    // task with exit 1 (2 when malformed), a version of the same name with another digest with exit 4;
    // a version already present with the same digest is a no-op ("status": "present").
    """
    export OMR_ENGINE=nextflow OMR_RUN_DIR=omr_provenance NXF_TASK_NAME="${task.process} (${meta.id})"
    omrw import \\
        ${bundle} \\
        --json \\
        ${trust} \\
        ${args} \\
        > ${prefix}.import.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo '{"ok": true, "bundle": "${bundle}", "bundle_digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "versions": [], "aliases": [], "files_copied": 0, "bytes_copied": 0, "stub": true}' > ${prefix}.import.json
    """
}
