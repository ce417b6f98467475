process OMR_FETCH {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(ref)

    output:
    tuple val(meta), path("${prefix}"), emit: model
    tuple val(meta), path("${prefix}.resolve.json"), emit: json
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

    # Copy (never link) the resolved version into the work dir: the task output then stays valid
    # and complete wherever the work dir lives, and a registry on another filesystem, on an object
    # store (the local cache) or behind a mount that jobs cannot see is read exactly once.
    # A `#FILE` reference copies that one file, under its path in the version.
    src=\$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["path"])' ${prefix}.resolve.json)
    rel=\$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); print(r["file"] or "")' ${prefix}.resolve.json)
    if [ -n "\$rel" ]; then
        mkdir -p "${prefix}/\$(dirname "\$rel")"
        cp "\$src/\$rel" "${prefix}/\$rel"
    else
        cp -R "\$src" "${prefix}"
    fi
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix} omr_provenance
    touch ${prefix}/model.pt
    echo '{"ref": "${ref}", "task": "stub", "model": "stub", "version": "stub", "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "path": "stub", "file": null}' > ${prefix}.resolve.json
    echo '{"kind": "resolve", "ref": "${ref}", "stub": true}' > omr_provenance/stub-fetch-${prefix}.json
    """
}
