"""Pure parts of the study analysis: one value per participant-visit, LLOQ rules, descriptives,
time to normalisation, cohort groups. Hand-computed cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunorehab.analysis._cohort import group_labels, group_levels, normalisation_frame
from immunorehab.analysis._tidy import describe, marker_values
from immunorehab.analysis.sources import CYTOKINE_COLUMNS, CYTOMETRY_COLUMNS, VISIT_COLUMNS, StudyData
from immunorehab.errors import AnalysisError
from immunorehab.study.analysis_plan import CytokineSource, CytometrySource, Grouping, Normalisation


def _data(*, cytometry: list[tuple] = (), cytokines: list[tuple] = (), visits: list[tuple] = ()) -> StudyData:  # type: ignore[assignment]
    return StudyData(
        participants=pd.DataFrame(),
        visits=pd.DataFrame(list(visits), columns=VISIT_COLUMNS),
        cytometry=pd.DataFrame(list(cytometry), columns=CYTOMETRY_COLUMNS),
        cytokines=pd.DataFrame(list(cytokines), columns=CYTOKINE_COLUMNS),
        rehab=None,
        protocol_sha256="0" * 64,
        study="s",
    )


# -- cytometry: which file counts ---------------------------------------------------------------------


def test_latest_file_of_a_participant_visit_wins() -> None:
    data = _data(
        cytometry=[
            ("P1", "week8", "cd8_naive", "1", 10.0, 2.0, 100.0, 5),
            ("P1", "week8", "cd8_naive", "1", 12.0, 2.4, 120.0, 9),  # re-gated later (new strategy)
            ("P2", "week8", "cd8_naive", "1", 20.0, 4.0, 200.0, 6),
        ]
    )
    values, note = marker_values(CytometrySource(type="cytometry", gate="cd8_naive"), data)
    assert values.set_index("participant_id")["value"].to_dict() == {"P1": 12.0, "P2": 20.0}
    assert note["superseded_files"] == 1
    counts, _ = marker_values(CytometrySource(type="cytometry", gate="cd8_naive", quantity="per_ul"), data)
    assert counts.set_index("participant_id")["value"].to_dict() == {"P1": 120.0, "P2": 200.0}


def test_a_gate_in_two_tubes_needs_the_tube_named() -> None:
    rows = [
        ("P1", "week8", "cd4", "A", 40.0, 9.0, 800.0, 1),
        ("P1", "week8", "cd4", "B", 41.0, 9.1, 810.0, 2),
    ]
    with pytest.raises(AnalysisError, match=r"several tubes for P1 at week8 \(tubes A, B\).*tube: \.\.\."):
        marker_values(CytometrySource(type="cytometry", gate="cd4"), _data(cytometry=rows))
    values, _ = marker_values(CytometrySource(type="cytometry", gate="cd4", tube="B"), _data(cytometry=rows))
    assert values["value"].tolist() == [41.0]


# -- cytokines: LLOQ rule and re-assays ------------------------------------------------------------------


def _ck(pid: str, conc: float, flag: str, *, lloq: float = 2.0, dilution: float = 2.0, run: int = 1) -> tuple:
    return (pid, "week8", "IL-6", conc, flag, dilution, lloq, "pg/mL", f"P{run}", run)


@pytest.mark.parametrize(
    ("stored", "rule"),
    [
        (2.0, "LLOQ/2"),
        (4.0 / math.sqrt(2), "LLOQ/sqrt(2)"),
        (4.0, "LLOQ"),
        (float("nan"), "censored (no value stored)"),
    ],
)
def test_how_values_below_the_lloq_were_stored_is_read_back(stored: float, rule: str) -> None:
    data = _data(cytokines=[_ck("P1", stored, "<LLOQ"), _ck("P2", 35.0, "ok")])
    values, note = marker_values(CytokineSource(type="cytokine", analyte="IL-6"), data)
    assert note["stored_below_lloq_as"] == rule
    assert (note["below_lloq"], note["rows"]) == (1, 2)
    got = values.set_index("participant_id")["value"]
    assert got["P2"] == 35.0 and (got["P1"] == stored or (math.isnan(stored) and math.isnan(got["P1"])))


def test_below_lloq_as_missing_and_the_reassay_with_a_value_wins() -> None:
    data = _data(
        cytokines=[
            _ck("P1", 2.0, "<LLOQ"),
            _ck("P2", float("nan"), ">ULOQ", run=1),
            _ck("P2", 900.0, "ok", run=2),  # re-assayed diluted on a later plate
        ]
    )
    values, note = marker_values(CytokineSource(type="cytokine", analyte="IL-6", below_lloq="missing"), data)
    got = values.set_index("participant_id")["value"]
    assert math.isnan(got["P1"]) and got["P2"] == 900.0
    assert note["duplicates_resolved"] == 1 and note["above_uloq"] == 1
    assert note["below_lloq_analysed_as"] == "missing"


# -- descriptives ----------------------------------------------------------------------------------------


def test_describe_by_visit_and_group() -> None:
    values = pd.DataFrame(
        {
            "visit": ["v1"] * 5 + ["v2"] * 3,
            "group": ["a", "a", "a", "b", "b", "a", "a", "a"],
            "value": [1.0, 2.0, 4.0, 3.0, np.nan, -1.0, 2.0, 5.0],
        }
    )
    out = describe(values, "x", ["v1", "v2"], ["b", "a"]).set_index(["visit", "arm"])
    assert list(out.index) == [("v1", "b"), ("v1", "a"), ("v2", "a")]  # declared group order
    a1 = out.loc[("v1", "a")]
    assert (a1["n"], a1["mean"], a1["median"]) == (3, pytest.approx(7 / 3), 2.0)
    assert a1["sd"] == pytest.approx(np.std([1, 2, 4], ddof=1))
    assert (a1["q1"], a1["q3"]) == (1.5, 3.0)  # R quantile type 7
    assert a1["geo_mean"] == pytest.approx(2.0)  # (1*2*4)^(1/3)
    assert math.isnan(out.loc[("v1", "b"), "sd"])  # one value
    assert math.isnan(out.loc[("v2", "a"), "geo_mean"])  # a value <= 0


# -- time to normalisation ---------------------------------------------------------------------------------


def _item(**kw: object) -> Normalisation:
    base = {
        "id": "il6_normal",
        "label": "IL-6",
        "source": {"type": "cytokine", "analyte": "IL-6"},
        "threshold": 3.5,
        "visits": ["m6", "m12", "m24"],
    }
    return Normalisation.model_validate({**base, **kw})


def test_normalisation_event_times_and_exclusions() -> None:
    rows = {
        "A": {"base": 9.0, "m6": 5.0, "m12": 3.0, "m24": 2.0},  # normal at m12
        "B": {"base": 9.0, "m6": 5.0, "m12": np.nan, "m24": 4.0},  # never: censored at m24
        "C": {"base": 2.0, "m6": 5.0},  # normal at baseline: not at risk
        "D": {"m6": 2.0},  # no baseline value
        "E": {"base": 8.0},  # no follow-up value
        "F": {"base": 8.0, "m6": 3.5, "m12": 9.0},  # equal to the threshold counts as normal
        "G": {"base": 8.0, "m6": 6.0},  # censored at m6
    }
    values = pd.DataFrame(
        [(p, v, x) for p, r in rows.items() for v, x in r.items()],
        columns=["participant_id", "visit", "value"],
    ).replace({"visit": {"base": "baseline"}})
    people = pd.DataFrame({"participant_id": list(rows), "group": list("xyxyxyx")})
    times = {"baseline": 0.0, "m6": 6.0, "m12": 12.0, "m24": 24.0}
    frame, counts = normalisation_frame(values, people, _item(), baseline="baseline", times=times)
    got = frame.set_index("participant_id")[["time", "event"]].to_dict("index")
    assert got == {
        "A": {"time": 12.0, "event": 1},
        "B": {"time": 24.0, "event": 0},
        "F": {"time": 6.0, "event": 1},
        "G": {"time": 6.0, "event": 0},
    }
    assert counts == {
        "at_risk": 4,
        "normal_at_baseline": 1,
        "no_baseline_value": 1,
        "no_follow_up_value": 1,
        "events": 2,
    }
    assert frame.set_index("participant_id").loc["A", "group"] == "x"


def test_normal_above_the_threshold() -> None:
    values = pd.DataFrame(
        [("A", "baseline", 1.0), ("A", "m6", 2.0), ("A", "m12", 5.0)],
        columns=["participant_id", "visit", "value"],
    )
    frame, _ = normalisation_frame(
        values,
        pd.DataFrame({"participant_id": ["A"]}),
        _item(normal="above", threshold=4.0, visits=["m6", "m12"]),
        baseline="baseline",
        times={"baseline": 0.0, "m6": 6.0, "m12": 12.0},
    )
    assert frame[["time", "event"]].values.tolist() == [[12.0, 1]]


# -- cohort groups -----------------------------------------------------------------------------------------


def test_group_labels_from_a_boolean_measure_and_the_reference_first() -> None:
    visits = pd.DataFrame(
        [
            ("P1", "month12", "symptoms", 1.0, "true"),
            ("P2", "month12", "symptoms", 0.0, "false"),
            ("P3", "month6", "symptoms", 1.0, "true"),  # another visit: not the group visit
        ],
        columns=VISIT_COLUMNS,
    )
    group = Grouping(id="status", label="Symptoms at 12 m", measure="symptoms", visit="month12",
                     true_label="symptomatic", false_label="recovered")  # fmt: skip
    labels = group_labels(group, visits)
    assert labels.to_dict() == {"P1": "symptomatic", "P2": "recovered"}
    assert group_levels(group, labels) == ["recovered", "symptomatic"]
    chosen = group.model_copy(update={"reference": "symptomatic"})
    assert group_levels(chosen, labels) == ["symptomatic", "recovered"]
