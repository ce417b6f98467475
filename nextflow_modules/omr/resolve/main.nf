process OMR_RESOLVE {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(ref)

    output:
    tuple val(meta), path("${prefix}.resolve.json"), emit: json
    tuple val(meta), env('OMR_PINNED'), emit: pinned
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
    export OMR_ENGINE=nextflow NXF_TASK_NAME="${task.process} (${meta.id})"
    omrw resolve \\
        '${ref}' \\
        --json \\
        --provenance-dir omr_provenance \\
        ${trust} \\
        ${args} \\
        > ${prefix}.resolve.json

    # The exact version as a digest reference: downstream tasks (verify, fetch) then use
    # these bytes even if the alias moves while the pipeline runs.
    OMR_PINNED=\$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["task"] + "/" + r["model"] + "@" + r["digest"] + ("#" + r["file"] if r.get("file") else ""))' ${prefix}.resolve.json)
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p omr_provenance
    echo '{"ref": "${ref}", "task": "stub", "model": "stub", "version": "stub", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "path": "stub"}' > ${prefix}.resolve.json
    echo '{"kind": "resolve", "ref": "${ref}", "stub": true}' > omr_provenance/stub-resolve-${prefix}.json
    OMR_PINNED='stub/stub@sha256:0000000000000000000000000000000000000000000000000000000000000000'
    """
}
