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
    return Table(("Value",), tuple(TableRow(k, (v,)) for k, v in rows), first_column=first, numeric=False)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _counts(frame: pd.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    if frame.empty:
        return []
    return _records(frame.groupby(keys, dropna=False).size().reset_index(name="n"))


def _fcs_table(frame: pd.DataFrame) -> Table:
    rows = tuple(
        TableRow(
            str(r["file_name"]),
            (
                str(r["participant_id"]),
                str(r["visit_id"]),
                str(r["tube"]),
                str(r["file_sha256"]),
                f"{int(r['n_events']):,}",
                f"{int(r['populations'])} populations",
                str(r["strategy_sha256"])[:12],
                str(r["qc_flags"]) or "none",
            ),
        )
        for r in _records(frame)
    )
    columns = (
        "Participant",
        "Visit",
        "Tube",
        "SHA-256 of the file",
        "Events",
        "Derived",
        "Strategy",
        "QC flags",
    )
    note = (
        "Each file was gated once per gating strategy; 'Derived' counts the population results stored "
        "from it (counts, % of parent, cells/uL, medians). Strategy: first 12 characters of its hash."
    )
    return Table(columns, rows, note=note, first_column="FCS file", numeric=False)


def _strategies(frame: pd.DataFrame) -> Table:
    columns = ("Strategy SHA-256", "Panel SHA-256", "Files")
    rows = tuple(
        TableRow(
            str(r["template"]),
            (
                str(r["strategy_sha256"]),
                "–" if _missing(r["panel_sha256"]) else str(r["panel_sha256"]),
                str(r["n"]),
            ),
        )
        for r in _counts(frame, ["template", "strategy_sha256", "panel_sha256"])
    )
    note = "Template gating strategies (Gating-ML) and panels; each file's placed strategy is stored with it."
    return Table(columns, rows, note=note, first_column="Template", numeric=False)


def _plates(frame: pd.DataFrame) -> Table:
    rows = []
    for r in _records(frame):
        curves = f"{r['curves_ok']}/{r['curves']} curves fitted"
        derived = f"{curves}; {r['sample_results']} results, {r['samples']} samples"
        rows.append(
            TableRow(str(r["plate_id"]), (str(r["readings_file"]), str(r["readings_sha256"]), derived))
        )
        rows.append(
            TableRow("", (str(r["plate_map_file"]), str(r["plate_map_sha256"]), "plate map"), indent=1)
        )
    note = "Readings and plate-map files of each plate with their SHA-256 and what was derived from them."
    return Table(("File", "SHA-256", "Derived"), tuple(rows), note=note, first_column="Plate", numeric=False)


def _assays(frame: pd.DataFrame) -> Table:
    rows = tuple(
        TableRow(str(r["assay_id"]), (str(r["assay_sha256"]), str(r["n"])))
        for r in _counts(frame, ["assay_id", "assay_sha256"])
    )
    return Table(("Assay file SHA-256", "Plates"), rows, first_column="Assay", numeric=False)


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
    return Table(("Version", "SHA-256", "Participants"), rows, first_column="Programme", numeric=False)


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
    return Table(
        ("Outcome id", "Source", "Visits", "Raw inputs"), tuple(rows), first_column="Outcome", numeric=False
    )


def build_provenance(facts: StudyFacts, analysis_provenance: Mapping[str, Any]) -> Provenance:
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
