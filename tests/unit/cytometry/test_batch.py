"""Batches: a failing file is reported, the rest go on; resume by file and strategy hash; processes, Dask."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunorehab.cytometry.batch import run_batch, sha256_file
from immunorehab.cytometry.manifest import read_manifest
from immunorehab.cytometry.pipeline import GateOptions
from immunorehab.errors import ManifestError
from immunorehab.simulate.fcs import BeadSpec, simulate_panel_sample

OPTIONS = GateOptions.create(mfi_markers=("CD3",))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fcs")
    for i in range(4):
        beads = BeadSpec() if i % 2 == 0 else None
        simulate_panel_sample(
            12_000, rng=np.random.default_rng(50 + i), path=folder / f"s{i}.fcs", beads=beads
        )
    (folder / "broken.fcs").write_bytes(b"FCS3.1    garbage")
    return folder


def _manifest(folder: Path, tmp_path: Path, names: list[str]) -> Path:
    lines = ["file,participant_id,visit_id,beads_per_tube,volume_ul,hours_since_exercise"]
    for k, name in enumerate(names, start=1):
        beads = "50000,50" if name in ("s0.fcs", "s2.fcs") else ","
        hours = "6" if name == "s1.fcs" else ""
        lines.append(f"{folder / name},LEI-{k:04d},baseline,{beads},{hours}")
    path = tmp_path / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_broken_file_is_reported_and_the_batch_goes_on(files: Path, tmp_path: Path) -> None:
    manifest = read_manifest(_manifest(files, tmp_path, ["s0.fcs", "broken.fcs", "s1.fcs"]))
    seen: list[tuple[str, int, int]] = []
    report = run_batch(
        manifest, out=tmp_path / "out", options=OPTIONS, workers=1, on_progress=lambda *a: seen.append(a)
    )
    assert [o.status for o in report.outcomes] == ["gated", "failed", "gated"]
    assert "broken.fcs" in report.failures[0].error
    assert ("Gating FCS files", 3, 3) in seen and ("Hashing FCS files", 3, 3) in seen
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")
    assert sorted(counts["participant_id"].unique()) == ["LEI-0001", "LEI-0003"]
    assert {
        "sample",
        "gate",
        "parent",
        "count",
        "pct_parent",
        "pct_total",
        "cells_per_ul",
        "median_CD3",
    } <= set(counts.columns)
    beads = counts[counts["participant_id"] == "LEI-0001"].set_index("gate")
    assert beads.loc["t_cells", "cells_per_ul"] > 0
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert failures["row"].tolist() == [3]
    flags = pd.read_csv(tmp_path / "out" / "qc_flags.csv")
    exercise = flags[flags["code"] == "draw_after_exercise"]
    assert exercise["participant_id"].tolist() == ["LEI-0003"]  # hours_since_exercise 6 < 24
    assert "6.0 h after exercise (manifest hours_since_exercise)" in exercise["detail"].iloc[0]


def test_a_missing_file_is_recorded_and_the_batch_goes_on(files: Path, tmp_path: Path) -> None:
    manifest = read_manifest(_manifest(files, tmp_path, ["s0.fcs", "not-there.fcs", "s2.fcs"]))
    report = run_batch(manifest, out=tmp_path / "out", options=OPTIONS, workers=1)
    assert [o.status for o in report.outcomes] == ["gated", "failed", "gated"]
    assert report.failures[0].error == f"{files / 'not-there.fcs'} does not exist (or is not a file)"
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert failures["row"].tolist() == [3] and failures["participant_id"].tolist() == ["LEI-0002"]
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")
    assert sorted(counts["participant_id"].unique()) == ["LEI-0001", "LEI-0003"]
    # once the file is there, a re-run gates it and skips the two done before
    (files / "not-there.fcs").write_bytes((files / "s1.fcs").read_bytes())
    try:
        again = run_batch(manifest, out=tmp_path / "out", options=OPTIONS, workers=1)
    finally:
        (files / "not-there.fcs").unlink()
    assert [o.status for o in again.outcomes] == ["skipped", "gated", "skipped"]


def test_resume_skips_files_already_done_with_the_same_strategy(files: Path, tmp_path: Path) -> None:
    manifest = read_manifest(_manifest(files, tmp_path, ["s0.fcs", "s1.fcs"]))
    first = run_batch(manifest, out=tmp_path / "out", options=OPTIONS, workers=1)
    again = run_batch(manifest, out=tmp_path / "out", options=OPTIONS, workers=1)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
    pd.testing.assert_frame_equal(first.outcomes[0].counts, again.outcomes[0].counts, check_dtype=False)
    ledger = tmp_path / "out" / ".ledger" / f"{sha256_file(files / 's0.fcs')}-{OPTIONS.sha256()[:16]}.json"
    assert ledger.is_file()
    counts = pd.read_csv(tmp_path / "out" / "counts.csv")  # summaries still list the resumed files
    assert sorted(counts["participant_id"].unique()) == ["LEI-0001", "LEI-0002"]
    other = dataclasses.replace(OPTIONS, auto=False)
    assert other.sha256() != OPTIONS.sha256()
    changed = run_batch(manifest, out=tmp_path / "out", options=other, workers=1)
    assert [o.status for o in changed.outcomes] == ["gated", "gated"]


def test_two_rows_with_the_same_file_contents_are_refused(files: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.fcs"
    copy.write_bytes((files / "s0.fcs").read_bytes())
    path = tmp_path / "m.csv"
    path.write_text(
        f"file,participant_id,visit_id\n{files / 's0.fcs'},LEI-0001,baseline\n{copy},LEI-0002,baseline\n"
    )
    with pytest.raises(ManifestError, match="row 3, field file: same contents as row 2"):
        run_batch(read_manifest(path), out=tmp_path / "out", options=OPTIONS, workers=1)


@pytest.mark.slow
def test_worker_processes_give_the_same_results(files: Path, tmp_path: Path) -> None:
    manifest = read_manifest(_manifest(files, tmp_path, ["s0.fcs", "s1.fcs", "s2.fcs", "broken.fcs"]))
    serial = run_batch(manifest, out=tmp_path / "a", options=OPTIONS, workers=1)
    parallel = run_batch(manifest, out=tmp_path / "b", options=OPTIONS, workers=2)
    assert [o.status for o in parallel.outcomes] == ["gated", "gated", "gated", "failed"]
    for a, b in zip(serial.outcomes[:3], parallel.outcomes[:3], strict=True):
        pd.testing.assert_frame_equal(a.counts, b.counts)


@pytest.mark.slow
def test_dask_distributed_cluster(files: Path, tmp_path: Path) -> None:
    from distributed import LocalCluster

    manifest = read_manifest(_manifest(files, tmp_path, ["s0.fcs", "s3.fcs", "broken.fcs"]))
    serial = run_batch(manifest, out=tmp_path / "a", options=OPTIONS, workers=1)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        report = run_batch(manifest, out=tmp_path / "b", options=OPTIONS, scheduler=cluster.scheduler_address)
    assert [o.status for o in report.outcomes] == ["gated", "gated", "failed"]
    for a, b in zip(serial.outcomes[:2], report.outcomes[:2], strict=True):
        pd.testing.assert_frame_equal(a.counts, b.counts)


def test_unreachable_scheduler(files: Path, tmp_path: Path) -> None:
    from immunorehab.errors import BatchError

    manifest = read_manifest(_manifest(files, tmp_path, ["s0.fcs"]))
    with pytest.raises(BatchError, match="cannot connect to the Dask scheduler at 'tcp://127.0.0.1:1'"):
        run_batch(manifest, out=tmp_path / "o", options=OPTIONS, scheduler="tcp://127.0.0.1:1")
