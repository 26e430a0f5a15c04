"""The study report on a small trial: store facts + figures + HTML, and the PDF, timed apart.

Run with ``make bench``; figures are recorded in benchmarks/README.md (Report section).

The trial (two-arm protocol, 60 participants, baseline and week 8, gated subsets for every
participant-visit, rehabilitation sessions for the exercise arm, cytokine plates) is built
through the real store APIs; the study analysis is run once (setup, not timed, it has its own
benchmark). Timed: ``render_report`` (collect the store facts, tables, SVG figures, methods,
provenance, HTML) and ``write_pdf`` (WeasyPrint, A4) of that HTML, beside the yardstick of the
same HTML without its figures (what the vector figures cost in the PDF).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# the trial builders of the integration tests (real store APIs)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from study_analysis_helpers import (  # noqa: E402
    TODAY,
    build_trial,
    gate_values,
    import_cytokines,
    prescribe_and_log,
    store_gates,
    write_protocol,
)

from immunorehab.analysis.study import StudyAnalysis, run_study_analysis  # noqa: E402
from immunorehab.report.render import write_pdf  # noqa: E402
from immunorehab.report.service import render_report  # noqa: E402
from immunorehab.simulate.plates import simulate_levels  # noqa: E402
from immunorehab.study.service import add_user, create_study  # noqa: E402
from immunorehab.study.store import Store  # noqa: E402
from testpaths import ROLE_USERS, TWO_ARM  # noqa: E402

N = 60


def _plan(data: dict[str, Any]) -> None:
    data["analysis"]["imputation"].update(m=5, iterations=5)


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, StudyAnalysis, Path]:
    folder = tmp_path_factory.mktemp("bench_report")
    store, _ = create_study(
        f"sqlite:///{folder / 'study.db'}", write_protocol(TWO_ARM, folder, _plan), admin="admin"
    )
    for name, role in ROLE_USERS.items():
        add_user(store, by="admin", username=name, role=role)
    built = build_trial(store, n=N, rehab=True, missing_week8=(3, 11, 19, 27, 35))
    store_gates(store, gate_values(built, np.random.default_rng(2)))
    prescribe_and_log(store, built, folder)
    draws = [(p, v) for p in built.arms for v in ("baseline", "week8") if v == "baseline" or built.week8[p]]
    import_cytokines(store, simulate_levels(draws, rng=np.random.default_rng(5)), folder)
    analysis = run_study_analysis(store, by="stats1", skip_unavailable=True, today=TODAY)
    return store, analysis, folder


def test_bench_render_report(benchmark: Any, trial: tuple[Store, StudyAnalysis, Path]) -> None:
    store, analysis, _ = trial
    content, html = benchmark.pedantic(
        render_report, kwargs={"store": store, "by": "stats1", "today": TODAY, "analysis": analysis}, rounds=3
    )
    assert content.figures and "CONSORT" in html


def test_bench_write_pdf(benchmark: Any, trial: tuple[Store, StudyAnalysis, Path]) -> None:
    store, analysis, folder = trial
    _, html = render_report(store, by="stats1", today=TODAY, analysis=analysis)
    pages = benchmark.pedantic(write_pdf, args=(html, folder / "report.pdf"), rounds=3)
    assert pages > 10


def test_bench_write_pdf_yardstick_without_figures(
    benchmark: Any, trial: tuple[Store, StudyAnalysis, Path]
) -> None:
    store, analysis, folder = trial
    _, html = render_report(store, by="stats1", today=TODAY, analysis=analysis)
    bare = re.sub(r'src="data:image/svg\+xml;base64,[^"]+"', 'src=""', html)
    pages = benchmark.pedantic(write_pdf, args=(bare, folder / "bare.pdf"), rounds=3)
    assert pages > 5
