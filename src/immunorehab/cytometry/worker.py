"""What a batch worker runs for one file: read, gate with the pipeline, return a picklable outcome.

Kept apart from :mod:`.batch` (the orchestration) so that worker processes import only what
gating needs. :func:`process_file` never raises: a failure comes back as ``status="failed"``
with the message, and the batch goes on.
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from immunorehab.errors import BatchError, ImmunorehabError

from .manifest import ManifestRow
from .pipeline import GateOptions, analyse_sample

if TYPE_CHECKING:
    from .strategy import GatingStrategy

__all__ = ["FileJob", "FileOutcome", "Status", "process_file", "sha256_file"]

Status = Literal["gated", "failed", "skipped"]
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class FileJob:
    """One file to gate, as sent to a worker (picklable)."""

    row: ManifestRow
    options: GateOptions
    file_sha256: str
    strategy_sha256: str
    plot_path: Path | None = None


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one file. ``counts``/``moves`` are empty unless ``status == "gated"``."""

    row: ManifestRow
    status: Status
    file_sha256: str
    strategy_sha256: str
    sample_name: str = ""
    n_events: int = 0
    counts: pd.DataFrame = field(default_factory=pd.DataFrame)
    moves: pd.DataFrame = field(default_factory=pd.DataFrame)
    flags: tuple[tuple[str, str], ...] = ()
    placed_gatingml: str = ""
    placed_sha256: str = ""
    error: str = ""
    seconds: float = 0.0

    def to_json(self) -> str:
        payload = {
            "row": self.row.row,
            "file": str(self.row.file),
            "participant_id": self.row.participant_id,
            "visit_id": self.row.visit_id,
            "tube": self.row.tube,
            "status": self.status,
            "file_sha256": self.file_sha256,
            "strategy_sha256": self.strategy_sha256,
            "sample_name": self.sample_name,
            "n_events": self.n_events,
            "counts": json.loads(self.counts.to_json(orient="records")),
            "moves": json.loads(self.moves.to_json(orient="records")),
            "flags": [list(f) for f in self.flags],
            "placed_sha256": self.placed_sha256,
            "seconds": self.seconds,
        }
        return json.dumps(payload, indent=1)

    @classmethod
    def from_json(cls, text: str, row: ManifestRow) -> FileOutcome:
        data = json.loads(text)
        return cls(
            row=row,
            status=data["status"],
            file_sha256=data["file_sha256"],
            strategy_sha256=data["strategy_sha256"],
            sample_name=data["sample_name"],
            n_events=int(data["n_events"]),
            counts=pd.DataFrame(data["counts"]),
            moves=pd.DataFrame(data["moves"]),
            flags=tuple((str(c), str(d)) for c, d in data["flags"]),
            placed_sha256=data["placed_sha256"],
            seconds=float(data["seconds"]),
        )


_STRATEGIES: dict[tuple[str, str | None], GatingStrategy] = {}


def _strategy(options: GateOptions) -> GatingStrategy:
    """The options' template strategy, loaded once per worker process."""
    key = (options.template, options.panel.sha256 if options.panel is not None else None)
    if key not in _STRATEGIES:
        _STRATEGIES[key] = options.strategy()
    return _STRATEGIES[key]


def process_file(job: FileJob) -> FileOutcome:
    """Gate one file (runs in a worker). Never raises: a failure is returned as ``status="failed"``."""
    from .io_fcs import read_fcs
    from .plots import write_gate_plot

    start = time.perf_counter()
    base = FileOutcome(job.row, "failed", job.file_sha256, job.strategy_sha256)
    try:
        sample = read_fcs(job.row.file)
        if sample.sha256 != job.file_sha256:
            raise BatchError(
                f"{job.row.file} changed while the batch ran (its SHA-256 differs): run the batch again"
            )
        strategy = _strategy(job.options)
        analysis = analyse_sample(sample, job.options, strategy=strategy, absolute=job.row.absolute())
        if job.plot_path is not None:
            title = f"{job.row.label}: {sample.name} ({sample.n_events:,} events)"
            write_gate_plot(
                analysis.strategy, sample, analysis.results, job.plot_path, overwrite=True, title=title
            )
        counts = analysis.counts.copy()
        counts["sample"] = sample.name
        return replace(
            base,
            status="gated",
            sample_name=sample.name,
            n_events=sample.n_events,
            counts=counts,
            moves=analysis.moves_frame(),
            flags=tuple((f.code, f.detail) for f in analysis.flags),
            placed_gatingml=analysis.strategy.to_gatingml_string(),
            placed_sha256=analysis.strategy.sha256,
            seconds=time.perf_counter() - start,
        )
    except ImmunorehabError as exc:
        return replace(base, error=str(exc), seconds=time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - a batch reports any failure of one file and goes on
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return replace(base, error=f"unexpected error: {detail}", seconds=time.perf_counter() - start)
