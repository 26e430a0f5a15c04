"""Who gets which report, the arm scan, and the methods text generated from the protocols."""

from __future__ import annotations

import base64

import pytest

from immunorehab.report.blinding import CONCEALED, arm_mentions, redact_arms, report_is_blinded, visible_text
from immunorehab.report.methods import methods_paragraphs, software_versions
from immunorehab.study.protocol import load_protocol
from testpaths import PHOSP, REPO, TWO_ARM

COHORT = REPO / "examples" / "protocols" / "fong_cohort.yaml"


@pytest.mark.parametrize(
    ("role", "asked", "blinded"),
    [
        ("statistician", False, False),
        ("admin", False, False),
        ("statistician", True, True),
        ("coordinator", False, True),
        ("physio", False, True),
        ("lab", False, True),
        ("assessor", False, True),
    ],
)
def test_only_statistician_and_admin_get_the_unblinded_report(role: str, asked: bool, blinded: bool) -> None:
    assert report_is_blinded(role, asked_blinded=asked) is blinded


def test_arm_scan_finds_ids_and_labels_but_not_the_public_title() -> None:
    protocol = load_protocol(PHOSP)
    title = protocol.study.title  # names the interventions: public, registered
    assert "usual care" in title.lower()
    assert arm_mentions(f"<h1>{title}</h1> all arms pooled", protocol) == []
    assert arm_mentions("contrast face_to_face vs usual_care", protocol) == ["face_to_face", "usual_care"]
    assert arm_mentions("Allocated to USUAL   CARE (n=6)", protocol) == ["Usual care"]
    assert arm_mentions("the remote arm", protocol) == ["remote"]
    assert arm_mentions("remotely supervised", protocol) == []


def test_free_text_arm_names_are_concealed() -> None:
    protocol = load_protocol(PHOSP)
    text = "wanted usual\ncare; the REMOTE arm (face_to_face) was full; remotely supervised"
    redacted = redact_arms(text, protocol)
    assert redacted == f"wanted {CONCEALED}; the {CONCEALED} arm ({CONCEALED}) was full; remotely supervised"
    assert arm_mentions(redacted, protocol) == []


def test_visible_text_reads_inside_embedded_svg_figures() -> None:
    svg = "<svg><text>Face-to-face rehabilitation</text></svg>"
    html = f'<p>A &amp; B</p><img src="data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()}">'
    text = visible_text(html)
    assert "A & B" in text and "Face-to-face rehabilitation" in text
    assert arm_mentions(text, load_protocol(PHOSP)) == ["Face-to-face rehabilitation"]


def _methods(path, blinded: bool) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {p.heading: p.text for p in methods_paragraphs(load_protocol(path), blinded=blinded)}


def test_trial_methods_state_the_declared_settings() -> None:
    m = _methods(PHOSP, False)
    assert "permuted blocks of random size 3 and 6" in m["Randomisation"]
    assert "stratified by age_band (<60, >=60) and acute_severity (ward, hdu_icu)" in m["Randomisation"]
    assert "Face-to-face rehabilitation (primary)" in m["Statistical models"]
    assert "each against Usual care" in m["Statistical models"]
    assert "Kenward-Roger" in m["Statistical models"]
    assert "m = 20 data sets, 10 iterations, seed 20230309" in m["Analysis populations"]
    assert "T-cell memory subsets (exploratory): BH" in m["Multiplicity"]
    assert "ISWT distance at 8 weeks (m): ancova" in m["Primary outcome"]
    assert f"numpy {software_versions()['numpy']}" in m["Software"]


def test_blinded_methods_name_no_arm() -> None:
    protocol = load_protocol(PHOSP)
    text = " ".join(_methods(PHOSP, True).values())
    assert "3 arms (allocation ratio 1:1:1; arm names are withheld" in text
    assert arm_mentions(text, protocol) == []


def test_minimisation_and_cohort_methods() -> None:
    two = _methods(TWO_ARM, False)
    assert "Pocock-Simon minimisation" in two["Randomisation"]
    assert "probability 0.8" in two["Randomisation"]
    cohort = _methods(COHORT, False)
    assert "prospective cohort study without randomisation" in cohort["Design"]
    assert "Randomisation" not in cohort
    assert "Kaplan-Meier" in cohort["Time to normalisation"]
    assert "Wilson score 95% intervals" in cohort["Prevalence"]
    assert "symptomatic vs asymptomatic" in cohort["Groups"]


def test_methods_list_what_the_analysis_could_not_do() -> None:
    paras = methods_paragraphs(
        load_protocol(PHOSP),
        blinded=False,
        analysis_methods={
            "skipped": [{"outcome": "iswt_12m", "reason": "no data at month12"}],
            "warnings": ["w1"],
        },
    )
    text = {p.heading: p.text for p in paras}
    assert text["Outcomes not analysed"] == "iswt_12m: no data at month12."
    assert text["Warnings raised by the analysis"] == "w1."
