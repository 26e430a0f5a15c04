"""Batch manifests: every bad row and field reported at once; relative paths; absolute-count inputs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from immunorehab.cytometry.absolute import DualPlatform, SinglePlatform
from immunorehab.cytometry.manifest import read_manifest
from immunorehab.errors import ManifestError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "fcs").mkdir()
    for name in ("a.fcs", "b.fcs", "c.fcs"):
        (tmp_path / "fcs" / name).write_bytes(b"FCS3.1")
    (tmp_path / "panel.csv").write_text("marker,channel\nCD3,BUV395-A\n")
    return tmp_path


def _write(folder: Path, text: str) -> Path:
    path = folder / "manifest.csv"
    path.write_text(text)
    return path


def test_valid_manifest(folder: Path) -> None:
    path = _write(
        folder,
        "file,participant_id,visit_id,tube,panel,draw_time,beads_per_tube,volume_ul,lymphocytes_per_ul\n"
        "fcs/a.fcs,lei-0001,baseline,,panel.csv,2025-03-04T08:30,50000,50,\n"
        "fcs/b.fcs,LEI-0002,week8,2,,2025-03-04T09:00+01:00,,,1800\n"
        "fcs/c.fcs,LEI-0003,week8,,,,,,\n",
    )
    manifest = read_manifest(path)
    a, b, c = manifest.rows
    assert a.file == folder / "fcs" / "a.fcs" and a.participant_id == "LEI-0001" and a.tube == "1"
    assert a.panel == folder / "panel.csv"
    assert a.draw_time == dt.datetime(2025, 3, 4, 8, 30, tzinfo=dt.UTC)
    assert a.absolute() == SinglePlatform(50_000.0, 50.0)
    assert b.absolute() == DualPlatform(1_800.0) and b.tube == "2"
    assert b.draw_time is not None and b.draw_time.utcoffset() == dt.timedelta(hours=1)
    assert c.absolute() is None and c.draw_time is None


def test_every_problem_is_named_by_row_and_field(folder: Path) -> None:
    path = _write(
        folder,
        "file,participant_id,visit_id,draw_time,beads_per_tube,volume_ul,hours_since_exercise\n"
        "fcs/missing.fcs,LEI-0001,baseline,,,,\n"
        "fcs/a.fcs,Alice Smith,baseline,yesterday,50000,,-2\n"
        "fcs/b.fcs,LEI-0002,,,abc,50,\n"
        "fcs/c.fcs,LEI-0003,baseline,,,,\n"
        "fcs/c.fcs,LEI-0003,baseline,,,,\n",
    )
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    text = str(info.value)
    assert "nothing was processed" in text
    for expected in (
        "row 3, field participant_id: expected an ID like LEI-0007, got 'ALICE SMITH'",
        "row 3, field draw_time: expected ISO 8601",
        "row 3, fields beads_per_tube/volume_ul: single-platform counts need both, or neither",
        "row 3, field hours_since_exercise: expected zero or more, got '-2'",
        "row 4, field visit_id: is required",
        "row 4, field beads_per_tube: expected a number, got 'abc'",
        "row 6, field file: " + str(folder / "fcs" / "c.fcs") + " is already listed on row 5",
    ):
        assert expected in text, expected
    assert len(info.value.problems) == 8
    assert (
        "missing.fcs" not in text
    )  # a missing file is the batch's to record (test_batch), not a manifest error


def test_unknown_and_missing_columns(folder: Path) -> None:
    path = _write(folder, "file,participant,visit_id,bead_per_tube\nfcs/a.fcs,LEI-0001,baseline,5\n")
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    text = str(info.value)
    assert "column(s) participant_id missing" in text
    assert "unknown column(s) participant, bead_per_tube" in text


def test_empty_and_missing_manifest(folder: Path) -> None:
    with pytest.raises(ManifestError, match="lists no files"):
        read_manifest(_write(folder, "file,participant_id,visit_id\n"))
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(folder / "nope.csv")


def test_invalid_panel_is_a_row_problem(folder: Path) -> None:
    (folder / "bad.csv").write_text("antigen,detector\n")
    path = _write(folder, "file,participant_id,visit_id,panel\nfcs/a.fcs,LEI-0001,baseline,bad.csv\n")
    with pytest.raises(ManifestError, match="row 2, field panel: panel .*bad.csv: column"):
        read_manifest(path)
