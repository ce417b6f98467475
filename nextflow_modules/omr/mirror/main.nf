process OMR_MIRROR {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), val(source), val(target), val(models), path(lock)

    output:
    tuple val(meta), path("${prefix}.mirror.json"), emit: json
    // One record per version brought in (and per alias moved): none when everything was present.
    path "omr_provenance/*.json", optional: true, topic: omr_provenance, emit: provenance
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    // The trust root (`omrw trust`): signatures are checked against it, and only a policy it signed is
    // obeyed. Unset: $OMR_TRUST, ./omr-trust.json, ...
    def trust = task.ext.trust ? "--trust '${task.ext.trust}'" : ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // What to copy: the versions a lock file pins (`lock`; `[]` for none), else every version of each
    // TASK/MODEL in `models`, else (`[]`) every model of the source.
    def selection = lock ? "--lock ${lock}" : (models ? "--model '" + models.join("' --model '") + "'" : '--all')
    // Incremental: what the target already holds with the same digest is skipped after reading its
    // metadata ("status": "present", bytes_copied 0 on a rerun). `--aliases` and `--jobs N` go in ext.args.
    """
    export OMR_ENGINE=nextflow OMR_RUN_DIR=omr_provenance NXF_TASK_NAME="${task.process} (${meta.id})"
    omrw mirror \\
        '${source}' \\
        '${target}' \\
        ${selection} \\
        --json \\
        ${trust} \\
        ${args} \\
        > ${prefix}.mirror.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    echo '{"ok": true, "source": "${source}", "target": "${target}", "versions": [], "aliases": [], "files_copied": 0, "bytes_copied": 0, "stub": true}' > ${prefix}.mirror.json
    """
}
