# omr rule library: resolve, fetch, verify (scattered), register, promote, approve, import, mirror, lock,
# provenance.
#
# Governance: with `trust: FILE` (a trust root, `omrw trust`) every rule that reads models
# checks them against the policy that root signed: resolving a protected alias whose current
# event is not an approved promotion fails the resolve job (exit 1), so no job that uses the
# model runs. `key: FILE` (or $OMR_SIGNING_KEY) signs what register/promote/approve/import/mirror
# write.
#
# Use it either way (settings: schemas/config.schema.yaml, read from config["omr"] if present):
#
#   include: "/path/to/snakemake_rules/omr.smk"
#
#   module omr:
#       snakefile: "/path/to/snakemake_rules/omr.smk"    # `omrw components snakemake` prints the folder
#       config: config["omr"]
#   use rule * from omr                                  # (`as omr_*` works too: omr_omr_* names)
#
# The rules carry their omr_ prefix themselves, so both ways give the same names. (A computed
# `name:` directive could drop the prefix under `module`, but how Snakemake combines `name:`
# with `use rule ... as` differs between 9.x releases.)
# With `use rule *`, mark your own main rule `default_target: True`: this library's main
# rule (omr_all) is a default target too, and the last one declared wins.
#
# Rules (NAME is a key of `models`, `register`, `promote`, `approve`, `import` or `mirror`):
#   omr_all                                   the `targets` of the config (default: fetch + provenance)
#   omr_resolve   OUTDIR/resolved/NAME.json   what the reference resolves to (reruns when the alias moves)
#   omr_fetch     OUTDIR/models/NAME/         a verified local copy of that exact version
#   omr_verify_shard / omr_verify_merge       verification split into `scattergather` shards
#                 OUTDIR/verify/report.json   (--set-scatter omr_verify=N sets the shard count)
#   omr_register  OUTDIR/registered/NAME.json register an artifact folder made by your training rule
#   omr_promote   OUTDIR/promoted/NAME.json   move an alias to it (audited; on a protected alias: a signed request)
#   omr_approve   OUTDIR/approved/NAME.json   approve a pending request (signed; the last approval moves the alias)
#   omr_import    OUTDIR/imported/NAME.json   import a bundle (`omrw export`) into the registry, checked first
#   omr_mirror    OUTDIR/mirrored/NAME.json   copy versions between two registries, incrementally
#   omr_lock      the lock file               pin the models (config `lock`)
#   omr_provenance OUTDIR/provenance/         pinned-models table (in the Snakemake report) + RO-Crate


include: "common.smk"


scattergather:
    omr_verify=OMR_CONFIG["scatter"],


rule omr_all:
    default_target: True
    localrule: True
    input:
        omr_all_inputs(),


rule omr_resolve:
    localrule: True
    input:
        lock=[omr_lock_file()] if OMR_LOCK else [],
    output:
        json=f"{OMR_OUTDIR}/resolved/{{name}}.json",
        records=directory(f"{OMR_OUTDIR}/provenance/records/resolve-{{name}}"),
    wildcard_constraints:
        name=_omr_names_regex(OMR_MODELS),
    log:
        f"{OMR_OUTDIR}/logs/resolve/{{name}}.log",
    params:
        ref=lambda wc: OMR_MODELS[wc.name],
        pin=lambda wc: omr_pin(wc.name),
        verify=OMR_CONFIG["verify"],
        registry=OMR_CONFIG["registry"],
        trust=omr_trust_file(),
    wrapper:
        omr_wrapper("resolve")


rule omr_fetch:
    localrule: True
    input:
        resolved=f"{OMR_OUTDIR}/resolved/{{name}}.json",
    output:
        model=directory(f"{OMR_OUTDIR}/models/{{name}}"),
        records=directory(f"{OMR_OUTDIR}/provenance/records/fetch-{{name}}"),
    wildcard_constraints:
        name=_omr_names_regex(OMR_MODELS),
    log:
        f"{OMR_OUTDIR}/logs/fetch/{{name}}.log",
    params:
        verify=OMR_CONFIG["verify"],
        link=OMR_CONFIG["fetch_link"],
        registry=OMR_CONFIG["registry"],
        trust=omr_trust_file(),
    wrapper:
        omr_wrapper("fetch")


rule omr_verify_shard:
    output:
        report=f"{OMR_OUTDIR}/verify/shards/{{scatteritem}}.json",
        records=directory(f"{OMR_OUTDIR}/verify/records/{{scatteritem}}"),
    log:
        f"{OMR_OUTDIR}/logs/verify/{{scatteritem}}.log",
    threads: OMR_CONFIG["verification"]["jobs"]
    params:
        all=lambda wc: omr_verify_selection()["all"],
        refs=lambda wc: omr_verify_selection()["refs"],
        mode=OMR_CONFIG["verification"]["mode"],
        shard=lambda wc: wc.scatteritem.replace("-of-", "/"),
        registry=OMR_CONFIG["registry"],
        trust=omr_trust_file(),
    wrapper:
        omr_wrapper("verify")


rule omr_verify_merge:
    localrule: True
    input:
        gather.omr_verify(f"{OMR_OUTDIR}/verify/shards/{{scatteritem}}.json"),
    output:
        report=f"{OMR_OUTDIR}/verify/report.json",
    log:
        f"{OMR_OUTDIR}/logs/verify/merge.log",
    params:
        registry=OMR_CONFIG["registry"],
    wrapper:
        omr_wrapper("verify_merge")


rule omr_register:
    localrule: True
    input:
        artifacts=lambda wc: OMR_REGISTER[wc.name]["artifacts"],
        metadata=lambda wc: OMR_REGISTER[wc.name].get("metadata") or [],
    output:
        json=f"{OMR_OUTDIR}/registered/{{name}}.json",
        records=directory(f"{OMR_OUTDIR}/provenance/records/register-{{name}}"),
    wildcard_constraints:
        name=_omr_names_regex(OMR_REGISTER),
    log:
        f"{OMR_OUTDIR}/logs/register/{{name}}.log",
    params:
        model=lambda wc: OMR_REGISTER[wc.name]["model"],
        version=lambda wc: OMR_REGISTER[wc.name]["version"],
        aliases=lambda wc: OMR_REGISTER[wc.name].get("aliases", []),
        hyperparams=lambda wc: OMR_REGISTER[wc.name].get("hyperparams", {}),
        datasets=lambda wc: OMR_REGISTER[wc.name].get("datasets", []),
        reason=lambda wc: OMR_REGISTER[wc.name].get("reason"),
        code_dir=lambda wc: OMR_REGISTER[wc.name].get("code_dir"),
        extra=lambda wc: "--no-provenance" if OMR_REGISTER[wc.name].get("no_provenance") else "",
        registry=OMR_CONFIG["registry"],
        trust=omr_trust_file(),
        key=lambda wc: omr_signing_key(OMR_REGISTER[wc.name]),
    wrapper:
        omr_wrapper("register")


rule omr_promote:
    localrule: True
    input:
        registered=lambda wc: [omr_registered(wc.name)] if wc.name in OMR_REGISTER else [],
    output:
        json=f"{OMR_OUTDIR}/promoted/{{name}}.json",
        records=directory(f"{OMR_OUTDIR}/provenance/records/promote-{{name}}"),
    wildcard_constraints:
        name=_omr_names_regex(OMR_PROMOTE),
    log:
        f"{OMR_OUTDIR}/logs/promote/{{name}}.log",
    params:
        ref=lambda wc: OMR_PROMOTE[wc.name].get("ref"),
        to=lambda wc: OMR_PROMOTE[wc.name]["to"],
        reason=lambda wc: OMR_PROMOTE[wc.name].get("reason"),
        demote_to=lambda wc: OMR_PROMOTE[wc.name].get("demote_to"),
        registry=OMR_CONFIG["registry"],
        trust=omr_trust_file(),
        key=lambda wc: omr_signing_key(OMR_PROMOTE[wc.name]),
    wrapper:
        omr_wrapper("promote")


rule omr_approve:
    localrule: True
    input:
        registered=lambda wc: [omr_registered(OMR_APPROVE[wc.name].get("register", wc.name))]
        if OMR_APPROVE[wc.name].get("register", wc.name) in OMR_REGISTER and not OMR_APPROVE[wc.name].get("ref")
        else [],
    output:
        json=f"{OMR_OUTDIR}/approved/{{name}}.json",
        records=directory(f"{OMR_OUTDIR}/provenance/records/approve-{{name}}"),
    wildcard_constraints:
        name=_omr_names_regex(OMR_APPROVE),
    log:
        f"{OMR_OUTDIR}/logs/approve/{{name}}.log",
    params:
        ref=lambda wc: OMR_APPROVE[wc.name].get("ref"),
        to=lambda wc: OMR_APPROVE[wc.name]["to"],
        reason=lambda wc: OMR_APPROVE[wc.name].get("reason"),
        key=lambda wc: omr_signing_key(OMR_APPROVE[wc.name]),
        registry=OMR_CONFIG["registry"],
        trust=omr_trust_file(),
    # Approvals of one request are events on one audit chain: one at a time keeps them from
    # racing (run with --resources omr_approvals=1, or --cores 1).
    resources:
        omr_approvals=1,
    wrapper:
        omr_wrapper("approve")


rule omr_import:
    localrule: True
    input:
        bundle=lambda wc: OMR_IMPORT[wc.name]["bundle"],
    output:
        json=f"{OMR_OUTDIR}/imported/{{name}}.json",
        records=directory(f"{OMR_OUTDIR}/provenance/records/import-{{name}}"),
    wildcard_constraints:
        name=_omr_names_regex(OMR_IMPORT),
    log:
        f"{OMR_OUTDIR}/logs/import/{{name}}.log",
    params:
        aliases=lambda wc: OMR_IMPORT[wc.name].get("aliases", False),
        reason=lambda wc: OMR_IMPORT[wc.name].get("reason"),
        registry=OMR_CONFIG["registry"],
        trust=omr_trust_file(),
        key=lambda wc: omr_signing_key(OMR_IMPORT[wc.name]),
    wrapper:
        omr_wrapper("import")


rule omr_mirror:
    localrule: True
    input:
        lock=lambda wc: [OMR_MIRROR[wc.name]["lock"]] if OMR_MIRROR[wc.name].get("lock") else [],
    output:
        json=f"{OMR_OUTDIR}/mirrored/{{name}}.json",
        records=directory(f"{OMR_OUTDIR}/provenance/records/mirror-{{name}}"),
    wildcard_constraints:
        name=_omr_names_regex(OMR_MIRROR),
    log:
        f"{OMR_OUTDIR}/logs/mirror/{{name}}.log",
    threads: lambda wc: OMR_MIRROR[wc.name].get("jobs", 1)
    params:
        source=lambda wc: OMR_MIRROR[wc.name]["source"],
        target=lambda wc: OMR_MIRROR[wc.name]["target"],
        models=lambda wc: OMR_MIRROR[wc.name].get("models", []),
        all=lambda wc: OMR_MIRROR[wc.name].get("all", False),
        aliases=lambda wc: OMR_MIRROR[wc.name].get("aliases", False),
        jobs=lambda wc: OMR_MIRROR[wc.name].get("jobs"),
        trust=omr_trust_file(),
        key=lambda wc: omr_signing_key(OMR_MIRROR[wc.name]),
    wrapper:
        omr_wrapper("mirror")


rule omr_lock:
    localrule: True
    output:
        lock=omr_lock_file(),
    log:
        f"{OMR_OUTDIR}/logs/lock.log",
    params:
        refs=sorted(set(OMR_MODELS.values())),
        registry=OMR_CONFIG["registry"],
        trust=omr_trust_file(),
    wrapper:
        omr_wrapper("lock")


rule omr_provenance:
    localrule: True
    input:
        records=[_omr_records("resolve", n) for n in OMR_MODELS]
        + ([_omr_records("fetch", n) for n in OMR_MODELS] if OMR_CONFIG["fetch"] else [])
        + _omr_produced_records(),
    output:
        html=report(
            omr_provenance_html(),
            category="Provenance",
            caption="report/pinned_models.rst",
            labels={"table": "pinned models"},
        ),
        md=f"{OMR_OUTDIR}/provenance/omr_provenance.md",
        json=f"{OMR_OUTDIR}/provenance/omr_provenance.json",
        crate=f"{OMR_OUTDIR}/provenance/ro-crate-metadata.json",
    log:
        f"{OMR_OUTDIR}/logs/provenance.log",
    params:
        workflow=workflow.main_snakefile,
        registry=OMR_CONFIG["registry"],
    wrapper:
        omr_wrapper("provenance")
