"""A 200-file batch must scale with workers: the same manifest with 1 and with 2 local worker processes.

Each file is a 10,000-event synthetic tcell-memory panel tube (immunorehab.simulate.fcs); every file is
read, auto-placed (6 partial gatings), gated, given MFIs and QC flags, and its ledger entry and plot-free
summaries written. Worker start-up (spawned processes import numpy/scipy/pandas) is inside the timing, as
a user sees it. One round each: a round is 30-90 s on the 2-core CI machine. Figures: benchmarks/README.md.
"""

from __future__ import annotations

import itertools
import resource
from pathlib import Path

import numpy as np
import pytest

from immunorehab.cytometry.batch import run_batch
from immunorehab.cytometry.manifest import read_manifest
from immunorehab.cytometry.pipeline import GateOptions
from immunorehab.simulate.fcs import simulate_panel, write_panel_fcs

N_FILES = 200
N_EVENTS = 10_000
_run = itertools.count()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batch200")
    rng = np.random.default_rng(2025)
    lines = ["file,participant_id,visit_id,tube"]
    for i in range(N_FILES):
        path = folder / f"f{i:03d}.fcs"
        write_panel_fcs(simulate_panel(N_EVENTS, rng=rng, name=path.stem), path)
        lines.append(f"{path.name},LEI-{i + 1:04d},baseline,1")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def _cpu() -> tuple[float, float]:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _batch(manifest: Path, workers: int, info: dict[str, object]) -> int:
    out = manifest.parent / f"out{next(_run)}"  # a fresh folder: nothing to resume
    before = _cpu()
    report = run_batch(read_manifest(manifest), out=out, options=GateOptions.create(), workers=workers)
    after = _cpu()
    info["cpu_main_s"] = round(
        after[0] - before[0], 2
    )  # CPU time is what the load of other users cannot inflate
    info["cpu_workers_s"] = round(after[1] - before[1], 2)
    assert report.count("gated") == N_FILES
    return report.count("gated")


@pytest.mark.benchmark(group="cytometry-batch-200")
@pytest.mark.parametrize("workers", [1, 2])
def test_batch_200_files(benchmark, manifest: Path, workers: int) -> None:
    benchmark.extra_info["files"] = N_FILES
    benchmark.extra_info["events_per_file"] = N_EVENTS
    benchmark.pedantic(_batch, args=(manifest, workers, benchmark.extra_info), rounds=1, iterations=1)
