process OMR_VERIFY {
    tag "${meta.id}"
    label 'process_low'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(refs), val(mode), val(shard)

    output:
    tuple val(meta), path("${prefix}.report.json"), emit: report
    tuple val(meta), path("${prefix}.verify.json"), emit: json
    path "omr_provenance/*.json", optional: true, topic: omr_provenance, emit: provenance
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    // The trust root (`omrw trust`, e.g. `ext.trust = { params.omr_trust }`): a protected alias that is not
    // an approved promotion, or a rewritten audit chain, fails the task (exit 1). Unset: $OMR_TRUST, ./omr-trust.json, ...
    def trust = task.ext.trust ? "--trust '${task.ext.trust}'" : ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // No references means every version in the registry; ['--model', 'TASK/MODEL'] works too.
    def targets = refs ? refs.join(' ') : '--all'
    """
    export OMR_ENGINE=nextflow NXF_TASK_NAME="${task.process} (${meta.id})"
    status=0
    omrw verify \\
        --shard ${shard} \\
        --mode ${mode} \\
        --jobs ${task.cpus} \\
        --report ${prefix}.report.json \\
        --provenance-dir omr_provenance \\
        --json \\
        ${trust} \\
        ${args} \\
        ${targets} \\
        > ${prefix}.verify.json || status=\$?

    # Exit 1 is a mismatch. One shard of several only holds part of the evidence: its report
    # goes on to OMR_VERIFYMERGE, which fails the run naming every bad file of every shard
    # (and fails on a missing shard). A whole run (shard 1/1) is its own verdict. Any other
    # code (bad input, not found, storage) fails the task here.
    if [ "\$status" -eq 1 ] && [ "${shard}" != "1/1" ] && [ -s ${prefix}.report.json ]; then
        echo "omrw verify: shard ${shard} found mismatches; OMR_VERIFYMERGE reports them" >&2
        status=0
    fi
    if [ "\$status" -ne 0 ]; then
        exit "\$status"
    fi
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p omr_provenance
    echo '{"schema": "omr-verify-report/1", "shard": "${shard}", "mode": "${mode}", "stub": true}' > ${prefix}.report.json
    echo '{"ok": true, "shard": "${shard}", "stub": true}' > ${prefix}.verify.json
    echo '{"kind": "verify", "shard": "${shard}", "stub": true}' > omr_provenance/stub-verify-${prefix}.json
    """
}
