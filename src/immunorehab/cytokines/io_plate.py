"""Reading plate maps and plate-reader exports (all-or-nothing, with row/well-level messages).

Supported reading formats (``format="auto"`` detects them):

``grid``
    A plate-reader export with one 8 x 12 or 16 x 24 grid per read/analyte, as written by Tecan
    i-control/Magellan (``<>`` in the corner cell, column numbers 1..12, row letters A..H,
    metadata lines such as ``Time [s]`` above, ``Overflow`` for saturated wells) and BioTek
    Gen5 (blank corner, ``OVRFLW``). The line above each grid names it (the analyte); a file
    with one unnamed grid takes ``analyte=``. CSV or XLSX.
``long``
    A tidy table ``well, analyte, signal[, bead_count]`` (CSV or XLSX).
``gen5``
    The BioTek/Agilent Gen5 text export (``Software Version`` header, ``Layout`` and ``Results``
    sections, each row's reads labelled in the column after the last well); the signal is the
    first (raw) read or the one named by ``read=``; the analyte comes from ``analyte=``. See
    :mod:`immunorehab.cytokines.io_gen5`.
``xponent``
    The Luminex xPONENT CSV export: header lines (``Program,xPONENT``, ``Batch``, ``SN``...),
    then ``Results`` and blocks introduced by ``DataType:,<name>`` with a
    ``Location,Sample,<analytes>,Total Events`` header and rows such as ``"1(1,A1)",...``. The
    ``Median`` block gives the signal (median fluorescence intensity), ``Count`` the beads.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from immunorehab.cytokines.io_gen5 import looks_like_gen5, parse_gen5
from immunorehab.cytokines.plate import PlateMap, Readings, normalise_well
from immunorehab.errors import PlateError, Problem

__all__ = ["READING_FORMATS", "ReadingFormat", "file_sha256", "read_plate_map", "read_readings", "read_table"]

ReadingFormat = Literal["auto", "grid", "long", "xponent", "gen5"]
READING_FORMATS: tuple[str, ...] = ("auto", "grid", "long", "xponent", "gen5")
SATURATED = {"overflow", "ovrflw", "over", "sat", "saturated", ">max"}
_LOCATION = re.compile(r"^\s*\d+\s*\(\s*\d+\s*,\s*([A-Pa-p]\d{1,2})\s*\)\s*$")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes (the provenance of every imported plate)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _excel(path: Path) -> bool:
    return path.suffix.lower() in (".xlsx", ".xlsm", ".xls")


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV/XLSX table as strings (nothing guessed), or PlateError naming the file."""
    p = Path(path)
    try:
        if _excel(p):
            return pd.read_excel(p, dtype=str, keep_default_na=False)
        return pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise PlateError(f"cannot read {p}", [Problem(str(p), str(exc))]) from None


def read_plate_map(path: str | Path) -> PlateMap:
    """Read and validate a plate map (CSV/XLSX); see :class:`~immunorehab.cytokines.plate.PlateMap`."""
    p = Path(path)
    return PlateMap.from_frame(read_table(p), source=str(p), sha256=file_sha256(p))


def _rows(path: Path) -> list[list[str]]:
    try:
        if _excel(path):
            sheet = pd.read_excel(path, header=None, dtype=str, keep_default_na=False)
            return [[str(c).strip() for c in row] for row in sheet.itertuples(index=False)]
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise PlateError(f"cannot read {path}", [Problem(str(path), str(exc))]) from None
    dialect = "excel-tab" if text.count("\t") > text.count(",") else "excel"
    return [[c.strip() for c in row] for row in csv.reader(io.StringIO(text), dialect=dialect)]


def _detect(rows: list[list[str]]) -> ReadingFormat:
    first = [r[0].lower() if r else "" for r in rows]
    if any(f.startswith("datatype") for f in first) and any(f == "location" for f in first):
        return "xponent"
    if looks_like_gen5(rows):
        return "gen5"
    header = {c.lower() for c in rows[0]} if rows else set()
    if {"well", "analyte"} <= header:
        return "long"
    return "grid"


def read_readings(
    path: str | Path,
    *,
    format: ReadingFormat = "auto",
    analyte: str | None = None,
    read: str | None = None,
) -> Readings:
    """Read a plate-reader export into :class:`~immunorehab.cytokines.plate.Readings`.

    ``analyte`` names a single unnamed grid or a Gen5 plate; ``read`` picks a Gen5 read other
    than the raw measurement (e.g. ``"570nm:570"`` of a dual-wavelength ELISA).

    Raises
    ------
    PlateError
        The file cannot be read or has any bad row/well; ``problems`` lists each one.
    """
    p = Path(path)
    rows = _rows(p)
    fmt = _detect(rows) if format == "auto" else format
    if fmt not in READING_FORMATS[1:]:
        raise PlateError(f"{p}: unknown readings format {fmt!r}", [Problem(str(p), "format")])
    if fmt == "gen5":
        records, meta, problems = parse_gen5(rows, str(p), analyte, read, value=_value, record=_record)
    elif read is not None:
        raise PlateError(
            f"{p}: read= picks a read of a Gen5 export; this file is in {fmt} format",
            [Problem(str(p), f"read {read!r} given for a {fmt} file")],
        )
    else:
        parser = {"grid": _parse_grid, "long": _parse_long, "xponent": _parse_xponent}[fmt]
        records, meta, problems = parser(rows, str(p), analyte)
    if not problems and not records:
        problems.append(Problem(str(p), f"no readings found (read as {fmt} format)"))
    if problems:
        raise PlateError(f"{p}: readings not read ({len(problems)} problems); nothing imported", problems)
    return Readings(Readings.build(records), str(p), fmt, file_sha256(p), meta)


def _value(cell: str, where: str, problems: list[Problem]) -> tuple[float, bool] | None:
    text = cell.strip()
    if text == "":
        return None
    if text.lower() in SATURATED:
        return math.nan, True
    if text.lower() in ("nan", "na", "n/a", "---", "-"):
        return math.nan, False
    try:
        value = float(text.replace(",", ".") if text.count(",") == 1 and "." not in text else text)
    except ValueError:
        problems.append(Problem(where, f"expected a number or Overflow, got {cell!r}"))
        return None
    return value, False


Parsed = tuple[list[dict[str, Any]], dict[str, str], list[Problem]]


def _grid_header(row: list[str]) -> tuple[int, int] | None:
    """(first column index, number of plate columns) if ``row`` is a grid header."""
    for start in range(1, min(3, len(row))):
        nums = row[start:]
        while nums and nums[-1] == "":
            nums = nums[:-1]
        if len(nums) in (12, 24) and nums == [str(i) for i in range(1, len(nums) + 1)]:
            return start, len(nums)
    return None


def _parse_grid(rows: list[list[str]], source: str, analyte: str | None) -> Parsed:
    records: list[dict[str, Any]] = []
    problems: list[Problem] = []
    meta: dict[str, str] = {}
    grids = 0
    for i, row in enumerate(rows):
        header = _grid_header(row)
        if header is None:
            if len(row) >= 2 and row[0] and row[1] and grids == 0:
                meta.setdefault(row[0].rstrip(":"), row[1])
            continue
        start, ncol = header
        above = [r for r in rows[max(0, i - 3) : i] if any(r)]
        label = above[-1][0] if above and sum(bool(c) for c in above[-1]) == 1 else ""
        grids += 1
        name = analyte if analyte is not None and grids == 1 else label
        if not name:
            problems.append(Problem(f"{source} line {i + 1}", "grid has no name above it: pass the analyte"))
            continue
        for r in range(16 if ncol == 24 else 8):
            line = rows[i + 1 + r] if i + 1 + r < len(rows) else []
            letter = chr(65 + r)
            if len(line) < start or line[start - 1].upper() != letter:
                problems.append(Problem(f"{source} line {i + 2 + r}", f"expected grid row {letter}"))
                break
            for c in range(ncol):
                cell = line[start + c] if start + c < len(line) else ""
                parsed = _value(cell, f"{source} well {letter}{c + 1:02d} ({name})", problems)
                if parsed is not None:
                    records.append(_record(f"{letter}{c + 1:02d}", name, parsed[0], math.nan, parsed[1]))
    if analyte is not None and grids > 1:
        problems.append(
            Problem(source, f"{grids} grids found: name each grid in the file instead of --analyte")
        )
    return records, meta, problems


def _record(well: str, analyte: str, signal: float, beads: float, saturated: bool) -> dict[str, Any]:
    return {"well": well, "analyte": analyte, "signal": signal, "bead_count": beads, "saturated": saturated}


def _parse_long(rows: list[list[str]], source: str, analyte: str | None) -> Parsed:
    header = [h.lower() for h in rows[0]]
    names = {
        "signal": ("signal", "mfi", "median", "od", "value"),
        "bead_count": ("bead_count", "count", "beads"),
    }
    col = {k: next((header.index(a) for a in alts if a in header), None) for k, alts in names.items()}
    problems: list[Problem] = []
    if col["signal"] is None:
        problems.append(
            Problem(source, f"no signal column (signal/mfi/od); columns found: {', '.join(rows[0])}")
        )
        return [], {}, problems
    iw, ia = header.index("well"), header.index("analyte")
    records = []
    for n, row in enumerate(rows[1:], start=2):
        if not any(row):
            continue
        where = f"{source} row {n}"
        try:
            well = normalise_well(row[iw])
        except (ValueError, IndexError) as exc:
            problems.append(Problem(f"{where}, field well", str(exc)))
            continue
        name = row[ia].strip() if ia < len(row) else ""
        if not name:
            problems.append(Problem(f"{where}, field analyte", "is empty"))
            continue
        before = len(problems)
        sig = _value(
            row[col["signal"]] if col["signal"] < len(row) else "", f"{where}, field signal", problems
        )
        beads = math.nan
        if col["bead_count"] is not None and col["bead_count"] < len(row):
            b = _value(row[col["bead_count"]], f"{where}, field bead_count", problems)
            beads = b[0] if b is not None else math.nan
        if sig is None:
            if len(problems) == before:
                problems.append(Problem(f"{where}, field signal", "is empty"))
            continue
        records.append(_record(well, name, sig[0], beads, sig[1]))
    return records, {}, problems


def _xponent_blocks(rows: list[list[str]]) -> dict[str, tuple[int, list[str], list[list[str]]]]:
    blocks: dict[str, tuple[int, list[str], list[list[str]]]] = {}
    for i, row in enumerate(rows):
        if row and row[0].lower().startswith("datatype") and len(row) > 1:
            name = row[1].strip()
            header = rows[i + 1] if i + 1 < len(rows) else []
            body: list[list[str]] = []
            for line in rows[i + 2 :]:
                if not line or not any(line) or line[0].lower().startswith("datatype"):
                    break
                body.append(line)
            blocks[name] = (i + 3, header, body)
    return blocks


def _parse_xponent(rows: list[list[str]], source: str, analyte: str | None) -> Parsed:
    meta = {r[0]: r[1] for r in rows if len(r) >= 2 and r[0] and r[1] and r[0] in _XPONENT_META}
    blocks = _xponent_blocks(rows)
    problems: list[Problem] = []
    if "Median" not in blocks:
        found = ", ".join(blocks) or "none"
        return [], meta, [Problem(source, f"no 'DataType:,Median' block (blocks found: {found})")]
    counts: dict[tuple[str, str], float] = {}
    if "Count" in blocks:
        for well, name, cell, _ in _xponent_cells(blocks["Count"], source, problems):
            parsed = _value(cell, f"{source} Count {well} {name}", problems)
            counts[(well, name)] = parsed[0] if parsed else math.nan
    records = []
    for well, name, cell, where in _xponent_cells(blocks["Median"], source, problems):
        parsed = _value(cell, where, problems)
        signal, sat = parsed if parsed is not None else (math.nan, False)
        records.append(_record(well, name, signal, counts.get((well, name), math.nan), sat))
    return records, meta, problems


_XPONENT_META = {"Program", "Build", "Date", "SN", "Batch", "Operator", "ProtocolName", "BatchStartTime"}


def _xponent_cells(
    block: tuple[int, list[str], list[list[str]]], source: str, problems: list[Problem]
) -> list[tuple[str, str, str, str]]:
    first_line, header, body = block
    if len(header) < 3 or header[0].lower() != "location":
        problems.append(Problem(f"{source} line {first_line - 1}", "expected a Location,Sample,... header"))
        return []
    analytes = [h for h in header[2:] if h and h.lower() not in ("total events",)]
    out = []
    for n, row in enumerate(body):
        m = _LOCATION.match(row[0]) if row else None
        if m is None:
            problems.append(
                Problem(
                    f"{source} line {first_line + n}", f"expected a location like 1(1,A1), got {row[0]!r}"
                )
            )
            continue
        well = normalise_well(m.group(1))
        for j, name in enumerate(analytes):
            cell = row[2 + j] if 2 + j < len(row) else ""
            out.append((well, name, cell, f"{source} line {first_line + n} ({well}, {name})"))
    return out
