"""Batch manifests: which FCS file belongs to which participant, visit and tube.

A manifest is a CSV, one row per file:

======================  ========  =============================================================
column                  required  meaning
======================  ========  =============================================================
``file``                yes       FCS path (relative paths are relative to the manifest's folder)
``participant_id``      yes       pseudonymous ID, e.g. ``LEI-0007``
``visit_id``            yes       protocol visit, e.g. ``baseline``
``tube``                no        tube name or number (default ``1``)
``panel``               no        panel CSV (``marker,channel``); default: the template's panel
``draw_time``           no        blood-draw date and time, ISO 8601 (``2025-03-04T08:30``)
``beads_per_tube``      no        counting beads per tube (single-platform counts; lot-specific)
``volume_ul``           no        blood volume in the bead tube, uL (with ``beads_per_tube``)
``lymphocytes_per_ul``  no        absolute lymphocyte count from the blood count (dual platform)
``hours_since_exercise`` no       hours between the last exercise and the draw, if the lab knows
======================  ========  =============================================================

:func:`read_manifest` checks every row and raises one :class:`ManifestError` listing every
problem (row number and field), so a lab fixes the file in one go.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass
from pathlib import Path

from immunorehab.errors import ManifestError, PanelError, Problem

from .absolute import AbsoluteCounts, DualPlatform, SinglePlatform
from .panel import Panel

__all__ = ["COLUMNS", "Manifest", "ManifestRow", "read_manifest"]

REQUIRED = ("file", "participant_id", "visit_id")
OPTIONAL = (
    "tube",
    "panel",
    "draw_time",
    "beads_per_tube",
    "volume_ul",
    "lymphocytes_per_ul",
    "hours_since_exercise",
)
COLUMNS = REQUIRED + OPTIONAL
_PID = re.compile(r"^[A-Z]{3}-\d{4,6}$")
_VISIT = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One validated manifest row (``row`` is the CSV line number, header = line 1)."""

    row: int
    file: Path
    participant_id: str
    visit_id: str
    tube: str = "1"
    panel: Path | None = None
    draw_time: dt.datetime | None = None
    beads_per_tube: float | None = None
    volume_ul: float | None = None
    lymphocytes_per_ul: float | None = None
    hours_since_exercise: float | None = None

    def absolute(self) -> AbsoluteCounts | None:
        """Single platform when bead inputs are given, else dual platform when an ALC is given."""
        if self.beads_per_tube is not None and self.volume_ul is not None:
            return SinglePlatform(self.beads_per_tube, self.volume_ul)
        if self.lymphocytes_per_ul is not None:
            return DualPlatform(self.lymphocytes_per_ul)
        return None

    @property
    def label(self) -> str:
        return f"{self.participant_id}/{self.visit_id}/tube {self.tube}"


@dataclass(frozen=True, slots=True)
class Manifest:
    """The rows of a manifest file, all valid."""

    path: Path
    rows: tuple[ManifestRow, ...]


def _number(
    text: str, field: str, where: str, problems: list[Problem], *, zero_ok: bool = False
) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(Problem(f"{where}, field {field}", f"expected a number, got {text!r}"))
        return None
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        allowed = "zero or more" if zero_ok else "a positive number"
        problems.append(Problem(f"{where}, field {field}", f"expected {allowed}, got {text!r}"))
        return None
    return value


def _draw_time(text: str, where: str, problems: list[Problem]) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        problems.append(
            Problem(
                f"{where}, field draw_time",
                f"expected ISO 8601 date and time (2025-03-04T08:30), got {text!r}",
            )
        )
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _parse_row(line: int, raw: dict[str, str], base: Path, problems: list[Problem]) -> ManifestRow | None:
    where = f"row {line}"
    before = len(problems)
    for field in REQUIRED:
        if not raw.get(field):
            problems.append(Problem(f"{where}, field {field}", "is required"))
    # a file that does not exist (yet) is not a manifest error: the batch records it as failed and goes on
    file = _path(raw.get("file", ""), base) if raw.get("file") else None
    pid = raw.get("participant_id", "").upper()
    if pid and not _PID.match(pid):
        problems.append(
            Problem(f"{where}, field participant_id", f"expected an ID like LEI-0007, got {pid!r}")
        )
    visit = raw.get("visit_id", "")
    if visit and not _VISIT.match(visit):
        problems.append(Problem(f"{where}, field visit_id", f"expected a protocol visit id, got {visit!r}"))
    panel = _path(raw["panel"], base) if raw.get("panel") else None
    if panel is not None:
        try:
            Panel.from_csv(panel)
        except PanelError as exc:
            problems.append(Problem(f"{where}, field panel", str(exc)))
    numbers = {
        f: _number(raw.get(f, ""), f, where, problems)
        for f in ("beads_per_tube", "volume_ul", "lymphocytes_per_ul")
    }
    hours = _number(
        raw.get("hours_since_exercise", ""), "hours_since_exercise", where, problems, zero_ok=True
    )
    if bool(raw.get("beads_per_tube")) != bool(raw.get("volume_ul")):
        need = "single-platform counts need both, or neither"
        problems.append(Problem(f"{where}, fields beads_per_tube/volume_ul", need))
    draw = _draw_time(raw.get("draw_time", ""), where, problems)
    if len(problems) > before or file is None:
        return None
    return ManifestRow(
        row=line,
        file=file,
        participant_id=pid,
        visit_id=visit,
        tube=raw.get("tube") or "1",
        panel=panel,
        draw_time=draw,
        beads_per_tube=numbers["beads_per_tube"],
        volume_ul=numbers["volume_ul"],
        lymphocytes_per_ul=numbers["lymphocytes_per_ul"],
        hours_since_exercise=hours,
    )


def _duplicates(rows: list[ManifestRow], problems: list[Problem]) -> None:
    seen_files: dict[Path, int] = {}
    seen_keys: dict[tuple[str, str, str], int] = {}
    for r in rows:
        resolved = r.file.resolve()
        if resolved in seen_files:
            problems.append(
                Problem(
                    f"row {r.row}, field file", f"{r.file} is already listed on row {seen_files[resolved]}"
                )
            )
        seen_files.setdefault(resolved, r.row)
        key = (r.participant_id, r.visit_id, r.tube)
        if key in seen_keys:
            problems.append(
                Problem(
                    f"row {r.row}",
                    f"{r.label} is already listed on row {seen_keys[key]} (use a different tube)",
                )
            )
        seen_keys.setdefault(key, r.row)


def read_manifest(path: str | Path) -> Manifest:
    """Read and check a manifest CSV.

    Raises
    ------
    ManifestError
        The file is missing or unreadable, a required column is missing, a column is not
        known, or any row has a bad value; ``problems`` names each row and field.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ManifestError(f"manifest {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"manifest {path} cannot be read as UTF-8 text: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    problems: list[Problem] = []
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in COLUMNS]
    if missing:
        problems.append(
            Problem("header", f"column(s) {', '.join(missing)} missing; columns are {', '.join(header)}")
        )
    if unknown:
        problems.append(
            Problem("header", f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(COLUMNS)}")
        )
    if problems:
        raise ManifestError(f"manifest {path} is invalid: nothing was processed", problems)
    rows: list[ManifestRow] = []
    for line, raw in enumerate(reader, start=2):
        values = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(values.values()):
            continue
        row = _parse_row(line, values, path.resolve().parent, problems)
        if row is not None:
            rows.append(row)
    _duplicates(rows, problems)
    if not rows and not problems:
        problems.append(Problem("rows", "the manifest lists no files"))
    if problems:
        raise ManifestError(f"manifest {path} is invalid: nothing was processed", problems)
    return Manifest(path, tuple(rows))
