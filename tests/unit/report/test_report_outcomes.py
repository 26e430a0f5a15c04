"""Outcome tables from StudyAnalysis-shaped frames: grouping, formatting, arm labels, blinding guard."""

from __future__ import annotations

import pandas as pd
import pytest
from report_helpers import DESCRIPTIVE_COLUMNS, fake_analysis

from immunorehab.errors import ReportError
from immunorehab.report.content import check_blinded_analysis
from immunorehab.report.outcomes import (
    arm_labeller,
    baseline_outcome_rows,
    descriptives_table,
    fmt_estimate,
    fmt_p,
    outcome_decimals,
    outcome_table,
)
from immunorehab.report.tables import Group

ARMS = ["face_to_face", "remote", "usual_care"]
LABELS = {
    "face_to_face": "Face-to-face rehabilitation",
    "remote": "Remote rehabilitation",
    "usual_care": "Usual care",
}


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.0004, "<0.001"), (0.001, "0.001"), (0.0123, "0.012"), (0.0995, "0.100"), (0.5, "0.50"), (None, "–")],
)
def test_p_values_as_journals_print_them(p: float | None, text: str) -> None:
    assert fmt_p(p) == text


def test_estimates_signed_differences_and_ratios() -> None:
    # PHOSP-R's face-to-face ISWT effect: +52 m (95% CI 19 to 85)
    assert fmt_estimate(52.0, 19.0, 85.0, ratio=False) == "+52.0 (19.0 to 85.0)"
    assert fmt_estimate(-0.123, -0.31, 0.06, ratio=False) == "-0.12 (-0.31 to 0.06)"
    assert fmt_estimate(1.16, 1.01, 1.33, ratio=True) == "1.16 (1.01 to 1.33)"
    assert fmt_estimate(float("nan"), 1.0, 2.0, ratio=True) == "–"
    assert fmt_estimate(54.0, 1.0, 110.0, ratio=False) == "+54 (1 to 110)"
    assert fmt_estimate(54.0, 1.0, 110.0, ratio=False, decimals=1) == "+54.0 (1.0 to 110.0)"


def test_one_outcome_reads_with_the_same_decimals_in_every_population() -> None:
    # the seed trial's ISWT rows: ITT CI width 109 m (0 decimals alone), per protocol 97.7 m (1)
    results = pd.DataFrame(
        {
            "outcome": ["iswt", "iswt", "fatigue"],
            "estimate": [55.7, 58.3, -0.5],
            "ci_low": [1.0, 9.5, -4.8],
            "ci_high": [110.3, 107.2, 3.8],
        }
    )
    assert outcome_decimals(results) == {"iswt": 1, "fatigue": 2}
    itt, pp = (fmt_estimate(*results.iloc[i, 1:4], ratio=False, decimals=1) for i in (0, 1))
    assert itt == "+55.7 (1.0 to 110.3)"
    assert pp == "+58.3 (9.5 to 107.2)"


def test_labeller_replaces_whole_arm_ids_only() -> None:
    label = arm_labeller(LABELS)
    assert label("face_to_face vs usual_care") == "Face-to-face rehabilitation vs Usual care"
    assert label("remote vs usual_care") == "Remote rehabilitation vs Usual care"
    assert label("remotely") == "remotely"


def test_outcome_table_groups_by_role_family_contrast() -> None:
    analysis = fake_analysis(ARMS, "usual_care", visits=["baseline", "week8"])
    table = outcome_table(
        analysis.results, contrast_label=arm_labeller(LABELS), family_labels={"primary": "Primary"}
    )
    labels = [r.label for r in table.rows]
    assert labels[0] == "Primary outcome"
    assert labels[1] == "Primary (adjusted: holm)"
    assert labels[2] == "Face-to-face rehabilitation vs Usual care"
    assert labels.index("Exploratory outcomes") > labels.index("Primary outcome")
    data = [r for r in table.rows if not r.heading]
    assert len(data) == len(analysis.results)
    first = analysis.results.iloc[0]
    row = data[0]
    assert row.label == first["label"]
    assert row.cells[0] == "ITT"
    assert row.cells[1] == "18 (2 missing)"
    places = outcome_decimals(analysis.results)[first["outcome"]]
    assert row.cells[2] == fmt_estimate(
        first["estimate"], first["ci_low"], first["ci_high"], ratio=False, decimals=places
    )
    ratios = [r for r in data if r.cells[2].startswith("GMR ")]
    assert len(ratios) == (analysis.results["scale"] == "ratio").sum()


def test_baseline_rows_and_descriptives_table() -> None:
    desc = pd.DataFrame(
        [
            ["cd8_naive", "baseline", "a", 3, 20.0, 2.0, 19.5, 18.0, 21.0, 19.9],
            ["cd8_naive", "baseline", "all", 5, 21.0, 2.5, 20.0, 18.5, 22.0, 20.8],
            ["iswt", "baseline", "a", 2, 300.0, 50.0, 300.0, 275.0, 325.0, 297.0],
            ["iswt", "week8", "a", 2, 350.0, 40.0, 350.0, 330.0, 370.0, 348.0],
        ],
        columns=DESCRIPTIVE_COLUMNS,
    )
    results = pd.DataFrame({"outcome": ["cd8_naive", "iswt"], "scale": ["ratio", "difference"]})
    groups = [Group("a", "A", frozenset("XYZ")), Group("all", "All", frozenset("XYZVW"))]
    rows = baseline_outcome_rows(desc, results, visit="baseline", groups=groups, labels={"iswt": "ISWT (m)"})
    assert rows[0].label == "cd8_naive, median (IQR)"
    assert rows[0].cells == ("19.5 (18.0–21.0)", "20.0 (18.5–22.0)")
    # fewer values than participants in the column: flagged
    assert rows[1].cells == ("300.0 (50.0) [n=2]", "–")
    table = descriptives_table(
        desc,
        groups=[("a", "A"), ("all", "All")],
        visit_order=["baseline", "week8"],
        visit_labels={"baseline": "Baseline", "week8": "Week 8"},
        labels={},
        log_scale={"cd8_naive": True},
    )
    assert [r.label for r in table.rows] == [
        "cd8_naive: n · median (IQR)",
        "Baseline",
        "iswt: n · mean (SD)",
        "Baseline",
        "Week 8",
    ]
    assert table.rows[1].cells == ("3 · 19.5 (18.0–21.0)", "5 · 20.0 (18.5–22.0)")
    assert table.rows[4].cells == ("2 · 350.0 (40.0)", "–")


def test_blinded_report_refuses_an_analysis_that_names_arms() -> None:
    analysis = fake_analysis(ARMS, "usual_care", visits=["baseline"])
    with pytest.raises(ReportError, match="unblinded analysis"):
        check_blinded_analysis(analysis, ARMS)
    pooled = analysis.descriptives.assign(arm="all")
    blinded = type(analysis)(analysis.results.iloc[0:0], pooled)
    check_blinded_analysis(blinded, ARMS)
