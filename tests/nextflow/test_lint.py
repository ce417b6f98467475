"""Our nf-core style lint (nflint.py) passes on every real component and finds each convention
breach in a deliberately broken copy of a real module."""

from __future__ import annotations

import shutil

import pytest

from . import nflint
from .conftest import MODULE_DIRS, MODULES, REPO, SUBWORKFLOW_DIRS


@pytest.mark.parametrize("component", MODULE_DIRS + SUBWORKFLOW_DIRS, ids=lambda p: p.name)
def test_lint_passes_on_real_components(component):
    findings = nflint.lint_path(component)
    assert findings == [], "\n".join(map(str, findings))


def test_lint_command_line_passes_on_the_tree(capsys):
    assert nflint.main([str(MODULES)]) == 0


def broken_copy(tmp_path, module: str, old: str, new: str, count: int = 1):
    """A copy of nextflow_modules/omr/<module> (same layout, so relative paths still work)
    with `old` replaced by `new` in main.nf."""
    dest = tmp_path / "nextflow_modules" / "omr" / module
    shutil.copytree(MODULES / "omr" / module, dest)
    main = dest / "main.nf"
    text = main.read_text()
    assert text.count(old) >= count, f"{old!r} not in {module}/main.nf"
    main.write_text(text.replace(old, new, count))
    return dest


def checks(findings) -> set[str]:
    return {f.check for f in findings}


BREAKAGES = {
    # check id: (module, old, new)
    "emit": ("resolve", ", emit: json\n", "\n"),
    "versions_topic": ("resolve", ", topic: versions, emit: versions_omrw", ", emit: versions_omrw"),
    "label": ("resolve", "    label 'process_single'\n", "    label 'process_single'\n    label 'process_low'\n"),
    "when": ("resolve", "task.ext.when == null || task.ext.when", "task.ext.when"),
    "stub": ("fetch", "\n    stub:\n", "\n    // stub removed\n    unused_stub_text:\n"),
    "omrw_cli": ("resolve", "        --provenance-dir omr_provenance \\\\\n",
                 "        --provenance-dir omr_provenance \\\\\n        --no-such-option \\\\\n"),
}


@pytest.mark.parametrize("check", sorted(BREAKAGES))
def test_lint_finds_each_breakage(tmp_path, check):
    module, old, new = BREAKAGES[check]
    original = nflint.lint_module(MODULES / "omr" / module)
    assert original == []
    broken = broken_copy(tmp_path, module, old, new)
    findings = nflint.lint_module(broken)
    assert check in checks(findings), "\n".join(map(str, findings)) or "no findings"


def test_missing_stub_is_named(tmp_path):
    """Dropping the whole stub: block (the normal way to lose it)."""
    src = (MODULES / "omr" / "promote" / "main.nf").read_text()
    head, _, _ = src.partition("\n    stub:\n")
    dest = broken_copy(tmp_path, "promote", "x", "x", count=0)
    (dest / "main.nf").write_text(head + "\n}\n")
    findings = nflint.lint_module(dest)
    assert any(f.check == "stub" and "no stub: block" in f.message for f in findings), findings


def test_unknown_option_is_refused_by_the_real_cli_parser(tmp_path):
    broken = broken_copy(tmp_path, "verify", "--mode ${mode}", "--mode ${mode} --fastest")
    [finding] = [f for f in nflint.lint_module(broken) if f.check == "omrw_cli"]
    assert "--fastest" in finding.message and "unrecognized arguments" in finding.message


def test_bad_literal_choice_is_refused(tmp_path):
    broken = broken_copy(tmp_path, "verify", "--mode ${mode}", "--mode paranoid")
    findings = [f for f in nflint.lint_module(broken) if f.check == "omrw_cli"]
    assert findings and "invalid choice: 'paranoid'" in findings[0].message


def test_missing_required_option_is_refused(tmp_path):
    broken = broken_copy(tmp_path, "promote", "        --to '${alias}' \\\\\n", "")
    findings = [f for f in nflint.lint_module(broken) if f.check == "omrw_cli"]
    assert findings and "--to" in findings[0].message


@pytest.mark.parametrize("check,module,old,new", [
    ("tag", "resolve", 'tag "${meta.id}"', 'tag "fixed"'),
    ("label", "resolve", "label 'process_single'", "label 'process_gigantic'"),
    ("conda", "resolve", 'conda "${moduleDir}/environment.yml"', "conda 'bioconda::omrw=0.1'"),
    ("process_name", "resolve", "process OMR_RESOLVE {", "process OMR_RESOLVER {"),
    ("inputs", "resolve", "tuple val(meta), val(ref)", "tuple val(ref), val(meta)"),
    ("provenance_topic", "resolve", ", topic: omr_provenance, emit: provenance", ", emit: provenance"),
    ("provenance_topic", "verifyplan", 'path("${prefix}.plan.json"), emit: plan',
     'path("${prefix}.plan.json"), topic: omr_provenance, emit: plan'),
    ("ext_args", "resolve", "        ${args} \\\\\n", ""),
    ("ext_prefix", "resolve", '    prefix = task.ext.prefix ?: "${meta.id}"\n    """\n    export',
     '    def prefix = task.ext.prefix ?: "${meta.id}"\n    """\n    export'),
    ("omrw_json", "promote", "        --json \\\\\n", ""),
    ("pipefail", "promote", "> ${prefix}.promote.json\n    \"\"\"\n\n    stub",
     "| tee ${prefix}.promote.json\n    \"\"\"\n\n    stub"),
    ("script", "promote", "omrw promote \\\\", "omrw promote $(date) \\\\"),
])
def test_lint_finds_other_breakages(tmp_path, check, module, old, new):
    broken = broken_copy(tmp_path, module, old, new)
    findings = nflint.lint_module(broken)
    assert check in checks(findings), "\n".join(map(str, findings)) or "no findings"


def test_meta_yml_must_match_main_nf(tmp_path):
    dest = broken_copy(tmp_path, "resolve", "x", "x", count=0)
    meta = dest / "meta.yml"
    meta.write_text(meta.read_text().replace("  pinned:\n", "  pinned_ref:\n", 1))
    assert "meta_yml" in checks(nflint.lint_module(dest))


def test_environment_must_install_this_version(tmp_path):
    dest = broken_copy(tmp_path, "resolve", "x", "x", count=0)
    env = dest / "environment.yml"
    env.write_text(env.read_text().replace("omr-workflows==", "omr-workflows>="))
    assert "environment_yml" in checks(nflint.lint_module(dest))


def test_nf_test_needs_a_stub_test(tmp_path):
    dest = broken_copy(tmp_path, "resolve", "x", "x", count=0)
    spec = dest / "tests" / "main.nf.test"
    spec.write_text(spec.read_text().replace('options "-stub"', ""))
    assert "nf_test" in checks(nflint.lint_module(dest))


def test_subworkflow_breakages(tmp_path):
    src = MODULES / "subworkflows" / "omr_verify_parallel"
    dest = tmp_path / "nextflow_modules" / "subworkflows" / "omr_verify_parallel"
    shutil.copytree(src, dest)
    shutil.copytree(MODULES / "omr", tmp_path / "nextflow_modules" / "omr")
    assert nflint.lint_subworkflow(dest) == []
    main = dest / "main.nf"
    text = main.read_text()
    main.write_text(text.replace("    val_shards  // integer", "    shards  // integer")
                        .replace("include { OMR_VERIFY      } from '../../omr/verify/main'",
                                 "include { OMR_VERIFY      } from '../../omr/verifyy/main'"))
    found = checks(nflint.lint_subworkflow(dest))
    assert {"channel_names", "includes"} <= found
    main.write_text(text.replace("    report  = OMR_VERIFYMERGE.out.report  // channel: [ val(meta), path(merged.json) ]"
                                 "  only for plans that passed", "    report  = OMR_VERIFYMERGE.out.report"))
    assert "channel_comments" in checks(nflint.lint_subworkflow(dest))


def test_example_pipeline_includes_resolve():
    assert nflint.lint_includes(REPO / "examples" / "nextflow" / "main.nf") == []


def test_records_dir_must_be_the_topic_output(tmp_path):
    broken = broken_copy(tmp_path, "resolve", "--provenance-dir omr_provenance", "--provenance-dir records")
    findings = [f for f in nflint.lint_module(broken) if f.check == "provenance_topic"]
    assert findings and "records" in findings[0].message
