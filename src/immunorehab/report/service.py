"""Build the study report into a folder: ``report.html``, ``report.pdf`` and ``provenance.json``.

The folder is written atomically: everything is rendered into a hidden temporary folder
beside the target, which is renamed into place only when every file is complete, so a
failure never leaves half a report. An existing non-empty folder is replaced only with
``overwrite=True`` (the old one is moved aside first and removed after the swap).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from immunorehab.errors import ReportError
from immunorehab.report.blinding import arm_mentions, report_is_blinded, visible_text
from immunorehab.report.collect import StudyFacts, collect_facts
from immunorehab.report.content import AnalysisLike, ReportContent, build_content
from immunorehab.report.render import render_html, write_pdf
from immunorehab.study.service import actor_of, get_protocol, get_study
from immunorehab.study.store import Store

__all__ = ["REPORT_FILES", "ProgressCallback", "ReportResult", "build_report", "render_report"]

ProgressCallback = Callable[[str, int, int], None]
REPORT_FILES = ("report.html", "report.pdf", "provenance.json", "results.csv", "descriptives.csv")
_STEPS = 5


@dataclass(frozen=True, slots=True)
class ReportResult:
    """Where the report went and what it is."""

    out: Path
    files: tuple[Path, ...]
    blinded: bool
    mode: str
    role: str
    pages: int | None
    seconds: float


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.parent.exists():
        raise ReportError(f"folder {out.parent} does not exist (report folder {out})")
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out} exists and is not a folder: choose another --out")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ReportError(
            f"{out} exists and is not empty: pass --overwrite to replace it, or choose another --out"
        )


def _preflight(store: Store, by: str, asked_blinded: bool) -> tuple[bool, str]:
    """(blinded, role); refuses a study without an analysis section."""
    with store.read(by) as session:
        role = actor_of(session).role
        protocol, study = get_protocol(session), get_study(session)
        if protocol.analysis is None:
            raise ReportError(
                f"study '{study.slug}' has no analysis section in its protocol: the report renders the "
                "prespecified analysis (protocol key 'analysis:' with outcomes, families and populations)"
            )
    return protocol.randomised and report_is_blinded(role, asked_blinded=asked_blinded), role


def _check_something(facts: StudyFacts) -> None:
    people = facts.participants
    if facts.design == "trial" and not people["randomised_on"].notna().any():
        raise ReportError(
            f"nothing to report yet: study '{facts.slug}' has {len(people)} participant(s), none randomised"
        )


def _run_analysis(store: Store, by: str, blinded: bool, today: dt.date | None) -> AnalysisLike:
    from immunorehab.analysis.study import run_study_analysis

    result: AnalysisLike = run_study_analysis(
        store, by=by, blinded=blinded, skip_unavailable=True, today=today
    )
    return result


def render_report(
    store: Store,
    *,
    by: str,
    blinded: bool = False,
    today: dt.date | None = None,
    analysis: AnalysisLike | None = None,
    on_progress: ProgressCallback | None = None,
) -> tuple[ReportContent, str]:
    """Collect, analyse and render: the report content and its HTML (nothing written).

    Raises
    ------
    ReportError
        No analysis section, nothing to report yet, or a blinded report that would name an arm.
    """

    def step(task: str, k: int) -> None:
        if on_progress is not None:
            on_progress(task, k, _STEPS)

    is_blinded, _ = _preflight(store, by, blinded)
    step("Reading the study store", 0)
    facts = collect_facts(store, by=by, blinded=is_blinded, today=today)
    _check_something(facts)
    step("Running the study analysis", 1)
    if analysis is None:
        analysis = _run_analysis(store, by, is_blinded, today)
    step("Drawing figures and tables", 2)
    content = build_content(facts, analysis)
    html = render_html(content)
    if is_blinded:
        leaks = arm_mentions(visible_text(html), facts.protocol)
        if leaks:
            raise ReportError(
                "refusing to write a blinded report that names an arm "
                f"({', '.join(sorted(set(leaks)))}); nothing was written"
            )
    return content, html


def build_report(
    store: Store,
    *,
    by: str,
    out: str | os.PathLike[str],
    blinded: bool = False,
    overwrite: bool = False,
    today: dt.date | None = None,
    pdf: bool = True,
    analysis: AnalysisLike | None = None,
    on_progress: ProgressCallback | None = None,
) -> ReportResult:
    """Build the report into folder ``out`` (see the module docstring).

    Parameters
    ----------
    store, by
        The study and the acting user; the role decides blinding (statistician/admin may
        have the unblinded report, everyone else gets the blinded one).
    blinded
        Ask for the blinded report even when the role could have the unblinded one.
    today
        The date the report's visit statuses are evaluated on (default today).
    analysis
        A precomputed ``StudyAnalysis`` (default: run it now as ``by``).
    """
    start = time.perf_counter()
    target = Path(out)
    _check_out(target, overwrite)
    content, html = render_report(
        store, by=by, blinded=blinded, today=today, analysis=analysis, on_progress=on_progress
    )
    if on_progress is not None:
        on_progress("Writing HTML and PDF", 3, _STEPS)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        (tmp / "report.html").write_text(html, encoding="utf-8")
        analysis_frames = content.frames
        for name, frame in analysis_frames.items():
            frame.to_csv(tmp / f"{name}.csv", index=False)
        (tmp / "provenance.json").write_text(
            json.dumps(content.provenance.data, indent=2, sort_keys=True, default=str), encoding="utf-8"
        )
        pages = write_pdf(html, tmp / "report.pdf") if pdf else None
        _publish(tmp, target, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if on_progress is not None:
        on_progress("Done", _STEPS, _STEPS)
    names = [n for n in REPORT_FILES if pdf or n != "report.pdf"]
    return ReportResult(
        out=target,
        files=tuple(target / n for n in names),
        blinded=content.facts.blinded,
        mode=content.mode,
        role=content.facts.role,
        pages=pages,
        seconds=time.perf_counter() - start,
    )


def _publish(tmp: Path, target: Path, overwrite: bool) -> None:
    """Rename the finished folder into place; an existing one is moved aside, then removed."""
    if not target.exists():
        os.rename(tmp, target)
        return
    if any(target.iterdir()) and not overwrite:  # appeared while rendering
        raise ReportError(
            f"{target} was created while the report was rendered: pass --overwrite to replace it"
        )
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    try:
        os.rename(tmp, target)
    except BaseException:
        os.rename(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)
