"""Small studies built through the real store APIs for the study-analysis tests.

Participants are enrolled and randomised (or followed, for a cohort), visits recorded with
``record_visit``; cytometry results stored through the cytometry service (``store_outcome``);
cytokine plates simulated, written, read, fitted and imported through the cytokine capability;
rehabilitation prescribed, simulated and imported through the rehab capability.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from factories import person
from immunorehab.cytokines.assay import load_assay
from immunorehab.cytokines.demo import example_assay_path
from immunorehab.cytokines.io_plate import file_sha256, read_plate_map, read_readings
from immunorehab.cytokines.process import process_plate
from immunorehab.cytokines.service import import_plate
from immunorehab.cytometry.manifest import ManifestRow
from immunorehab.cytometry.pipeline import GateOptions
from immunorehab.cytometry.service import store_outcome
from immunorehab.rehab.logbook import import_sessions
from immunorehab.rehab.service import prescribe
from immunorehab.simulate.plates import SampleSpec, simulate_plate, write_plate
from immunorehab.simulate.sessions import synthetic_sessions
from immunorehab.study.allocation import randomise
from immunorehab.study.participants import add_participant
from immunorehab.study.store import Store
from immunorehab.study.visits import record_visit

RANDOMISED = dt.date(2026, 2, 2)
TODAY = dt.date(2026, 11, 22)
GATES = ("cd4_naive", "cd4_cm", "cd4_em", "cd4_temra", "cd8_naive", "cd8_cm", "cd8_em", "cd8_temra")
#: True arm effects (ratio on the % of parent at week 8) of the synthetic exercise arm.
EFFECT = {"cd8_naive": 1.25, "cd4_naive": 1.15, "cd4_cm": 1.1, "cd8_cm": 1.1, "cd8_em": 1.1}
REHAB_BASELINE: dict[str, Any] = {
    "mwt6_distance_m": 380,
    "sts_5rep_time_s": 12.5,
    "hr_rest_bpm": 72,
    "spo2_rest_pct": 96,
    **{
        f"rm_{ex}_{k}": v
        for ex in ("leg_press", "knee_extension", "chest_press", "biceps_curl")
        for k, v in (("load_kg", 40), ("reps", 6), ("method", "brzycki"))
    },
    "dsq_pem_present": "no",
}


@dataclass(frozen=True, slots=True)
class Trial:
    """A built trial: participant -> arm (truth kept by the test, never read by the analysis)."""

    store: Store
    arms: dict[str, str]
    week8: dict[str, bool]


def write_protocol(base: Path, folder: Path, edit: Any) -> Path:
    """A copy of protocol ``base`` with ``edit(data)`` applied (e.g. outcomes added)."""
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    edit(data)
    path = folder / f"edited_{base.name}"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _visit_values(visit: str, rng: np.random.Generator, effect: float, rehab: bool) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iswt_distance_m": int(np.clip(300 + effect + rng.normal(0, 70), 60, 1400)),
        "facit_fatigue": int(np.clip(28 + rng.normal(0, 6), 0, 52)),
        "blood_drawn": True,
    }
    if visit == "baseline" and rehab:
        values.update(REHAB_BASELINE)
    return values


def build_trial(
    store: Store,
    *,
    n: int = 30,
    seed: int = 7,
    missing_week8: Sequence[int] = (3, 11, 19),
    rehab: bool = False,
    visit_values: Any = _visit_values,
) -> Trial:
    """Enrol and randomise ``n`` participants; record baseline and week 8 (some week 8 missing)."""
    rng = np.random.default_rng(seed)
    arms: dict[str, str] = {}
    week8: dict[str, bool] = {}
    for i in range(n):
        values = person(
            age_years=int(rng.integers(35, 80)),
            who_severity=int(rng.choice([4, 5, 6, 7])),
            cmv_serostatus=str(rng.choice(["positive", "negative"])),
        )
        pid = add_participant(store, by="coord", values=values, today=TODAY).participant_id
        arm = randomise(store, by="coord", participant_id=pid, on=RANDOMISED).arm
        arms[pid] = arm
        gain = 60.0 if arm != "usual_care" else 0.0
        record_visit(
            store,
            by="physio1",
            participant_id=pid,
            visit_id="baseline",
            visit_date=RANDOMISED,
            values=visit_values("baseline", rng, 0.0, rehab),
            today=TODAY,
        )
        week8[pid] = i not in missing_week8
        if week8[pid]:
            record_visit(
                store,
                by="assessor1",
                participant_id=pid,
                visit_id="week8",
                visit_date=RANDOMISED + dt.timedelta(days=56),
                values=visit_values("week8", rng, gain, False),
                today=TODAY,
            )
    return Trial(store, arms, week8)


def store_gates(
    store: Store, rows: Sequence[tuple[str, str, Mapping[str, float]]], *, tube: str = "1"
) -> None:
    """Store gate results (% of parent) per participant-visit through the cytometry service."""
    options = GateOptions()
    for k, (pid, visit, pct) in enumerate(rows):
        digest = hashlib.sha256(f"{pid}/{visit}/{tube}/{k}".encode()).hexdigest()
        counts = pd.DataFrame(
            [
                {
                    "gate": gate,
                    "parent": gate.split("_")[0],
                    "count": int(round(value * 100)),
                    "parent_count": 10000,
                    "pct_parent": value,
                    "pct_total": value / 4,
                    "cells_per_ul": value * 3.0,
                }
                for gate, value in pct.items()
            ]
        )
        store_outcome(
            store,
            by="lab1",
            row=ManifestRow(
                row=k + 2,
                file=Path(f"{pid}_{visit}_{tube}.fcs"),
                participant_id=pid,
                visit_id=visit,
                tube=tube,
            ),
            options=options,
            file_sha256=digest,
            strategy_sha256="0" * 64,
            placed_gatingml="<gating/>",
            placed_sha256="1" * 64,
            n_events=100000,
            counts=counts,
            moves=pd.DataFrame(),
            flags=[],
        )


def gate_values(trial: Trial, rng: np.random.Generator) -> list[tuple[str, str, dict[str, float]]]:
    """Baseline and week-8 subsets; the exercise arm's week-8 values carry :data:`EFFECT`."""
    rows = []
    for pid, arm in trial.arms.items():
        person_level = {g: float(np.exp(rng.normal(np.log(20.0), 0.3))) for g in GATES}
        rows.append(
            (pid, "baseline", {g: v * float(np.exp(rng.normal(0, 0.1))) for g, v in person_level.items()})
        )
        if trial.week8[pid]:
            ratio = {g: EFFECT.get(g, 1.0) if arm != "usual_care" else 1.0 for g in GATES}
            rows.append(
                (
                    pid,
                    "week8",
                    {g: v * ratio[g] * float(np.exp(rng.normal(0, 0.1))) for g, v in person_level.items()},
                )
            )
    return rows


def import_cytokines(store: Store, specs: Sequence[SampleSpec], folder: Path, *, seed: int = 3) -> None:
    """Simulate plates for ``specs``, write them, read them back, fit and import (lab user)."""
    rng = np.random.default_rng(seed)
    assay_path = example_assay_path()
    assay, assay_sha = load_assay(assay_path), file_sha256(assay_path)
    for n, start in enumerate(range(0, len(specs), 37), start=1):
        plate = simulate_plate(list(specs[start : start + 37]), rng=rng, plate_id=f"TEST-P{n:02d}")
        map_path, readings_path = write_plate(plate, folder / "plates", "long")
        readings = read_readings(readings_path)
        result = process_plate(read_plate_map(map_path), readings, assay, plate_id=plate.plate_id)
        import_plate(
            store,
            by="lab1",
            result=result,
            readings_file=readings_path.name,
            plate_map_file=map_path.name,
            assay_name=assay.assay.name,
            assay_sha256=assay_sha,
        )


def prescribe_and_log(store: Store, trial: Trial, folder: Path, *, seed: int = 11) -> None:
    """Prescribe for the exercise arm and import 8 weeks of synthetic sessions (physio user)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for pid, arm in trial.arms.items():
        if arm == "usual_care":
            continue
        rx = prescribe(store, by="physio1", participant_id=pid, on=RANDOMISED, today=TODAY)
        log = synthetic_sessions(
            rx.plan,
            rx.programme,
            participant_id=pid,
            start=RANDOMISED + dt.timedelta(days=1),
            today=TODAY,
            rng=rng,
        )
        rows += log.rows
    path = folder / "sessions.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    import_sessions(store, by="physio1", path=path, today=TODAY)


def fresh_database(request: pytest.FixtureRequest, folder: Path) -> tuple[str, Any]:
    """A new study database URL for the backend in ``request.param``, and how to drop it (PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{folder / 'study.db'}", None
    admin_url = request.getfixturevalue("pg_admin_url")
    name = f"immunorehab_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url, drop
