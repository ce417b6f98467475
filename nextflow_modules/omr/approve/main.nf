process OMR_APPROVE {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(ref), val(alias), path(key, stageAs: 'omr_signing.key')

    output:
    tuple val(meta), path("${prefix}.approve.json"), emit: json
    path "omr_provenance/*.json", topic: omr_provenance, emit: provenance
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    // The trust root (`omrw trust`): only a policy it signed is obeyed. Unset: $OMR_TRUST, ./omr-trust.json, ...
    def trust = task.ext.trust ? "--trust '${task.ext.trust}'" : ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // The approval is an event signed with the approver's key (staged as omr_signing.key). When it
    // completes the policy's quorum, omrw moves the alias in the same call ("moved": true).
    // A refused approval (the requester's own key, the same key twice, a key the policy does not
    // list, no pending request) fails the task with exit 4.
    """
    export OMR_ENGINE=nextflow OMR_RUN_DIR=omr_provenance NXF_TASK_NAME="${task.process} (${meta.id})"
    omrw approve \\
        '${ref}' \\
        --to '${alias}' \\
        --key ${key} \\
        --json \\
        ${trust} \\
        ${args} \\
        > ${prefix}.approve.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo '{"kind": "approve", "alias": "${alias}", "ref": "${ref}", "moved": false, "stub": true}' > ${prefix}.approve.json
    mkdir -p omr_provenance
    echo '{"kind": "approve", "stub": true}' > omr_provenance/stub-approve-${prefix}.json
    """
}
