"""The provenance appendix: every input a number rests on, with its hash.

Raw files (FCS files; plate-reader and plate-map files) are listed with their full SHA-256
and what was derived from each (gated populations, standard curves, sample results); then
the gating strategies, assay definitions and rehabilitation programme files used, the
protocol hash, the analysis' own provenance (software, seeds, row counts), and the result of
re-verifying the audit-trail and allocation hash chains when the report was built. The same
content is written to ``provenance.json`` beside the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from immunorehab.report.collect import ChainStatus, StudyFacts
from immunorehab.report.methods import software_versions
from immunorehab.report.tables import Table, TableRow

__all__ = ["Provenance", "build_provenance", "flatten"]


@dataclass(frozen=True)
class Provenance:
    """The appendix as tables, plus ``data`` (JSON-ready) for ``provenance.json``."""

    summary: Table
    chains: tuple[ChainStatus, ...]
    analysis: Table
    trace: Table
    handling: Table
    fcs: Table
    strategies: Table
    plates: Table
    assays: Table
    programmes: Table | None
    data: dict[str, Any]


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested mappings as ``(dotted key, text)`` pairs; lists joined by commas."""
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for k, v in value.items():
            out += flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [(prefix, ", ".join(str(v) for v in value))]
    return [(prefix, str(value))]


def _kv(rows: list[tuple[str, str]], first: str = "Item") -> Table:
    body = tuple(TableRow(k, (v,)) for k, v in rows)
    return Table(("Value",), body, first_column=first, numeric=False, widths=("24%", "76%"))


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _counts(frame: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return _records(frame.groupby(keys, dropna=False).size().reset_index(name="n"))


def _fcs_table(frame: pd.DataFrame) -> Table:
    rows: list[TableRow] = []
    for r in _records(frame):
        cells = (
            str(r["participant_id"]),
            str(r["visit_id"]),
            str(r["tube"]),
            f"{int(r['n_events']):,}",
            f"{int(r['populations'])} populations",
            str(r["strategy_sha256"])[:12],
            str(r["qc_flags"]) or "none",
        )
        rows.append(TableRow(str(r["file_name"]), cells))
        rows.append(TableRow("SHA-256", (str(r["file_sha256"]),), indent=1, span=True))
    columns = ("Participant", "Visit", "Tube", "Events", "Derived", "Strategy", "QC flags")
    note = (
        "Each file was gated once per gating strategy; 'Derived' counts the population results stored "
        "from it (counts, % of parent, cells/uL, medians). Strategy: first 12 characters of its hash."
    )
    widths = ("21%", "11%", "10%", "5%", "9%", "13%", "13%", "18%")
    return Table(columns, tuple(rows), note=note, first_column="FCS file", numeric=False, widths=widths)


def _strategies(frame: pd.DataFrame) -> Table:
    rows: list[TableRow] = []
    for r in _counts(frame, ["template", "strategy_sha256", "panel_sha256"]):
        rows.append(TableRow(str(r["template"]), (str(r["n"]),)))
        rows.append(TableRow("Strategy SHA-256", (str(r["strategy_sha256"]),), indent=1, span=True))
        panel = "–" if _missing(r["panel_sha256"]) else str(r["panel_sha256"])
        rows.append(TableRow("Panel SHA-256", (panel,), indent=1, span=True))
    note = "Template gating strategies (Gating-ML) and panels; each file's placed strategy is stored with it."
    return Table(
        ("Files gated",),
        tuple(rows),
        note=note,
        first_column="Template",
        numeric=False,
        widths=("60%", "40%"),
    )


def _plates(frame: pd.DataFrame) -> Table:
    rows = []
    for r in _records(frame):
        curves = f"{r['curves_ok']}/{r['curves']} curves fitted"
        derived = f"{curves}; {r['sample_results']} results, {r['samples']} samples"
        rows.append(TableRow(str(r["plate_id"]), (str(r["readings_file"]), derived)))
        rows.append(TableRow("SHA-256", (str(r["readings_sha256"]),), indent=1, span=True))
        rows.append(TableRow("", (str(r["plate_map_file"]), "plate map"), indent=1))
        rows.append(TableRow("SHA-256", (str(r["plate_map_sha256"]),), indent=1, span=True))
    note = "Readings and plate-map files of each plate with their SHA-256 and what was derived from them."
    return Table(
        ("File", "Derived"),
        tuple(rows),
        note=note,
        first_column="Plate",
        numeric=False,
        widths=("22%", "38%", "40%"),
    )


def _assays(frame: pd.DataFrame) -> Table:
    rows = tuple(
        TableRow(str(r["assay_id"]), (str(r["assay_sha256"]), str(r["n"])))
        for r in _counts(frame, ["assay_id", "assay_sha256"])
    )
    return Table(
        ("Assay file SHA-256", "Plates"),
        rows,
        first_column="Assay",
        numeric=False,
        widths=("25%", "63%", "12%"),
    )


def _programmes(frame: pd.DataFrame | None) -> Table | None:
    if frame is None:
        return None
    rows = tuple(
        TableRow(
            str(r["programme_id"]),
            (str(r["programme_version"]), str(r["programme_sha256"]), str(r["participants"])),
        )
        for r in _records(frame)
    )
    columns = ("Version", "SHA-256", "Participants")
    return Table(columns, rows, first_column="Programme", numeric=False, widths=("26%", "9%", "53%", "12%"))


def _trace(facts: StudyFacts) -> Table:
    """Outcome -> source -> raw inputs (how to get from a number to its files)."""
    plan = facts.protocol.analysis
    rows = []
    fcs, plates = facts.fcs_files, facts.plates
    for o in plan.outcomes if plan else []:
        src = o.source
        visits = [facts.baseline_visit, *o.visits] if o.visits else []
        if src.type == "cytometry":
            n = int(fcs["visit_id"].isin(visits).sum()) if not fcs.empty else 0
            what, inputs = f"gate {src.gate} ({src.quantity})", f"{n} FCS files at these visits"
        elif src.type == "cytokine":
            what, inputs = f"analyte {src.analyte} ({src.below_lloq} below LLOQ)", f"{len(plates)} plates"
        elif src.type == "visit":
            what, inputs = f"visit measure {src.measure}", "visit records (audit trail)"
        else:
            what, inputs = f"rehabilitation {src.quantity}", "rehabilitation session log"
        rows.append(TableRow(o.label, (o.id, what, ", ".join(dict.fromkeys(visits)) or "–", inputs)))
    columns = ("Outcome id", "Source", "Visits", "Raw inputs")
    widths = ("27%", "14%", "23%", "16%", "20%")
    return Table(columns, tuple(rows), first_column="Outcome", numeric=False, widths=widths)


def _handling(methods: Mapping[str, Any]) -> Table:
    """How each outcome's values were chosen from the store (the analysis' data-handling notes)."""
    rows = []
    handling = methods.get("data_handling") or {}
    if isinstance(handling, Mapping):
        for outcome, notes in handling.items():
            text = (
                "; ".join(f"{k}: {v}" for k, v in flatten(notes))
                if isinstance(notes, Mapping)
                else str(notes)
            )
            rows.append(TableRow(str(outcome), (text,)))
    for item in methods.get("skipped") or []:
        if isinstance(item, Mapping):
            rows.append(TableRow(str(item.get("outcome")), (f"not analysed: {item.get('reason')}",)))
    return Table(("Values used",), tuple(rows), first_column="Outcome", numeric=False, widths=("22%", "78%"))


def build_provenance(
    facts: StudyFacts,
    analysis_provenance: Mapping[str, Any],
    analysis_methods: Mapping[str, Any] | None = None,
) -> Provenance:
    """The appendix for ``facts`` and the analysis' provenance mapping."""
    versions = software_versions()
    summary = [
        ("Study", f"{facts.slug} (protocol version {facts.protocol_version})"),
        ("Protocol SHA-256", facts.protocol_sha256),
        ("Report", f"{'blinded (arms pooled)' if facts.blinded else 'unblinded (by arm)'}"),
        ("Generated", facts.generated_at.isoformat(timespec="seconds")),
        ("Data as of", facts.today.isoformat()),
        ("Generated by", f"{facts.user} (role {facts.role})"),
        ("Software", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]
    analysis_rows = flatten(analysis_provenance)
    data = {
        "study": facts.slug,
        "protocol_sha256": facts.protocol_sha256,
        "blinded": facts.blinded,
        "generated_at": facts.generated_at.isoformat(),
        "data_as_of": facts.today.isoformat(),
        "generated_by": {"user": facts.user, "role": facts.role},
        "software": versions,
        "chains": [
            {"name": c.name, "ok": c.ok, "checked": c.checked, "problem": c.problem} for c in facts.chains
        ],
        "analysis": _jsonable(analysis_provenance),
        "fcs_files": facts.fcs_files.to_dict(orient="records"),
        "plates": facts.plates.to_dict(orient="records"),
        "programmes": None if facts.programmes is None else facts.programmes.to_dict(orient="records"),
    }
    return Provenance(
        summary=_kv(summary),
        chains=facts.chains,
        analysis=_kv(analysis_rows, "Analysis"),
        trace=_trace(facts),
        handling=_handling(analysis_methods or {}),
        fcs=_fcs_table(facts.fcs_files),
        strategies=_strategies(facts.fcs_files),
        plates=_plates(facts.plates),
        assays=_assays(facts.plates),
        programmes=_programmes(facts.programmes),
        data=data,
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
