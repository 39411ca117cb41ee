"""The compliance data holds together: framework files are valid and complete, every check has metadata
that maps to controls that exist, and every automated CIS AWS Foundations 3.0.0 recommendation is served."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from app.checks.catalog import COMPLIANCE_DIR, FRAMEWORK_IDS, CatalogEntry, Framework, catalog, frameworks

CIS = "cis-aws-3.0"
# The benchmark's numbering: section -> number of recommendations (subsections for Storage).
CIS_LAYOUT = {"1": 22, "2.1": 4, "2.2": 1, "2.3": 3, "2.4": 1, "3": 9, "4": 16, "5": 6}
# Recommendations whose assessment status is Manual in CIS AWS Foundations Benchmark v3.0.0.
CIS_MANUAL = {"1.1", "1.2", "1.3", "1.6", "1.7", "1.11", "1.21", "1.22", "2.1.2", "2.1.3", "5.5",
              *(f"4.{n}" for n in range(1, 16))}


def _framework_files() -> list[Path]:
    return sorted(COMPLIANCE_DIR.glob("*.yaml"))


@pytest.fixture(scope="module")
def entries() -> dict[str, CatalogEntry]:
    # Raises with the lists of checks without metadata and metadata without a check.
    return catalog()


@pytest.mark.parametrize("path", _framework_files(), ids=lambda p: p.stem)
def test_framework_file_validates(path: Path):
    fw = Framework.model_validate(yaml.safe_load(path.read_text()))
    assert fw.id == path.stem, "a framework file is named after its id"
    assert fw.name.strip() and fw.version.strip() and fw.description.strip()
    assert fw.controls, "a framework lists its controls"
    ids = [c.id for c in fw.controls]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    for control in fw.controls:
        assert control.id == control.id.strip() and control.id, control
        assert control.title.strip(), control.id
        assert control.section, f"{fw.id} {control.id} has no section"
        if not control.automated:
            assert control.note and control.note.strip(), f"{fw.id} {control.id} is manual but says not why"


def test_there_is_one_file_per_known_framework():
    assert sorted(p.stem for p in _framework_files()) == sorted(FRAMEWORK_IDS)
    assert sorted(frameworks()) == sorted(FRAMEWORK_IDS)


def test_cis_3_0_lists_every_recommendation_in_benchmark_order():
    fw = frameworks()[CIS]
    expected = [f"{section}.{n}" for section, count in CIS_LAYOUT.items() for n in range(1, count + 1)]
    assert [c.id for c in fw.controls] == expected
    assert {c.id for c in fw.controls if not c.automated} == CIS_MANUAL
    for control in fw.controls:
        top = control.id.split(".")[0]
        assert control.section and control.section.startswith(top), (control.id, control.section)


def test_iso_27001_2022_has_all_93_annex_a_controls():
    ids = [c.id for c in frameworks()["iso27001-2022"].controls]
    expected = [f"A.{theme}.{n}" for theme, count in {5: 37, 6: 8, 7: 14, 8: 34}.items()
                for n in range(1, count + 1)]
    assert ids == expected


def test_every_check_has_metadata_remediation_and_a_mapping(entries):
    problems = []
    for check_id, entry in entries.items():
        meta = entry.meta
        if meta.service != entry.spec.service:
            problems.append(f"{check_id}: metadata service {meta.service!r} is not the id's prefix")
        if not meta.remediation.text.strip():
            problems.append(f"{check_id}: no remediation text")
        if not any(meta.compliance.values()):
            problems.append(f"{check_id}: maps to no control")
        for framework_id, control_ids in meta.compliance.items():
            if framework_id not in FRAMEWORK_IDS:
                problems.append(f"{check_id}: unknown framework {framework_id!r}")
            if not control_ids:
                problems.append(f"{check_id}: empty control list for {framework_id}")
            if len(control_ids) != len(set(control_ids)):
                problems.append(f"{check_id}: duplicate controls for {framework_id}")
    assert entries, "no check is registered"
    assert not problems, "\n".join(problems)


def test_every_mapped_control_exists_in_its_framework(entries):
    known = frameworks()
    invalid = []
    for check_id, entry in entries.items():
        for framework_id, control_ids in entry.meta.compliance.items():
            fw = known.get(framework_id)
            for control_id in control_ids:
                if fw is None or fw.control(control_id) is None:
                    invalid.append(f"{check_id}: {framework_id} {control_id!r}")
    assert not invalid, f"{len(invalid)} mappings name controls that do not exist:\n" + "\n".join(sorted(invalid))


def test_controls_served_by_checks_are_marked_automated(entries):
    # Outside CIS, `automated` means "cloud configuration can evidence it": a control that a check serves is
    # such a control, so either the flag or the mapping is wrong. (CIS's flag is the benchmark's own status.)
    known = frameworks()
    wrong = sorted({f"{framework_id} {control_id} (by {check_id})"
                    for check_id, entry in entries.items()
                    for framework_id, control_ids in entry.meta.compliance.items() if framework_id != CIS
                    for control_id in control_ids
                    if framework_id in known and (c := known[framework_id].control(control_id)) is not None
                    and not c.automated})
    assert not wrong, "checks serve controls marked manual:\n" + "\n".join(wrong)


def test_every_automated_cis_control_is_served_by_a_check(entries):
    served = {control_id for entry in entries.values() for control_id in entry.meta.compliance.get(CIS, [])}
    gaps = [f"{c.id} {c.title}" for c in frameworks()[CIS].controls if c.automated and c.id not in served]
    assert not gaps, f"{len(gaps)} automated CIS 3.0 recommendations have no check:\n" + "\n".join(gaps)
