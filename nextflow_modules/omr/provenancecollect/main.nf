process OMR_PROVENANCECOLLECT {
    tag "${meta.id}"
    label 'process_single'

    conda "${moduleDir}/environment.yml"

    input:
    tuple val(meta), path(records, stageAs: 'records/*')

    output:
    tuple val(meta), path("${prefix}"), emit: report
    tuple val(meta), path("${prefix}/omr_provenance.json"), emit: json
    tuple val(meta), path("${prefix}/ro-crate-metadata.json"), emit: crate
    tuple val(meta), path("${prefix}/omr_provenance.html"), emit: html
    tuple val(meta), path("${prefix}/omr_provenance.md"), emit: md
    tuple val("${task.process}"), val('omrw'), eval('omrw --version | sed "s/omrw //"'), topic: versions, emit: versions_omrw

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // The sink of the omr_provenance topic: it emits nothing on that topic itself, since a
    // consumer that also produced into the topic would wait on itself forever.
    """
    export OMR_ENGINE=nextflow
    mkdir -p records
    omrw provenance collect \\
        records \\
        -o ${prefix} \\
        --workflow-lang nextflow \\
        --allow-empty \\
        --json \\
        ${args} \\
        > ${prefix}.collect.json
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    """
    mkdir -p ${prefix}
    echo '{"stub": true, "models": []}' > ${prefix}/omr_provenance.json
    echo '{"@context": "https://w3id.org/ro/crate/1.1/context", "@graph": []}' > ${prefix}/ro-crate-metadata.json
    echo '<html><body>stub</body></html>' > ${prefix}/omr_provenance.html
    echo '# stub' > ${prefix}/omr_provenance.md
    """
}
