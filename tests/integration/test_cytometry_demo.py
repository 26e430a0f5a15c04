"""The cytometry demo step on a small study: one file per blood-draw visit, gated and stored as lab1."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from factories import person
from immunorehab.cytometry.demo import demo_cytometry, participant_fractions
from immunorehab.study.allocation import randomise
from immunorehab.study.demo import DEMO_STEPS, DemoContext
from immunorehab.study.participants import add_participant
from immunorehab.study.service import get_protocol
from immunorehab.study.visits import record_visit


def _baseline(study, pid: str, *, blood: bool) -> None:
    with study.store.read("coord") as session:
        protocol = get_protocol(session)
    visit = protocol.visit("baseline")
    values = {}
    for m in visit.measures:
        if not m.required:
            continue
        if m.type in ("number", "integer"):
            values[m.id] = int((m.min or 0) + 1)
        elif m.type == "boolean":
            values[m.id] = blood if m.id == "blood_drawn" else False
        elif m.type == "choice":
            values[m.id] = m.choices[0]
    record_visit(study.store, by="physio1", participant_id=pid, visit_id="baseline",
                 visit_date=dt.date(2026, 2, 1), values=values, today=dt.date(2026, 2, 2))  # fmt: skip


@pytest.mark.slow  # spawns two worker processes
def test_demo_step_gates_and_stores_each_blood_draw(study, tmp_path: Path) -> None:
    assert "immunorehab.cytometry.demo:demo_cytometry" in DEMO_STEPS
    ids = []
    for k in range(3):
        pid = add_participant(study.store, by="coord", values=person(age_years=40 + 20 * k)).participant_id
        randomise(study.store, by="coord", participant_id=pid, on=dt.date(2026, 2, 2))
        _baseline(study, pid, blood=k != 1)  # the second participant gave no blood
        ids.append(pid)
    with study.store.read("coord") as session:
        protocol = get_protocol(session)
    progress: list[tuple[str, int, int]] = []
    ctx = DemoContext(
        store=study.store, out=tmp_path, seed=7, today=dt.date(2026, 2, 2), protocol=protocol,
        randomised=tuple((p, dt.date(2026, 2, 2)) for p in ids), users={"lab1": "lab"},
        on_progress=lambda *a: progress.append(a),
    )  # fmt: skip
    lines = demo_cytometry(ctx)
    assert lines[0].startswith("Gated 2 synthetic FCS files (20,000 events, 16 channels)")
    assert "2 stored as lab1, 0 failed" in lines[0]
    assert lines[2].startswith("Mean % of parent: t_cells ")
    assert ("Simulating FCS files", 2, 2) in progress and ("Gating FCS files", 2, 2) in progress
    with study.store.engine.connect() as conn:
        stored = conn.execute(
            sa.text("SELECT participant_id, visit_id, processed_by FROM cytometry_file")
        ).all()
    assert sorted(stored) == sorted([(ids[0], "baseline", "lab1"), (ids[2], "baseline", "lab1")])


def test_naive_fraction_falls_with_age() -> None:
    rng = np.random.default_rng(1)
    young = np.mean([participant_fractions(25, "negative", rng).cd8_memory.naive for _ in range(200)])
    old = np.mean([participant_fractions(75, "negative", rng).cd8_memory.naive for _ in range(200)])
    cmv = np.mean([participant_fractions(50, "positive", rng).cd8_memory.temra for _ in range(200)])
    no_cmv = np.mean([participant_fractions(50, "negative", rng).cd8_memory.temra for _ in range(200)])
    assert young - old > 0.2 and cmv - no_cmv > 0.1
