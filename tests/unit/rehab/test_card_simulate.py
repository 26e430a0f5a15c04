"""Prescription card (HTML/PDF) and the synthetic session simulator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunorehab.errors import ConfigError, RehabError
from immunorehab.rehab.card import render_card_html, write_card
from immunorehab.rehab.explain import explain_session
from immunorehab.rehab.prescribe import Plan
from immunorehab.rehab.progression import next_session, replay
from immunorehab.rehab.service import ParticipantProgress
from immunorehab.rehab.sessionlog import parse_session_values
from immunorehab.simulate.sessions import synthetic_baseline, synthetic_sessions
from unit.rehab.rehab_factories import outcome, plan, programme

R = dt.date(2026, 3, 1)


def _progress(p: Plan, sessions: int = 0) -> ParticipantProgress:
    prog = programme()
    outcomes = []
    for number in range(1, sessions + 1):
        outcomes.append(
            outcome(replay(p, prog, outcomes).state.doses, number, R + dt.timedelta(days=3 * number))
        )
    progress = replay(p, prog, outcomes)
    return ParticipantProgress(
        "LEI-0001",
        "face_to_face",
        R,
        1,
        R,
        p,
        prog,
        tuple(outcomes),
        (),
        progress,
        next_session(progress, p, prog),
    )


def test_card_html_has_both_pages_and_the_doses() -> None:
    html = render_card_html(_progress(plan()), prescribed_by="physio1")
    assert "Rehabilitation prescription &mdash; LEI-0001" in html
    assert "10 min at 4.2 km/h" in html and "2 x 8 x 27 kg" in html
    assert "Karvonen 40%-60% of HR reserve" in html and "HR above 136 bpm" in html
    assert "Walk for 10 minutes at 4.2 km/h" in html  # participant page, plain words
    assert "chest pain or tightness" in html and "Week 8" in html
    assert html.count('<tr><td class="num">') >= 16  # one diary row per session


def test_card_shows_the_next_session_and_pacing() -> None:
    html = render_card_html(_progress(plan(pem_positive=True), sessions=2))
    assert "Next session (3)" in html and "badge pacing" in html
    assert "Your programme is <b>paced</b>" in html


def test_card_files_are_written_atomically_and_never_overwritten(tmp_path: Path) -> None:
    progress = _progress(plan())
    pdf = write_card(progress, tmp_path / "card.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 5000
    html = write_card(progress, tmp_path / "card.html")
    assert html.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(ConfigError, match="exists: pass --overwrite"):
        write_card(progress, tmp_path / "card.pdf")
    with pytest.raises(RehabError, match="use a .html or .pdf name"):
        write_card(progress, tmp_path / "card.docx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["card.html", "card.pdf"]


def test_explanation_lists_safety_checks_and_rules() -> None:
    p = plan()
    prog = programme()
    first = outcome(p.start_doses(), 1, R, spo2_lowest_pct=85, stopped_during="walking")
    progress = replay(p, prog, [first])
    text = explain_session(progress.decisions[0], first, plan=p, programme=prog)
    assert "Session 1 of LEI-0001" in text.header
    assert any("STOP criterion: lowest SpO2 85% < floor 88%" in s and "PENDING" in s for s in text.safety)
    assert any("PESE: none" == s for s in text.safety)
    walking = next(e for e in text.exercises if e.exercise_id == "walking")
    assert (walking.action, walking.rule, walking.next_dose) == (
        "step back",
        "stop_criterion",
        "8 min at 4.0 km/h",
    )


def test_synthetic_baseline_is_a_valid_assessment() -> None:
    rng = np.random.default_rng(1)
    from immunorehab.rehab.assessment import assessment_from_values

    for _ in range(30):
        values = synthetic_baseline(
            rng, age_years=int(rng.integers(30, 80)), sex="male" if rng.random() < 0.5 else "female"
        )
        a = assessment_from_values(values, participant_id="X", age_years=60, programme=programme())
        assert 40 <= a.iswt_distance_m <= 1100 and a.iswt_distance_m % 10 == 0
        assert a.pem.source == "items" and a.pem.positive == values["dsq_pem_present"]


def test_synthetic_sessions_follow_the_engine_and_parse_cleanly() -> None:
    p, prog = plan(), programme()
    log = synthetic_sessions(
        p,
        prog,
        participant_id="LEI-0001",
        start=R,
        today=R + dt.timedelta(days=70),
        rng=np.random.default_rng(7),
        stop_at_session=4,
    )
    assert log.stop_sessions == [4] and log.clearances[0].session_no == 4
    assert len(log.rows) == 16
    frame = pd.DataFrame(log.rows).astype(object).where(pd.notna, None)
    for row in frame.to_dict(orient="records"):
        entry, problems = parse_session_values(row, prog, where="row")
        assert problems == [] and entry is not None
    again = synthetic_sessions(
        p,
        prog,
        participant_id="LEI-0001",
        start=R,
        today=R + dt.timedelta(days=70),
        rng=np.random.default_rng(7),
        stop_at_session=4,
    )
    assert again.rows == log.rows


def test_plots_are_written_as_png_and_svg(tmp_path: Path) -> None:
    from immunorehab.rehab.adherence import participant_adherence
    from immunorehab.rehab.plots import adherence_figure, progression_figure, save_figure

    progress = _progress(plan(), sessions=4)
    png = save_figure(progression_figure(progress), tmp_path / "p.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    row = participant_adherence(
        participant_id="LEI-0001",
        arm="face_to_face",
        programme=progress.programme,
        progress=progress.progress,
        outcomes=progress.outcomes,
        randomised_on=R,
        today=R + dt.timedelta(days=20),
    )
    svg = save_figure(adherence_figure([row], completer_pct=75), tmp_path / "a.svg")
    assert "<svg" in svg.read_text()[:500]
    with pytest.raises(ConfigError, match="exists"):
        save_figure(progression_figure(progress), tmp_path / "p.png")
    with pytest.raises(RehabError, match="use a .png or .svg name"):
        save_figure(progression_figure(progress), tmp_path / "p.jpg")
    with pytest.raises(RehabError, match="nothing to plot"):
        adherence_figure([], completer_pct=75)
