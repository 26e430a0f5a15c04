"""The protocol analysis end to end on a simulated study of 10,000 participants x 6 visits x 30 markers.

Run with ``make bench``; the figure is recorded in benchmarks/README.md (target: under 60 s).

The study is a SQLite store created from the PHOSP-R protocol (six visits) with an analysis plan of
31 outcomes: the primary ISWT at 8 weeks (ANCOVA, ITT with MICE, m = 20, 8% of week-8 values
missing) and 30 immune markers stored as cytometry gate results at every visit (60,000 files,
1,800,000 gate rows): 28 by ANCOVA of the log value at week 8 (exploratory, Benjamini-Hochberg)
and 2 by MMRM over the five post-baseline visits (Kenward-Roger). The rows are bulk-inserted
(setup, not timed); the timed call is ``run_study_analysis``: one query per source, tidy frames,
models, family-wise adjustment, descriptives, methods and provenance.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sqlalchemy import insert

from immunorehab.analysis.study import run_study_analysis
from immunorehab.cytometry.tables import CytometryFile, GateResultRow
from immunorehab.study.models import Allocation, Measurement, Participant, VisitRecord
from immunorehab.study.service import add_user, create_study
from immunorehab.study.store import Store
from testpaths import PHOSP

N, MARKERS, MMRM_MARKERS = 10_000, 30, 2
VISITS = ("baseline", "week8", "month3", "month6", "month12", "month24")
DAYS = {"baseline": 0, "week8": 56, "month3": 91, "month6": 182, "month12": 365, "month24": 730}
ARMS = ("face_to_face", "remote", "usual_care")
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
START = dt.date(2024, 1, 8)


def _plan() -> dict[str, Any]:
    markers = [
        {
            "id": f"marker_{k:02d}",
            "label": f"Immune marker {k:02d} (% of parent)",
            "source": {"type": "cytometry", "gate": f"gate_{k:02d}", "quantity": "pct_parent"},
            "visits": list(VISITS[1:]) if k <= MMRM_MARKERS else ["week8"],
            "role": "exploratory",
            "family": "markers_mmrm" if k <= MMRM_MARKERS else "markers",
            "transform": "log",
            "model": "mmrm" if k <= MMRM_MARKERS else "ancova",
            "impute": False,
        }
        for k in range(1, MARKERS + 1)
    ]
    primary = {
        "id": "iswt_week8",
        "label": "ISWT distance at 8 weeks (m)",
        "source": {"type": "visit", "measure": "iswt_distance_m"},
        "visits": ["week8"],
        "role": "primary",
        "family": "primary",
    }
    return {
        "reference_arm": "usual_care",
        "imputation": {"method": "mice", "m": 20, "iterations": 10, "seed": 1},
        "families": [
            {"id": "primary", "method": "holm"},
            {"id": "markers", "method": "BH"},
            {"id": "markers_mmrm", "method": "BH"},
        ],
        "outcomes": [primary, *markers],
    }


def _protocol(folder: Path) -> Path:
    data = yaml.safe_load(PHOSP.read_text(encoding="utf-8"))
    data["analysis"] = _plan()
    path = folder / "bench_protocol.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _people(rng: np.random.Generator) -> tuple[list[dict[str, Any]], np.ndarray]:
    age = rng.integers(30, 85, N)
    severity = rng.integers(4, 10, N)
    people = [
        {
            "id": i + 1,
            "participant_id": f"LEI-{i + 1:05d}",
            "site": "LEI",
            "site_seq": i + 1,
            "consent_date": START,
            "age_years": int(age[i]),
            "sex": "female",
            "who_severity": int(severity[i]),
            "hospitalised": True,
            "icu_admitted": False,
            "invasive_ventilation": False,
            "vaccination_doses": 3,
            "cmv_serostatus": "positive",
            "days_since_infection": 120,
            "eligible": True,
            "failed_criteria": "",
            "created_at": NOW,
            "created_by": "admin",
        }
        for i in range(N)
    ]
    return people, np.stack([age, severity], axis=1)


def _allocations(rng: np.random.Generator, covariates: np.ndarray) -> tuple[list[dict[str, Any]], np.ndarray]:
    arm = rng.integers(0, 3, N)
    rows = []
    for i in range(N):
        levels = {
            "age_band": "<60" if covariates[i, 0] < 60 else ">=60",
            "acute_severity": "ward" if covariates[i, 1] <= 5 else "hdu_icu",
        }
        rows.append(
            {
                "sequence": i + 1,
                "participant_pk": i + 1,
                "participant_id": f"LEI-{i + 1:05d}",
                "arm": ARMS[arm[i]],
                "stratum": "|".join(f"{k}={v}" for k, v in levels.items()),
                "stratum_position": i,
                "levels_json": json.dumps(levels, sort_keys=True),
                "detail_json": "{}",
                "allocated_on": START,
                "allocated_at": NOW,
                "allocated_by": "admin",
                "prev_hash": "0" * 64,
                "hash": uuid.uuid4().hex * 2,
            }
        )
    return rows, arm


def _visits_and_iswt(
    rng: np.random.Generator, arm: np.ndarray
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records, measures = [], []
    base = rng.normal(350, 90, N)
    missing = rng.random(N) < 0.08
    for v, visit in enumerate(VISITS):
        for i in range(N):
            pk = v * N + i + 1
            records.append(
                {
                    "id": pk,
                    "participant_pk": i + 1,
                    "participant_id": f"LEI-{i + 1:05d}",
                    "visit_id": visit,
                    "visit_date": START + dt.timedelta(days=DAYS[visit]),
                    "recorded_at": NOW,
                    "recorded_by": "admin",
                }
            )
            if visit in ("baseline", "week8") and not (visit == "week8" and missing[i]):
                value = base[i] if visit == "baseline" else base[i] + 40 * (arm[i] < 2) + rng.normal(0, 50)
                value = float(int(np.clip(value, 20, 1400)))
                measures.append(
                    {
                        "visit_record_id": pk,
                        "participant_id": f"LEI-{i + 1:05d}",
                        "visit_id": visit,
                        "measure_id": "iswt_distance_m",
                        "value_text": str(int(value)),
                        "value_num": value,
                    }
                )
    return records, measures


def _cytometry(store: Store, rng: np.random.Generator, arm: np.ndarray) -> None:
    level = np.exp(rng.normal(np.log(20.0), 0.3, (N, MARKERS)))
    with store.engine.begin() as conn:
        for v, visit in enumerate(VISITS):
            effect = np.where((arm < 2) & (v > 0), 1.1, 1.0)[:, None]
            pct = np.clip(level * effect * np.exp(rng.normal(0, 0.15, (N, MARKERS))), 0.5, 95.0)
            files = [
                {
                    "id": v * N + i + 1,
                    "participant_pk": i + 1,
                    "participant_id": f"LEI-{i + 1:05d}",
                    "visit_id": visit,
                    "tube": "1",
                    "file_name": f"LEI-{i + 1:05d}_{visit}.fcs",
                    "file_sha256": f"{v * N + i:064x}",
                    "strategy_sha256": "0" * 64,
                    "placed_strategy_sha256": "0" * 64,
                    "template": "tcell-memory",
                    "panel_sha256": None,
                    "auto_placement": True,
                    "n_events": 100000,
                    "draw_time": None,
                    "absolute_method": "none",
                    "beads_per_tube": None,
                    "volume_ul": None,
                    "lymphocytes_per_ul": None,
                    "placed_gatingml": "",
                    "processed_at": NOW,
                    "processed_by": "lab1",
                }
                for i in range(N)
            ]
            conn.execute(insert(CytometryFile), files)
            gates = [
                {
                    "file_id": v * N + i + 1,
                    "participant_id": f"LEI-{i + 1:05d}",
                    "visit_id": visit,
                    "gate": f"gate_{k + 1:02d}",
                    "parent": "t_cells",
                    "count": int(pct[i, k] * 100),
                    "parent_count": 10000,
                    "pct_parent": float(pct[i, k]),
                    "pct_total": float(pct[i, k] / 4),
                    "cells_per_ul": None,
                    "medians_json": "{}",
                }
                for i in range(N)
                for k in range(MARKERS)
            ]
            conn.execute(insert(GateResultRow), gates)


@pytest.fixture(scope="module")
def big_study(tmp_path_factory: pytest.TempPathFactory) -> Store:
    folder = tmp_path_factory.mktemp("bench_study")
    store, _ = create_study(f"sqlite:///{folder / 'study.db'}", _protocol(folder), admin="admin", seed=1)
    add_user(store, by="admin", username="stats1", role="statistician")
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    people, covariates = _people(rng)
    allocations, arm = _allocations(rng, covariates)
    records, measures = _visits_and_iswt(rng, arm)
    with store.engine.begin() as conn:
        conn.execute(insert(Participant), people)
        conn.execute(insert(Allocation), allocations)
        conn.execute(insert(VisitRecord), records)
        conn.execute(insert(Measurement), measures)
    _cytometry(store, rng, arm)
    store.info = {"setup_s": time.perf_counter() - started}  # type: ignore[attr-defined]
    return store


def test_bench_study_analysis_10k_6_visits_30_markers(benchmark, big_study: Store) -> None:  # type: ignore[no-untyped-def]
    benchmark.extra_info["bulk_insert_s"] = round(getattr(big_study, "info", {}).get("setup_s", 0.0), 1)
    analysis = benchmark.pedantic(
        lambda: run_study_analysis(big_study, by="stats1", today=dt.date(2026, 11, 1)),
        rounds=3,
        iterations=1,
    )
    res = analysis.results
    assert analysis.provenance["rows"]["cytometry_gate_results"] == N * len(VISITS) * MARKERS
    assert len(res) == 2 * (1 + MARKERS)  # two contrasts per outcome, ITT
    markers = res[res["family"] == "markers"]
    assert markers["estimate"].between(1.05, 1.15).all()  # the simulated 10% arm effect
    assert benchmark.stats.stats.median < 60.0
