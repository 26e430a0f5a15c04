"""Writing a :class:`~immunorehab.analysis.study.StudyAnalysis` to a folder, every file atomically.

Files (CSV unless noted):

``results.csv``            the results table (one row per outcome, population and contrast)
``descriptives.csv``       descriptive statistics per outcome, visit and arm (or group)
``by_visit.csv``           MMRM contrasts at every visit (when an MMRM outcome was run)
``cohort_<table>.csv``     each cohort table (km, km_summary, log_rank, cox, prevalence, mixed_*)
``datasets/<id>.csv``      the frame each outcome was analysed from
``analysis.json``          methods and provenance, plus the SHA-256 and row count of every file

Each file is written to a temporary name and renamed into place; existing files are refused
unless ``overwrite`` (checked for every file before anything is written).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from immunorehab.errors import ConfigError
from immunorehab.study.export import atomic_write

if TYPE_CHECKING:
    from immunorehab.analysis.study import StudyAnalysis

__all__ = ["FIXED_FILES", "analysis_files", "refuse_existing", "write_study_analysis"]


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", name)


def analysis_files(analysis: StudyAnalysis) -> dict[str, pd.DataFrame]:
    """Relative file name -> frame, for every table of the analysis that has rows."""
    files: dict[str, pd.DataFrame] = {
        "results.csv": analysis.results,
        "descriptives.csv": analysis.descriptives,
    }
    if not analysis.by_visit.empty:
        files["by_visit.csv"] = analysis.by_visit
    for name, table in analysis.cohort.items():
        files[f"cohort_{_safe(name)}.csv"] = table
    for ident, frame in analysis.datasets.items():
        files[f"datasets/{_safe(ident)}.csv"] = frame
    return files


def _csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        frame.to_csv(tmp, index=False)

    return write


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


FIXED_FILES = ("results.csv", "descriptives.csv", "analysis.json")


def refuse_existing(out: str | Path, *, overwrite: bool) -> None:
    """Fail early (before a long analysis) when ``out`` already holds an analysis and no ``overwrite``."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file: --out takes a folder")
    taken = [str(folder / name) for name in FIXED_FILES if (folder / name).exists()]
    if taken and not overwrite:
        raise ConfigError(f"{taken[0]} exists (an analysis is already in {folder}): pass --overwrite")


def write_study_analysis(analysis: StudyAnalysis, out: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write every table and ``analysis.json`` under ``out`` (created if missing).

    Returns
    -------
    list of Path
        The files written, ``analysis.json`` last.

    Raises
    ------
    ConfigError
        A file exists and ``overwrite`` is false (nothing is written then), or ``out`` is a file.
    """
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file: --out takes a folder")
    files = analysis_files(analysis)
    targets = [folder / name for name in [*files, "analysis.json"]]
    taken = [str(t) for t in targets if t.exists()]
    if taken and not overwrite:
        raise ConfigError(f"{taken[0]} exists ({len(taken)} file(s) would be replaced): pass --overwrite")
    (folder / "datasets").mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    record: dict[str, Any] = {}
    for name, frame in files.items():
        path = atomic_write(folder / name, _csv_writer(frame), overwrite=True)
        written.append(path)
        record[name] = {"sha256": _sha256(path), "rows": len(frame)}
    payload = {"methods": analysis.methods, "provenance": {**analysis.provenance, "files": record}}
    text = json.dumps(payload, indent=2, sort_keys=True, default=str)

    def write_json(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    written.append(atomic_write(folder / "analysis.json", write_json, overwrite=True))
    return written
