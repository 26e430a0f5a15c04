"""Reading the BioTek/Agilent Gen5 plate-reader text export (ELISA and other absorbance/fluorescence plates).

Gen5's "export to text" writes tab-separated sections (the layout followed here is that of real Gen5 3.x
exports, e.g. the test data of Benchling's allotropy parser):

* header lines ``Software Version<TAB>3.12.08``, ``Plate Number<TAB>Plate 1``, ``Date``, ``Time``,
  ``Reader Type:``, ``Reader Serial Number:``, ... and a ``Procedure Details`` list;
* ``Layout``: the plate layout Gen5 knows (``STD1``, ``SPL1:1``, ``BLK``...); not read here, the plate map
  is the authority on what each well holds;
* ``Results``: a header line with column numbers 1..12 (or 1..24), then per plate row a line that starts
  with its letter, followed by continuation lines with an empty first cell. Every line ends with the name of
  its read in the column after the last well: the measurement (``450nm:450``, ``485,528``, ``Lum``) comes
  first, then what Gen5 computed from it (``Blank 450nm:450``, ``[Concentration]``, ``Delta OD``...).

The signal is the first read of each row (the raw measurement), or the read named by ``read=``. Gen5's own
blank subtraction and concentrations are not used: the standard curve is fitted here, from the raw signal.
``OVRFLW`` marks a saturated well; ``?????`` (Gen5's "cannot compute") is a missing value. One plate per
file: a multi-plate export (several ``Results`` sections) is refused with the plates it holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from immunorehab.errors import Problem

__all__ = ["looks_like_gen5", "parse_gen5"]

ValueReader = Callable[[str, str, list[Problem]], "tuple[float, bool] | None"]
Record = Callable[[str, str, float, float, bool], dict[str, Any]]
Parsed = tuple[list[dict[str, Any]], dict[str, str], list[Problem]]

_META_KEYS = (
    "Software Version",
    "Plate Number",
    "Date",
    "Time",
    "Reader Type",
    "Reader Serial Number",
    "Reading Type",
    "Plate Type",
)


def _first(row: list[str]) -> str:
    return row[0].strip() if row else ""


def _results_lines(rows: list[list[str]]) -> list[int]:
    return [i for i, row in enumerate(rows) if _first(row) == "Results" and not any(row[1:])]


def looks_like_gen5(rows: list[list[str]]) -> bool:
    """A Gen5 text export: a ``Software Version`` line and a ``Results`` section."""
    return any(_first(r).startswith("Software Version") for r in rows[:40]) and bool(_results_lines(rows))


def _header(row: list[str]) -> int:
    """Number of plate columns (12 or 24) if ``row`` is Gen5's ``<TAB>1<TAB>2...`` header, else 0."""
    if not row or row[0] != "":
        return 0
    nums = list(row[1:])
    while nums and nums[-1] == "":
        nums.pop()
    return len(nums) if len(nums) in (12, 24) and nums == [str(i) for i in range(1, len(nums) + 1)] else 0


def parse_gen5(
    rows: list[list[str]],
    source: str,
    analyte: str | None,
    read: str | None,
    *,
    value: ValueReader,
    record: Record,
) -> Parsed:
    """Records (well, analyte, signal, bead_count=NaN, saturated) of the chosen read; metadata; problems."""
    meta: dict[str, str] = {}
    for row in rows:
        key = _first(row).rstrip(":")
        if key in _META_KEYS and len(row) > 1 and row[1].strip() and key not in meta:
            meta[key] = row[1].strip()
    starts = _results_lines(rows)
    problems: list[Problem] = []
    plates = [r[1].strip() for r in rows if _first(r) == "Plate Number" and len(r) > 1]
    if len(starts) > 1:
        listed = ", ".join(p for p in plates if p) or f"{len(starts)} Results sections"
        message = f"a multi-plate Gen5 export ({listed}): export one plate per file"
        return [], meta, [Problem(source, message)]
    if not analyte:
        problems.append(
            Problem(source, "a Gen5 export does not name the analyte: pass the analyte (--analyte)")
        )
        return [], meta, problems
    at = starts[0] + 1
    ncol = _header(rows[at]) if at < len(rows) else 0
    if not ncol:
        header = "expected the Results header <TAB>1<TAB>2...<TAB>12"
        problems.append(Problem(f"{source} line {at + 1}", header))
        return [], meta, problems
    # group the lines of each plate row: its letter line and the continuation lines below it
    by_row: dict[str, list[tuple[int, list[str]]]] = {}
    letter = ""
    for i in range(at + 1, len(rows)):
        row = rows[i]
        if not any(row):
            break
        first = _first(row)
        if first:
            letter = first.upper()
            by_row[letter] = []
        elif not letter:
            problems.append(Problem(f"{source} line {i + 1}", "expected a row letter A, B, ..."))
            continue
        by_row[letter].append((i, row))
    expected = [chr(65 + r) for r in range(16 if ncol == 24 else 8)]
    if list(by_row) != expected:
        found = ", ".join(by_row) or "none"
        message = f"expected rows {expected[0]}..{expected[-1]} in order, found {found}"
        problems.append(Problem(f"{source} Results", message))
        return [], meta, problems
    reads = [(row[ncol + 1].strip() if len(row) > ncol + 1 else "") for _, row in by_row["A"]]
    chosen = reads[0] if read is None else read
    if chosen not in reads:
        message = f"no read {chosen!r} in this export (reads: {', '.join(reads) or 'none'})"
        return [], meta, [Problem(f"{source} Results", message)]
    meta["Gen5 read"] = chosen
    meta["Gen5 reads"] = ", ".join(reads)
    records: list[dict[str, Any]] = []
    for letter, lines in by_row.items():
        labels = [(row[ncol + 1].strip() if len(row) > ncol + 1 else "") for _, row in lines]
        if chosen not in labels:
            where = f"{source} row {letter}"
            problems.append(Problem(where, f"no read {chosen!r} (reads: {', '.join(labels) or 'none'})"))
            continue
        i, row = lines[labels.index(chosen)]
        for c in range(ncol):
            cell = row[1 + c] if 1 + c < len(row) else ""
            well = f"{letter}{c + 1:02d}"
            if cell.strip() == "?????":
                records.append(record(well, analyte, math.nan, math.nan, False))
                continue
            parsed = value(cell, f"{source} line {i + 1} well {well} ({chosen})", problems)
            if parsed is not None:
                records.append(record(well, analyte, parsed[0], math.nan, parsed[1]))
    return records, meta, problems
