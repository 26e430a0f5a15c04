"""A cohort report (Fong-like protocol): STROBE-like flow, symptom groups, trajectories, KM, prevalence.

The cohort is enrolled and followed through the store (no randomisation), its cytokine plates
simulated, read, fitted and imported by the cytokine capability, and analysed by the real
study analysis; the report must show the analysis' numbers and the store's counts.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pypdf import PdfReader
from study_analysis_helpers import TODAY, import_cytokines, write_protocol

from factories import person
from immunorehab.analysis.study import StudyAnalysis, run_study_analysis
from immunorehab.report.blinding import visible_text
from immunorehab.report.service import ReportResult, build_report
from immunorehab.simulate.plates import SampleSpec, simulate_levels
from immunorehab.study.participants import add_participant
from immunorehab.study.service import add_user, create_study
from immunorehab.study.store import Store
from immunorehab.study.visits import record_visit
from testpaths import PROTOCOLS, ROLE_USERS

FONG = PROTOCOLS / "fong_cohort.yaml"
ENROLLED = dt.date(2023, 1, 10)
DAYS = {"baseline": 0, "month6": 182, "month12": 365, "month24": 730}
FOLD = {
    True: {"baseline": 6.0, "month6": 4.0, "month12": 3.0, "month24": 1.3},
    False: {"baseline": 6.0, "month6": 1.5, "month12": 1.0, "month24": 1.0},
}


def _two_cytokines(data: dict[str, Any]) -> None:
    plan = data["analysis"]
    plan["outcomes"] = [o for o in plan["outcomes"] if o["id"] in ("il6", "mcp1")]
    plan["normalisation"] = plan["normalisation"][:1]


@dataclass
class Cohort:
    store: Store
    symptomatic: dict[str, bool]
    analysis: StudyAnalysis
    report: ReportResult


def _build(store: Store, folder: Path, n: int = 24) -> dict[str, bool]:
    rng = np.random.default_rng(4)
    symptomatic: dict[str, bool] = {}
    specs: list[SampleSpec] = []
    add_participant(
        store, by="coord", values=person(site="SGP", hospitalised="no"), today=TODAY
    )  # not eligible
    for i in range(n):
        values = person(
            site="SGP",
            consent_date=ENROLLED.isoformat(),
            age_years=int(rng.integers(30, 80)),
            who_severity=int(rng.choice([4, 5, 6, 7])),
        )
        pid = add_participant(store, by="coord", values=values, today=TODAY).participant_id
        ill = i % 3 == 0
        symptomatic[pid] = ill
        slope = float(rng.normal(0.0, 0.04))  # participant-specific trend (log scale, per month)
        for visit, day in DAYS.items():
            if visit == "month24" and i == 5:
                continue  # one missed 24-month visit
            answers: dict[str, Any] = {"blood_drawn": True}
            if visit != "baseline":
                answers |= {
                    "symptoms_present": ill if visit == "month12" else bool(rng.random() < 0.5),
                    "symptom_count": 1,
                }
            if visit == "month24":
                answers["vaccinated_since_last_visit"] = True
            record_visit(
                store,
                by="coord",
                participant_id=pid,
                visit_id=visit,
                visit_date=ENROLLED + dt.timedelta(days=day),
                values=answers,
                today=TODAY,
            )
            fold = FOLD[ill][visit] * float(np.exp(slope * day / (365.25 / 12)))
            specs += simulate_levels([(pid, visit)], rng=rng, elevated={pid: fold})
    import_cytokines(store, specs, folder)
    return symptomatic


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cohort]:
    folder = tmp_path_factory.mktemp("cohort_report")
    store, _ = create_study(
        f"sqlite:///{folder / 'c.db'}", write_protocol(FONG, folder, _two_cytokines), admin="admin"
    )
    for name, role in ROLE_USERS.items():
        add_user(store, by="admin", username=name, role=role)
    symptomatic = _build(store, folder)
    analysis = run_study_analysis(store, by="lab1", skip_unavailable=True, today=TODAY)
    report = build_report(store, by="lab1", out=folder / "report", today=TODAY, analysis=analysis)
    yield Cohort(store, symptomatic, analysis, report)
    store.dispose()


def _html(c: Cohort) -> str:
    return (c.report.out / "report.html").read_text(encoding="utf-8")


def test_cohort_report_has_no_allocation_and_a_strobe_flow(cohort: Cohort) -> None:
    assert not cohort.report.blinded  # nothing to blind in a cohort, for any role
    assert cohort.report.mode == "Cohort report: no allocation to blind"
    html = visible_text(_html(cohort))
    assert "prospective cohort" in html
    assert "Screened for the cohort (n=25)" in html
    assert "Included in the cohort (n=24)" in html
    assert "Missed, window closed (n=1)" in html  # the missed 24-month visit
    text = "\n".join(p.extract_text() or "" for p in PdfReader(cohort.report.out / "report.pdf").pages)
    assert "Participant flow" in text and "Appendix B. Provenance" in text
    assert "COHORT: NO ALLOCATION" in text and "not applicable (cohort: nobody is randomised)" in text


def test_baseline_by_symptom_group(cohort: Cohort) -> None:
    html = _html(cohort)
    ill = sum(cohort.symptomatic.values())
    assert f"symptomatic (n={ill})" in html
    assert f"asymptomatic (n={len(cohort.symptomatic) - ill})" in html


def test_trajectories_km_and_prevalence_from_the_analysis(cohort: Cohort) -> None:
    html = _html(cohort)
    assert "Cytokine trajectories to 24 months by symptom group" in html
    assert 'id="fig-km1"' in html and 'id="fig-prevalence1"' in html
    prevalence = cohort.analysis.cohort["prevalence"]
    for r in prevalence.to_dict(orient="records"):
        p = 100 * r["proportion"]
        cell = f"{p:.1f}% ({100 * r['ci_low']:.1f} to {100 * r['ci_high']:.1f})"
        assert cell in html, r
        assert f"{int(r['events'])} / {int(r['n'])}" in html
    mixed = cohort.analysis.cohort["mixed_fixed"]
    first = mixed.iloc[0]
    assert f"{first['estimate']:.3f} ({first['ci_low']:.3f} to {first['ci_high']:.3f})" in html
    summary = cohort.analysis.cohort["km_summary"]
    assert re.search(r"Time to normalisation", html) and len(summary) >= 1
