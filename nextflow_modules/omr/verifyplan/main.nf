process OMR_VERIFYPLAN {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(refs), val(mode)
    val(shards)

    output:
    tuple val(meta), val(refs), val(mode), path("${prefix}.plan.json"), emit: plan
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // No references means every version in the registry; ['--model', 'TASK/MODEL'] works too.
    def targets = refs ? refs.join(' ') : '--all'
    """
    export OMR_ENGINE=nextflow
    omrw verify \\
        --plan \\
        --shards ${shards} \\
        --mode ${mode} \\
        --json \\
        ${args} \\
        ${targets} \\
        > ${prefix}.plan.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    python3 -c 'import json, sys; n = int(sys.argv[1]); print(json.dumps({"schema": "omr-verify-plan/1", "plan_digest": "sha256:stub", "mode": sys.argv[2], "shard_count": n, "shards": [{"index": i, "units": 0, "bytes": 0} for i in range(1, n + 1)]}))' ${shards} ${mode} > ${prefix}.plan.json
    """
}
