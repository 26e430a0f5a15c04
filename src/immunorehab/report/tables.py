"""Report tables built from store facts (pure: DataFrames in, :class:`Table` out).

Summaries follow CONSORT 2025 practice for baseline tables: categorical characteristics as
n (%) of those with a value, roughly symmetric continuous ones as mean (SD), skewed or
discrete ones as median (IQR; quartiles by linear interpolation, R's default type 7), with
missing values counted on their own row. Each column is one group (an arm, all randomised
participants, or the single pooled group of a blinded report); the header gives its n.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "Group",
    "Table",
    "TableRow",
    "adherence_table",
    "baseline_table",
    "fmt_mean_sd",
    "fmt_median_iqr",
    "fmt_n_pct",
    "fmt_num",
    "safety_table",
]

Summary = Literal["mean_sd", "median_iqr", "categorical", "binary"]


@dataclass(frozen=True, slots=True)
class Group:
    """A column of a report table: ``ids`` are the participants it holds."""

    key: str
    label: str
    ids: frozenset[str]

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def header(self) -> str:
        return f"{self.label} (n={self.n})"


@dataclass(frozen=True, slots=True)
class TableRow:
    """One row: ``label`` and one cell per group; ``indent`` 1 for a level under a characteristic."""

    label: str
    cells: tuple[str, ...]
    indent: int = 0
    heading: bool = False
    #: The single cell spans every column after the label (e.g. a file's full hash).
    span: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    """A rendered table: column headers, rows, and a footnote."""

    columns: tuple[str, ...]
    rows: tuple[TableRow, ...]
    note: str = ""
    first_column: str = "Characteristic"
    numeric: bool = True
    widths: tuple[str, ...] = field(default=())

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (first column the row label), e.g. for CSV output or tests."""
        width = len(self.columns)
        data = [
            (("  " * r.indent) + r.label, *(r.cells + ("",) * (width - 1) if r.span else r.cells))
            for r in self.rows
        ]
        return pd.DataFrame(data, columns=[self.first_column, *self.columns])


# -- number formatting -------------------------------------------------------------------------


def fmt_num(value: float | None, digits: int = 1) -> str:
    """``value`` with ``digits`` decimals; an en dash for missing or non-finite values."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):,.{digits}f}"


def fmt_n_pct(k: int, n: int, digits: int = 1) -> str:
    """``k (p%)`` with p = 100 k / n; ``0`` of an empty group is shown as ``0``."""
    if n == 0:
        return str(k)
    return f"{k} ({100.0 * k / n:.{digits}f}%)"


def _digits(values: np.ndarray) -> int:
    """Decimals to show: none for whole numbers of size, more for small values."""
    if values.size == 0:
        return 1
    scale = float(np.nanmedian(np.abs(values)))
    whole = bool(np.all(np.equal(np.mod(values, 1), 0)))
    if scale >= 100:
        return 0
    if scale >= 1:
        return 1
    return 2 if not whole else 0


def fmt_mean_sd(values: Iterable[float], digits: int | None = None) -> str:
    """``mean (SD)`` of the values (sample SD, n - 1); ``–`` when there are none."""
    x = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    if x.size == 0:
        return "–"
    d = _digits(x) if digits is None else digits
    sd = float(np.std(x, ddof=1)) if x.size > 1 else float("nan")
    return f"{fmt_num(float(x.mean()), d)} ({fmt_num(sd, d)})"


def fmt_median_iqr(values: Iterable[float], digits: int | None = None) -> str:
    """``median (Q1–Q3)`` with R type-7 quartiles; ``–`` when there are none."""
    x = np.asarray([v for v in values if v is not None and not pd.isna(v)], dtype=float)
    if x.size == 0:
        return "–"
    d = _digits(x) if digits is None else digits
    q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    return f"{fmt_num(med, d)} ({fmt_num(q1, d)}–{fmt_num(q3, d)})"


# -- baseline characteristics --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Characteristic:
    column: str
    label: str
    summary: Summary
    levels: tuple[tuple[object, str], ...] = ()


_YES = ((True, "Yes"),)
CHARACTERISTICS: tuple[Characteristic, ...] = (
    Characteristic("age_years", "Age, years, mean (SD)", "mean_sd"),
    Characteristic(
        "sex", "Sex, n (%)", "categorical", (("female", "Female"), ("male", "Male"), ("other", "Other"))
    ),
    Characteristic("site", "Site, n (%)", "categorical"),
    Characteristic("who_severity", "Worst acute WHO clinical progression scale, n (%)", "categorical"),
    Characteristic("hospitalised", "Hospitalised for acute COVID-19, n (%)", "binary", _YES),
    Characteristic("icu_admitted", "Admitted to intensive care, n (%)", "binary", _YES),
    Characteristic("invasive_ventilation", "Invasive mechanical ventilation, n (%)", "binary", _YES),
    Characteristic("vaccination_doses", "COVID-19 vaccine doses before consent, median (IQR)", "median_iqr"),
    Characteristic(
        "cmv_serostatus",
        "CMV IgG serostatus, n (%)",
        "categorical",
        (("positive", "Positive"), ("negative", "Negative"), ("unknown", "Unknown")),
    ),
    Characteristic(
        "days_since_infection", "Days from acute infection to consent, median (IQR)", "median_iqr"
    ),
)


def _subset(frame: pd.DataFrame, group: Group) -> pd.DataFrame:
    return frame[frame["participant_id"].isin(group.ids)]


def _levels(char: Characteristic, frame: pd.DataFrame) -> tuple[tuple[object, str], ...]:
    if char.levels:
        return char.levels
    present = sorted({v for v in frame[char.column] if v is not None and not pd.isna(v)}, key=str)
    return tuple((v, str(v)) for v in present)


def _characteristic_rows(
    char: Characteristic, frame: pd.DataFrame, groups: Sequence[Group]
) -> list[TableRow]:
    parts = [_subset(frame, g)[char.column] for g in groups]
    missing = tuple(int(p.isna().sum()) for p in parts)
    rows: list[TableRow]
    if char.summary in ("mean_sd", "median_iqr"):
        fmt: Callable[[Iterable[float]], str] = fmt_mean_sd if char.summary == "mean_sd" else fmt_median_iqr
        rows = [TableRow(char.label, tuple(fmt(pd.to_numeric(p, errors="coerce")) for p in parts))]
    elif char.summary == "binary":
        rows = [TableRow(char.label, tuple(_level_cell(p, True) for p in parts))]
    else:
        rows = [TableRow(char.label, tuple("" for _ in groups), heading=True)]
        for value, label in _levels(char, frame):
            rows.append(TableRow(label, tuple(_level_cell(p, value) for p in parts), indent=1))
    if any(missing):
        rows.append(TableRow("Missing", tuple(str(m) for m in missing), indent=1))
    return rows


def _level_cell(values: pd.Series, level: object) -> str:
    present = values.dropna()
    return fmt_n_pct(int((present == level).sum()), len(present))


def baseline_table(
    participants: pd.DataFrame,
    groups: Sequence[Group],
    outcome_rows: Sequence[TableRow] = (),
    *,
    characteristics: Sequence[Characteristic] = CHARACTERISTICS,
) -> Table:
    """Baseline characteristics of each group (columns), then ``outcome_rows`` (baseline outcomes).

    Parameters
    ----------
    participants
        One row per participant with ``participant_id`` and the covariate columns.
    groups
        The table's columns (participants selected by id).
    outcome_rows
        Rows for baseline values of the outcomes, already formatted (see
        :func:`immunorehab.report.outcomes.baseline_outcome_rows`).
    """
    rows: list[TableRow] = []
    for char in characteristics:
        if char.column in participants.columns:
            rows += _characteristic_rows(char, participants, groups)
    if outcome_rows:
        rows.append(TableRow("Baseline outcomes", tuple("" for _ in groups), heading=True))
        rows += outcome_rows
    note = (
        "Percentages are of participants with a recorded value; quartiles by linear interpolation "
        "(R type 7). WHO clinical progression scale: 4 hospitalised without oxygen, 5 oxygen by mask "
        "or prongs, 6 high-flow oxygen or non-invasive ventilation, 7-9 invasive ventilation."
    )
    return Table(tuple(g.header for g in groups), tuple(rows), note=note)


# -- adherence and safety ------------------------------------------------------------------------


def _count_pct(mask: pd.Series, n: int) -> str:
    return fmt_n_pct(int(mask.sum()), n)


def _events(series: pd.Series, n: int) -> str:
    """``total events; participants with >= 1: k (p%)``."""
    total = int(series.sum())
    return f"{total}; {fmt_n_pct(int((series > 0).sum()), n)}"


def adherence_table(adherence: pd.DataFrame, groups: Sequence[Group], *, show_mode: bool) -> Table:
    """Attendance, dose, completion, PESE and stop events of prescribed participants per group.

    ``adherence`` has the :class:`~immunorehab.rehab.adherence.ParticipantAdherence` fields.
    A group's n in the header is its number of prescribed participants.
    """
    parts = [_subset(adherence, g) for g in groups]
    ns = [len(p) for p in parts]

    def row(label: str, fn: Callable[[pd.DataFrame, int], str], indent: int = 0) -> TableRow:
        return TableRow(label, tuple(fn(p, n) for p, n in zip(parts, ns, strict=True)), indent=indent)

    def sessions(p: pd.DataFrame, _n: int) -> str:
        att, off = int(p["attended"].sum()), int(p["sessions_offered"].sum())
        return f"{att} / {off} ({100.0 * att / off:.1f}%)" if off else "–"

    rows = [
        row("Sessions attended / offered", sessions),
        row(
            "Attendance per participant, %, median (IQR)",
            lambda p, _n: fmt_median_iqr(p["attendance_pct"], 1),
        ),
    ]
    if show_mode:
        rows += [
            row("Supervised sessions attended", lambda p, _n: str(int(p["attended_supervised"].sum())), 1),
            row("Remote sessions attended", lambda p, _n: str(int(p["attended_remote"].sum())), 1),
        ]
    rows += [
        row(
            "Aerobic minutes achieved, % of prescribed, mean (SD)",
            lambda p, _n: fmt_mean_sd(p["aerobic_pct"], 1),
        ),
        row(
            "Resistance volume achieved, % of prescribed, mean (SD)",
            lambda p, _n: fmt_mean_sd(p["resistance_pct"], 1),
        ),
        row(
            "Completers (programme definition), n (%)", lambda p, n: _count_pct(p["status"] == "completer", n)
        ),
        row("Non-completers, n (%)", lambda p, n: _count_pct(p["status"] == "non_completer", n)),
        row("Still in the programme, n (%)", lambda p, n: _count_pct(p["status"] == "in_progress", n)),
        row(
            "PESE (post-exertional) events: total; participants with any, n (%)",
            lambda p, n: _events(p["pese_events"], n),
        ),
        row(
            "Stop-criterion events: total; participants with any, n (%)",
            lambda p, n: _events(p["stop_events"], n),
        ),
    ]
    thresholds = sorted({int(t) for t in adherence["completer_threshold"]}) if len(adherence) else []
    note = (
        "Among participants prescribed a rehabilitation programme. Dose achieved counts each attended "
        "session up to its prescription. Completer: attended at least "
        + (", ".join(map(str, thresholds)) or "the programme's threshold of")
        + " of the offered sessions (the programme's completer definition, used for the per-protocol "
        "analysis)."
    )
    return Table(
        tuple(f"{g.label} (n={n})" for g, n in zip(groups, ns, strict=True)),
        tuple(rows),
        note=note,
        first_column="Adherence",
    )


def safety_table(adverse_events: pd.DataFrame, adherence: pd.DataFrame, groups: Sequence[Group]) -> Table:
    """Adverse events per group: events and participants with any, by seriousness, severity,
    relatedness, then by term. Denominator: participants prescribed a programme in the group."""
    ns = [len(_subset(adherence, g)) for g in groups]
    parts = [_subset(adverse_events, g) for g in groups]

    def count(column: str | None = None, value: object = None) -> tuple[str, ...]:
        cells = []
        for p, n in zip(parts, ns, strict=True):
            chosen = p if column is None else p[p[column] == value]
            cells.append(f"{len(chosen)}; {fmt_n_pct(chosen['participant_id'].nunique(), n)}")
        return tuple(cells)

    rows = [
        TableRow("Any adverse event", count()),
        TableRow("Serious adverse events", count("serious", True)),
        TableRow("By severity", tuple("" for _ in groups), heading=True),
    ]
    for level in ("mild", "moderate", "severe"):
        rows.append(TableRow(level.capitalize(), count("severity", level), indent=1))
    rows.append(TableRow("By relatedness to the intervention", tuple("" for _ in groups), heading=True))
    for level in ("unrelated", "unlikely", "possible", "probable", "definite"):
        rows.append(TableRow(level.capitalize(), count("relatedness", level), indent=1))
    terms = sorted(set(adverse_events["term"]))
    if terms:
        rows.append(TableRow("By term (serious in brackets)", tuple("" for _ in groups), heading=True))
        for term in terms:
            cells = tuple(_term_cell(p, term) for p in parts)
            rows.append(TableRow(term, cells, indent=1))
    note = (
        "Cells: events; participants with at least one, n (%) of those prescribed a programme. Adverse "
        "events are recorded at rehabilitation sessions, so arms without a programme have no "
        "session-based capture."
    )
    return Table(
        tuple(f"{g.label} (n={n})" for g, n in zip(groups, ns, strict=True)),
        tuple(rows),
        note=note,
        first_column="Adverse events",
    )


def _term_cell(events: pd.DataFrame, term: str) -> str:
    mine = events[events["term"] == term]
    return f"{len(mine)} ({int(mine['serious'].astype(bool).sum())})"
