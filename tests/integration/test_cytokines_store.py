"""Cytokine plates in the study store (SQLite and PostgreSQL): all-or-nothing imports with provenance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from factories import person
from immunorehab.cytokines.assay import load_assay
from immunorehab.cytokines.io_plate import file_sha256, read_plate_map, read_readings
from immunorehab.cytokines.process import PlateResult, process_plate
from immunorehab.cytokines.service import import_plate, stored_controls, stored_curves, stored_results
from immunorehab.errors import DataValidationError, PermissionDenied, StudyError
from immunorehab.simulate.plates import SampleSpec, simulate_levels, simulate_plate, write_plate
from immunorehab.study.participants import add_participant

ASSAY = Path(__file__).resolve().parents[2] / "examples" / "assays" / "long_covid_panel.yaml"


def make_plate(
    tmp_path: Path, pids: list[str], plate_id: str, seed: int = 1
) -> tuple[PlateResult, Path, Path]:
    rng = np.random.default_rng(seed)
    visits = [(p, v) for p in pids for v in ("baseline", "month12")]
    plate = simulate_plate(simulate_levels(visits, rng=rng), rng=rng, plate_id=plate_id)
    map_path, readings_path = write_plate(plate, tmp_path / plate_id, "long")
    result = process_plate(
        read_plate_map(map_path), read_readings(readings_path), load_assay(ASSAY), plate_id=plate_id
    )
    return result, map_path, readings_path


def store_plate(
    study, result: PlateResult, map_path: Path, readings_path: Path, *, by: str = "lab1", reason=None
):
    return import_plate(
        study.store,
        by=by,
        result=result,
        readings_file=readings_path.name,
        plate_map_file=map_path.name,
        assay_name="panel",
        assay_sha256=file_sha256(ASSAY),
        reason=reason,
    )


@pytest.fixture
def pids(study) -> list[str]:
    return [add_participant(study.store, by="coord", values=person()).participant_id for _ in range(4)]


def test_import_stores_results_against_participant_and_visit(study, pids: list[str], tmp_path: Path) -> None:
    result, map_path, readings_path = make_plate(tmp_path, pids, "P01")
    summary = store_plate(study, result, map_path, readings_path)
    assert summary.run_order == 1 and summary.curves_ok + summary.curves_failed == 8
    assert summary.results == len(result.results) and not summary.replaced
    samples = stored_results(study.store, by="stats1")
    assert set(samples["participant"]) == set(pids) and set(samples["visit"]) == {"baseline", "month12"}
    assert len(samples) == len(pids) * 2 * 8
    expected = result.concentrations().sort_values(["participant", "visit", "analyte"]).reset_index(drop=True)
    got = samples.sort_values(["participant", "visit", "analyte"]).reset_index(drop=True)
    assert np.allclose(expected["concentration"], got["concentration"], equal_nan=True)
    assert (expected["flag"] == got["flag"]).all()
    assert not got["visit_recorded"].any()  # lab results may arrive before the visit record
    controls = stored_controls(study.store, by="lab1")
    assert set(controls["control"]) == {"CTRL-L", "CTRL-H"} and (controls["order"] == 1).all()
    assert len(stored_curves(study.store, by="lab1")) == 8
    with study.store.engine.connect() as conn:
        sha = conn.execute(sa.text("SELECT readings_sha256, plate_map_sha256 FROM cytokine_plate")).one()
        audit = conn.execute(
            sa.text("SELECT count(*) FROM audit_event WHERE entity = 'cytokine_result'")
        ).scalar()
    assert sha == (file_sha256(readings_path), file_sha256(map_path))
    assert audit == len(result.results)


def test_blinded_assessor_reads_results_without_allocation(study, pids: list[str], tmp_path: Path) -> None:
    store_plate(study, *make_plate(tmp_path, pids, "P01"))
    frame = stored_results(study.store, by="assessor1")
    assert "arm" not in frame.columns and len(frame) > 0


def test_unknown_participant_or_visit_stores_nothing(study, pids: list[str], tmp_path: Path) -> None:
    result, map_path, readings_path = make_plate(tmp_path, [*pids, "LEI-0999"], "P01")
    with pytest.raises(DataValidationError) as info:
        store_plate(study, result, map_path, readings_path)
    assert "LEI-0999 is not enrolled" in str(info.value) and "nothing stored" in str(info.value)
    assert stored_results(study.store, by="lab1").empty
    bad = result.results.copy()
    bad.loc[bad["role"] == "sample", "visit"] = "month99"
    broken = PlateResult(
        result.plate_id,
        result.assay_id,
        result.curves,
        result.limits,
        result.standards,
        result.wells,
        bad,
        result.notes,
        result.provenance,
    )
    with pytest.raises(DataValidationError, match="visit 'month99' is not in the protocol"):
        store_plate(study, broken, map_path, readings_path)


def test_duplicate_file_and_replacement(study, pids: list[str], tmp_path: Path) -> None:
    result, map_path, readings_path = make_plate(tmp_path, pids, "P01")
    store_plate(study, result, map_path, readings_path)
    with pytest.raises(StudyError, match="pass --reason"):
        store_plate(study, result, map_path, readings_path)
    summary = store_plate(study, result, map_path, readings_path, reason="re-fitted with new assay rules")
    assert summary.replaced and summary.run_order == 1
    other = PlateResult(
        "P02",
        result.assay_id,
        result.curves,
        result.limits,
        result.standards,
        result.wells,
        result.results,
        result.notes,
        result.provenance,
    )
    with pytest.raises(StudyError, match="already imported as plate P01"):
        store_plate(study, other, map_path, readings_path)
    second, m2, r2 = make_plate(tmp_path, pids, "P02", seed=2)
    assert store_plate(study, second, m2, r2).run_order == 2
    assert len(stored_results(study.store, by="lab1")) == 2 * len(pids) * 2 * 8


def test_only_lab_and_admin_import(study, pids: list[str], tmp_path: Path) -> None:
    result, map_path, readings_path = make_plate(tmp_path, pids, "P01")
    with pytest.raises(PermissionDenied, match="import cytokine plates"):
        store_plate(study, result, map_path, readings_path, by="physio1")
    assert stored_results(study.store, by="lab1").empty


def test_sample_spec_dilution_reaches_the_store(study, pids: list[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    spec = SampleSpec(
        pids[0],
        "baseline",
        dict.fromkeys(("IL-6", "TNF-a", "IL-1b", "IP-10", "MCP-1", "MIP-1b", "IFN-g", "IL-10"), 50.0),
        dilution=4.0,
    )
    plate = simulate_plate([spec], rng=rng, plate_id="DIL")
    map_path, readings_path = write_plate(plate, tmp_path, "xponent")
    result = process_plate(read_plate_map(map_path), read_readings(readings_path), load_assay(ASSAY))
    store_plate(study, result, map_path, readings_path)
    got = stored_results(study.store, by="lab1")
    ok = got[got["flag"] == "ok"]
    assert len(ok) >= 6 and np.allclose(ok["concentration"], 50.0, rtol=0.25)
