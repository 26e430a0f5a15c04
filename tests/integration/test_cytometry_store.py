"""Cytometry results in the study store (SQLite and PostgreSQL): per-file all-or-nothing writes, hashes,
resume, roles and blinding, exercise QC flag from the visit measure, manifest checks against the study."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from factories import person
from immunorehab.cytometry import service as cyto_service
from immunorehab.cytometry.batch import run_batch, sha256_file
from immunorehab.cytometry.manifest import read_manifest
from immunorehab.cytometry.pipeline import GateOptions
from immunorehab.errors import (
    BatchError,
    DataValidationError,
    ManifestError,
    PermissionDenied,
    Problem,
    StudyError,
)
from immunorehab.simulate.fcs import BeadSpec, simulate_panel_sample
from immunorehab.study.allocation import randomise
from immunorehab.study.participants import add_participant
from immunorehab.study.protocol import Measure
from immunorehab.study.service import get_protocol
from immunorehab.study.visits import record_visit

OPTIONS = GateOptions.create(mfi_markers=("CD3", "CD8"))
TABLES = ("cytometry_file", "cytometry_gate_result", "cytometry_gate_move", "cytometry_qc_flag")


@pytest.fixture(scope="module")
def fcs_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("fcs")
    return [
        simulate_panel_sample(
            12_000, rng=np.random.default_rng(70 + i), path=folder / f"t{i}.fcs", beads=BeadSpec()
        )[0]
        for i in range(3)
    ]


def _value(measure: Measure) -> Any:
    if measure.type in ("number", "integer"):
        low = measure.min if measure.min is not None else 0
        return int(low + 1) if measure.type == "integer" else float(low) + 0.5
    if measure.type == "boolean":
        return True
    if measure.type == "choice":
        return measure.choices[0]
    return "x"


@pytest.fixture
def enrolled(study) -> list[str]:
    """Three randomised participants; the first gave blood 10 h after exercising at baseline."""
    ids = []
    for _ in range(3):
        pid = add_participant(study.store, by="coord", values=person()).participant_id
        randomise(study.store, by="coord", participant_id=pid, on=dt.date(2026, 2, 2))
        ids.append(pid)
    with study.store.read("coord") as session:
        visit = get_protocol(session).visit("baseline")
    values = {m.id: _value(m) for m in visit.measures if m.required}
    values["hours_since_exercise"] = 10
    record_visit(
        study.store,
        by="physio1",
        participant_id=ids[0],
        visit_id="baseline",
        visit_date=dt.date(2026, 2, 1),
        values=values,
        today=dt.date(2026, 2, 2),
    )
    return ids


def _manifest(tmp_path: Path, files: list[Path], rows: list[tuple[str, str]]) -> Path:
    lines = ["file,participant_id,visit_id,draw_time,beads_per_tube,volume_ul"]
    lines += [
        f"{f},{pid},{visit},2026-02-01T09:00,50000,50" for f, (pid, visit) in zip(files, rows, strict=True)
    ]
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _table_counts(study) -> dict[str, int]:
    with study.store.engine.connect() as conn:
        return {t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}


def test_batch_results_are_stored_against_participant_and_visit(study, enrolled, fcs_files, tmp_path) -> None:
    rows = [(enrolled[0], "baseline"), (enrolled[1], "baseline"), (enrolled[2], "week8")]
    manifest = read_manifest(_manifest(tmp_path, fcs_files, rows))
    report = run_batch(
        manifest, out=tmp_path / "out", options=OPTIONS, workers=1, store=study.store, user="lab1"
    )
    assert report.stored == 3 and report.count("failed") == 0
    stored = cyto_service.results_frame(study.store, by="lab1")
    csv = pd.read_csv(tmp_path / "out" / "counts.csv")
    merged = stored.merge(csv, on=["participant_id", "visit_id", "gate"], suffixes=("_db", "_csv"))
    assert len(merged) == len(csv) == 3 * 23
    assert (merged["count_db"] == merged["count_csv"]).all()
    np.testing.assert_allclose(merged["pct_parent_db"], merged["pct_parent_csv"], rtol=1e-9, equal_nan=True)
    np.testing.assert_allclose(
        merged["cells_per_ul_db"], merged["cells_per_ul_csv"], rtol=1e-9, equal_nan=True
    )
    np.testing.assert_allclose(merged["median_CD8_db"], merged["median_CD8_csv"], rtol=1e-9, equal_nan=True)
    first = stored[stored["participant_id"] == enrolled[0]]
    assert set(first["file_sha256"]) == {sha256_file(fcs_files[0])}
    assert set(first["strategy_sha256"]) == {OPTIONS.sha256()}
    assert "draw_after_exercise" in first["qc_flags"].iloc[0].split(";")  # visit measure: 10 h < 24 h
    second = stored[stored["participant_id"] == enrolled[1]]
    assert "draw_after_exercise" not in second["qc_flags"].iloc[0].split(";")
    with study.store.read("lab1") as session:
        from immunorehab.cytometry.tables import CytometryFile

        record = session.scalars(
            sa.select(CytometryFile).where(CytometryFile.participant_id == enrolled[0])
        ).one()
        assert record.absolute_method == "single_platform" and record.n_events == 12_000
        assert (
            record.placed_gatingml.startswith("<?xml")
            and record.placed_strategy_sha256 != record.strategy_sha256
        )
        assert {m.rule for m in record.moves} >= {"cluster", "cd8:CCR7"}
    with study.store.engine.connect() as conn:
        events = conn.execute(
            sa.text("SELECT entity, username FROM audit_event WHERE entity LIKE 'cytometry%'")
        ).all()
    assert {e for e, _ in events} == set(TABLES)
    assert {u for _, u in events} == {"lab1"}

    again = run_batch(
        manifest, out=tmp_path / "out2", options=OPTIONS, workers=1, store=study.store, user="lab1"
    )
    assert [o.status for o in again.outcomes] == ["skipped"] * 3 and again.stored == 0
    assert _table_counts(study)["cytometry_file"] == 3


def test_unknown_participant_or_visit_stops_the_batch_before_anything(
    study, enrolled, fcs_files, tmp_path
) -> None:
    rows = [(enrolled[0], "baseline"), ("LEI-9999", "baseline"), (enrolled[2], "day3")]
    manifest = read_manifest(_manifest(tmp_path, fcs_files, rows))
    with pytest.raises(ManifestError) as info:
        run_batch(manifest, out=tmp_path / "out", options=OPTIONS, workers=1, store=study.store, user="lab1")
    text = str(info.value)
    assert "row 3, field participant_id: LEI-9999 is not a participant of the study" in text
    assert "row 4, field visit_id: 'day3' is not a protocol visit (baseline, week8" in text
    assert _table_counts(study) == dict.fromkeys(TABLES, 0)
    assert not (tmp_path / "out").exists()


def test_only_lab_and_admin_store_results(study, enrolled, fcs_files, tmp_path) -> None:
    manifest = read_manifest(_manifest(tmp_path, fcs_files[:1], [(enrolled[0], "baseline")]))
    with pytest.raises(
        PermissionDenied, match="role physio.*store cytometry results; allowed roles: admin, lab"
    ):
        run_batch(
            manifest, out=tmp_path / "out", options=OPTIONS, workers=1, store=study.store, user="physio1"
        )
    run_batch(manifest, out=tmp_path / "out", options=OPTIONS, workers=1, store=study.store, user="lab1")
    # every role reads; blinded roles never see rehab-session information (it reveals the arm)
    for user in ("assessor1", "lab1"):
        frame = cyto_service.results_frame(study.store, by=user)
        assert len(frame) == 23 and "logged_session_near_draw" not in frame.columns
        assert not {"arm", "allocation"} & set(frame.columns)
    assert "logged_session_near_draw" in cyto_service.results_frame(study.store, by="stats1").columns
    with study.store.read("assessor1") as session, pytest.raises(PermissionDenied, match="reveal the arm"):
        cyto_service.logged_sessions_near_draw(
            session, enrolled[0], dt.datetime(2026, 2, 1, 9, tzinfo=dt.UTC)
        )


def test_a_failed_store_write_leaves_nothing_and_the_batch_goes_on(
    study, enrolled, fcs_files, tmp_path, monkeypatch
) -> None:
    original = cyto_service._add_children
    calls = {"n": 0}

    def failing(record, counts, moves, flags) -> None:
        calls["n"] += 1
        original(record, counts, moves, flags)
        if calls["n"] == 1:  # the first file fails after all its rows were added to the session
            raise DataValidationError("injected", [Problem("test", "store write fails midway")])

    monkeypatch.setattr(cyto_service, "_add_children", failing)
    rows = [(enrolled[0], "baseline"), (enrolled[1], "baseline")]
    manifest = read_manifest(_manifest(tmp_path, fcs_files[:2], rows))
    report = run_batch(
        manifest, out=tmp_path / "out", options=OPTIONS, workers=1, store=study.store, user="lab1"
    )
    assert [o.status for o in report.outcomes] == ["failed", "gated"]
    assert "not stored: injected" in report.failures[0].error
    counts = _table_counts(study)
    assert counts["cytometry_file"] == 1 and counts["cytometry_gate_result"] == 23
    stored = cyto_service.results_frame(study.store, by="lab1")
    assert set(stored["participant_id"]) == {enrolled[1]}
    # the failed file is not in the ledger: the next run picks it up
    again = run_batch(
        manifest, out=tmp_path / "out", options=OPTIONS, workers=1, store=study.store, user="lab1"
    )
    assert [o.status for o in again.outcomes] == ["gated", "skipped"]


def test_replacing_stored_results_needs_a_reason(study, enrolled, fcs_files, tmp_path) -> None:
    manifest = read_manifest(_manifest(tmp_path, fcs_files[:1], [(enrolled[1], "baseline")]))
    run_batch(manifest, out=tmp_path / "out", options=OPTIONS, workers=1, store=study.store, user="lab1")
    with pytest.raises(BatchError, match="needs a reason"):
        run_batch(
            manifest, out=tmp_path / "o", options=OPTIONS, store=study.store, user="lab1", replace_stored=True
        )
    report = run_batch(
        manifest,
        out=tmp_path / "out",
        options=OPTIONS,
        workers=1,
        store=study.store,
        user="lab1",
        replace_stored=True,
        reason="re-gated after instrument QC",
    )
    assert report.stored == 1 and _table_counts(study)["cytometry_file"] == 1
    with study.store.engine.connect() as conn:
        reasons = (
            conn.execute(
                sa.text(
                    "SELECT DISTINCT reason FROM audit_event "
                    "WHERE entity = 'cytometry_file' AND action = 'delete'"
                )
            )
            .scalars()
            .all()
        )
    assert reasons == ["re-gated after instrument QC"]


def test_store_outcome_refuses_an_unknown_participant(study, enrolled, fcs_files) -> None:
    from immunorehab.cytometry.manifest import ManifestRow

    row = ManifestRow(row=2, file=fcs_files[0], participant_id="LEI-9998", visit_id="baseline")
    with pytest.raises((DataValidationError, StudyError), match="no participant LEI-9998"):
        cyto_service.store_outcome(
            study.store,
            by="lab1",
            row=row,
            options=OPTIONS,
            file_sha256="0" * 64,
            strategy_sha256="1" * 64,
            placed_gatingml="<x/>",
            placed_sha256="2" * 64,
            n_events=0,
            counts=pd.DataFrame(),
            moves=pd.DataFrame(),
            flags=(),
        )


def test_logged_sessions_near_the_draw_for_unblinded_readers_only(
    study, enrolled, fcs_files, tmp_path
) -> None:
    """A rehab session logged the day before the draw shows to the statistician, never to lab or assessor."""
    from immunorehab.rehab.tables import RehabSession
    from immunorehab.study.models import Participant

    with study.store.write("admin") as session:
        person_pk = session.scalar(sa.select(Participant.id).where(Participant.participant_id == enrolled[0]))
        for day, attended in (
            (dt.date(2026, 1, 31), True),
            (dt.date(2026, 1, 20), True),
            (dt.date(2026, 2, 1), False),
        ):
            session.add(
                RehabSession(
                    participant_pk=person_pk, participant_id=enrolled[0], prescription_version=1,
                    session_no=day.day, session_date=day, attended=attended, supervised=True,
                    crash_reported=False, red_flags="", recorded_at=dt.datetime.now(dt.UTC),
                    recorded_by="admin",
                )
            )  # fmt: skip
    manifest = read_manifest(_manifest(tmp_path, fcs_files[:1], [(enrolled[0], "baseline")]))
    run_batch(manifest, out=tmp_path / "out", options=OPTIONS, workers=1, store=study.store, user="lab1")
    unblinded = cyto_service.results_frame(study.store, by="stats1")
    assert set(unblinded["logged_session_near_draw"]) == {"2026-01-31"}  # attended, within a day of the draw
    blinded = cyto_service.results_frame(study.store, by="lab1")
    assert "logged_session_near_draw" not in blinded.columns
    assert not blinded["qc_flags"].str.contains("session").any()
