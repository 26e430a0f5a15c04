"""CONSORT and cohort flow counts from participant and visit frames."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from immunorehab.report.collect import ArmInfo
from immunorehab.report.consort import Reason, cohort_flow, consort_flow
from immunorehab.report.embed import embed
from immunorehab.report.flowchart import draw_cohort_flow, draw_consort

D = dt.date(2026, 1, 5)
ARMS = (ArmInfo("rehab", "Rehabilitation", 1, True), ArmInfo("usual", "Usual care", 1, False))
CRITERIA = {"adult": "Aged 18 or over", "post_covid": "More than 12 weeks since infection"}


def _person(pid: str, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "participant_id": pid,
        "eligible": True,
        "failed_criteria": "",
        "consent_date": D,
        "withdrawn_on": None,
        "withdrawal_reason": None,
        "randomised_on": D,
        "arm": None,
    }
    row.update(kw)
    return row


def _people() -> pd.DataFrame:
    rows = [
        _person("S1", eligible=False, failed_criteria="adult,post_covid", randomised_on=None),
        _person("S2", eligible=False, failed_criteria="post_covid", randomised_on=None),
        _person("S3", withdrawn_on=D, withdrawal_reason="declined", randomised_on=None),
        _person("S4", consent_date=None, randomised_on=None),
        _person("S5", randomised_on=None),
        _person("R1", arm="rehab"),
        _person("R2", arm="rehab"),
        _person("R3", arm="rehab", withdrawn_on=D, withdrawal_reason="moved away"),
        _person("R4", arm="rehab"),
        _person("U1", arm="usual"),
        _person("U2", arm="usual"),
        _person("U3", arm="usual", withdrawn_on=D, withdrawal_reason="moved away"),
    ]
    return pd.DataFrame(rows)


def _visits() -> pd.DataFrame:
    status = {
        "R1": "completed",
        "R2": "overdue",
        "R3": "withdrawn",
        "R4": "due",
        "U1": "out_of_window",
        "U2": "overdue",
        "U3": "withdrawn",
    }
    return pd.DataFrame(
        [
            {"participant_id": p, "visit_id": "week8", "status": s, "visit_date": None}
            for p, s in status.items()
        ]
    )


def _adherence() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "participant_id": ["R1", "R2", "R3"],
            "arm": ["rehab"] * 3,
            "attended": [14, 3, 0],
            "status": ["completer", "non_completer", "non_completer"],
            "completer_threshold": [12, 12, 12],
        }
    )


def test_trial_flow_counts_and_reasons() -> None:
    flow = consort_flow(
        _people(),
        _visits(),
        arms=ARMS,
        criteria=CRITERIA,
        primary_visit="week8",
        primary_visit_label="Week 8",
        adherence=_adherence(),
        analysed={"itt": {"rehab": 4, "usual": 3}, "per_protocol": {"rehab": 1, "usual": 3}},
    )
    assert (flow.assessed, flow.randomised, flow.excluded.n) == (12, 7, 5)
    reasons = {r.label: r for r in flow.excluded.sub}
    assert reasons["Not meeting eligibility criteria"].n == 2
    # one count per failed criterion: S1 fails both
    assert {s.label: s.n for s in reasons["Not meeting eligibility criteria"].sub} == {
        "not met: More than 12 weeks since infection": 2,
        "not met: Aged 18 or over": 1,
    }
    assert reasons["Declined or withdrew before randomisation"].sub == (Reason("declined", 1),)
    assert reasons["No consent recorded"].n == 1
    assert reasons["Eligible, awaiting randomisation"].n == 1
    rehab, usual = flow.arms
    assert (rehab.allocated, rehab.received) == (4, 2)
    assert {r.label: r.n for r in rehab.not_received or ()} == {
        "Not prescribed a programme": 1,
        "Attended no session": 1,
    }
    assert rehab.discontinued is not None and rehab.discontinued.n == 1  # R2; R3 attended nothing
    assert (rehab.withdrawn.n, rehab.lost.n, rehab.pending) == (1, 1, 1)
    assert rehab.withdrawn.sub == (Reason("moved away", 1),)
    assert rehab.analysed == (("itt", 4), ("per_protocol", 1))
    assert usual.received is None and "no rehabilitation programme" in usual.intervention_note
    # U1 was seen out of window: it has data, so it is not lost
    assert (usual.allocated, usual.withdrawn.n, usual.lost.n, usual.pending) == (3, 1, 1, 0)


def test_blinded_flow_pools_arms_and_hides_intervention() -> None:
    people = _people().drop(columns=["arm"])
    flow = consort_flow(
        people,
        _visits(),
        arms=(),
        criteria=CRITERIA,
        primary_visit="week8",
        primary_visit_label="Week 8",
        adherence=None,
        analysed={"itt": {"all": 7}},
    )
    assert flow.blinded and len(flow.arms) == 1
    pooled = flow.arms[0]
    assert (pooled.allocated, pooled.withdrawn.n, pooled.lost.n, pooled.pending) == (7, 2, 2, 1)
    assert pooled.received is None and pooled.discontinued is None
    assert pooled.analysed == (("itt", 7),)
    svg = embed(draw_consort(flow), key="c", title="", caption="").svg
    assert "Allocated (all arms pooled) (n=7)" in svg
    assert "Rehabilitation" not in svg and "Usual care" not in svg


def test_consort_figure_shows_the_counts() -> None:
    flow = consort_flow(
        _people(),
        _visits(),
        arms=ARMS,
        criteria=CRITERIA,
        primary_visit="week8",
        primary_visit_label="Week 8",
        adherence=_adherence(),
        analysed={"itt": {"rehab": 4, "usual": 3}},
    )
    svg = embed(draw_consort(flow), key="c", title="", caption="").svg
    for text in (
        "Assessed for eligibility (n=12)",
        "Randomised (n=7)",
        "Excluded (n=5)",
        "Usual care (n=3)",
        "Received allocated intervention (n=2)",
        "Lost to follow-up (n=1)",
        "itt (n=4)",
    ):
        assert text in svg, text


def test_cohort_flow_per_visit() -> None:
    people = _people().drop(columns=["arm"]).assign(randomised_on=None)
    visits = pd.DataFrame(
        [
            {"participant_id": "R1", "visit_id": "m6", "status": "completed"},
            {"participant_id": "R2", "visit_id": "m6", "status": "overdue"},
            {"participant_id": "R3", "visit_id": "m6", "status": "withdrawn"},
            {"participant_id": "S1", "visit_id": "m6", "status": "completed"},  # not included: ineligible
            {"participant_id": "R4", "visit_id": "m12", "status": "upcoming"},
        ]
    )
    flow = cohort_flow(
        people,
        visits,
        criteria=CRITERIA,
        visit_labels={"m6": "6 months", "m12": "12 months"},
        analysed={"m6": 1},
    )
    # S1, S2 ineligible; S4 no consent
    assert (flow.assessed, flow.included, flow.excluded.n) == (12, 9, 3)
    m6, m12 = flow.visits
    assert (m6.attended, m6.missed, m6.withdrawn, m6.analysed) == (1, 1, 1, 1)
    assert (m12.pending, m12.analysed) == (1, None)
    svg = embed(draw_cohort_flow(flow), key="c", title="", caption="").svg
    assert "Included in the cohort (n=9)" in svg and "With data analysed (n=1)" in svg


def test_consort_figure_is_grey_with_8pt_text() -> None:
    import re

    flow = consort_flow(
        _people(),
        _visits(),
        arms=ARMS,
        criteria=CRITERIA,
        primary_visit="week8",
        primary_visit_label="Week 8",
        adherence=_adherence(),
        analysed={},
    )
    svg = embed(draw_consort(flow), key="c", title="", caption="").svg
    for colour in set(re.findall(r"#[0-9a-fA-F]{6}\b", svg)):
        assert colour[1:3] == colour[3:5] == colour[5:7], colour
    sizes = [float(x) for x in re.findall(r"font[^;\"]*?([0-9.]+)px", svg)]
    assert sizes and min(sizes) >= 8.0


def test_no_rehabilitation_log_is_not_reported_as_no_intervention() -> None:
    flow = consort_flow(
        _people(),
        _visits(),
        arms=ARMS,
        criteria=CRITERIA,
        primary_visit="week8",
        primary_visit_label="Week 8",
        adherence=_adherence().iloc[0:0],
        analysed={},
    )
    rehab = flow.arms[0]
    assert rehab.received is None and rehab.discontinued is None
    assert (
        rehab.intervention_note == "Intervention delivery not recorded (no rehabilitation log in the store)"
    )
