"""One simulated study through the whole chain: simulate, analyse, report, compare with the truth.

:func:`run_chain` builds a preset with :func:`~immunorehab.simulate.study.simulate_study`, runs
the protocol's prespecified analysis as the statistician (``stats1``), writes its tidy outputs
(``analysis/``), renders the report (``report/``: HTML, PDF, CSVs, provenance) and, for a trial,
the blinded pooled report as the outcome assessor (``report-blinded/``), then compares what
the pipeline found with what the simulator knows (:mod:`.recovery`). :func:`coverage_study`
repeats the trial over seeds to measure how often the analysis' intervals cover the truth.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from immunorehab.simulate._build import ProgressCallback
from immunorehab.simulate.recovery import cohort_recovery, effect_recovery, gating_recovery
from immunorehab.simulate.study import SimulatedStudy, simulate_study
from immunorehab.study.store import Store

__all__ = ["ChainResult", "coverage_study", "run_chain", "stored_gates"]


@dataclass(frozen=True, slots=True)
class ChainResult:
    """A simulated study, its analysis and report, and how they compare with the truth.

    ``effects``: trial effects vs truth (:func:`~.recovery.effect_recovery`), empty for a cohort;
    ``cohort``: :func:`~.recovery.cohort_recovery` (empty for a trial); ``gating``: stored vs true
    % of parent per file and gate; ``seconds``: wall time per stage.
    """

    study: SimulatedStudy
    analysis_dir: Path
    reports: dict[str, Path]
    report_pages: dict[str, int | None]
    results: pd.DataFrame
    gating: pd.DataFrame
    effects: pd.DataFrame
    cohort: dict[str, Any]
    skipped: list[dict[str, Any]]
    warnings: list[str]
    seconds: dict[str, float] = field(default_factory=dict)


def stored_gates(store: Store, *, by: str, gates: tuple[str, ...]) -> pd.DataFrame:
    """Stored gate results (``participant_id, visit, gate, pct_parent, ...``) of ``gates``."""
    from immunorehab.analysis.sources import read_cytometry

    with store.read(by) as session:
        return read_cytometry(session, gates)


def _reports(
    store: Store, sim: SimulatedStudy, analysis: Any, blinded: bool, on_progress: ProgressCallback | None
) -> tuple[dict[str, Path], dict[str, int | None]]:
    from immunorehab.report.service import build_report

    runs = [("report", "stats1", analysis)]
    if blinded and sim.truth["design"] == "trial":
        runs.append(("report-blinded", "assessor1", None))
    paths, pages = {}, {}
    for folder, user, precomputed in runs:
        result = build_report(
            store,
            by=user,
            out=sim.out / folder,
            overwrite=True,
            today=sim.today,
            analysis=precomputed,
            on_progress=on_progress,
        )
        paths[folder], pages[folder] = result.out, result.pages
    return paths, pages


def _against_truth(sim: SimulatedStudy, analysis: Any) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Trial: effects vs truth (empty cohort dict); cohort: the cohort answers (empty effects)."""
    if sim.truth["design"] == "trial":
        return effect_recovery(analysis.results, pd.read_csv(sim.out / "truth_effects.csv")), {}
    cohort = cohort_recovery(
        analysis.descriptives,
        analysis.cohort.get("prevalence", pd.DataFrame()),
        analysis.cohort.get("km_summary"),
        sim.truth,
        cox=analysis.cohort.get("cox"),
    )
    return pd.DataFrame(), cohort


def run_chain(
    name: str,
    out: str | Path,
    *,
    seed: int = 2025,
    events_per_file: int | None = None,
    participants: int | None = None,
    workers: int = 2,
    blinded_report: bool = True,
    on_progress: ProgressCallback | None = None,
) -> ChainResult:
    """Simulate preset ``name`` into ``out`` (replacing an earlier simulation), analyse and report it.

    ``events_per_file`` and ``participants`` shrink the study for quick runs (tests);
    ``blinded_report`` adds the assessor's blinded pooled report of a trial.
    """
    from immunorehab.analysis.outputs import write_study_analysis
    from immunorehab.analysis.study import run_study_analysis

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    sim = simulate_study(
        name,
        out,
        seed=seed,
        events_per_file=events_per_file,
        participants=participants,
        workers=workers,
        overwrite=True,
        on_progress=on_progress,
    )
    seconds["simulate"] = time.perf_counter() - start
    store = Store.open(sim.db_url)
    try:
        mark = time.perf_counter()
        analysis = run_study_analysis(store, by="stats1", today=sim.today, on_progress=on_progress)
        analysis_dir = sim.out / "analysis"
        write_study_analysis(analysis, analysis_dir, overwrite=True)
        seconds["analyse"] = time.perf_counter() - mark
        mark = time.perf_counter()
        reports, pages = _reports(store, sim, analysis, blinded_report, on_progress)
        seconds["report"] = time.perf_counter() - mark
        truth_fcs = pd.read_csv(sim.out / "truth_fcs.csv")
        gates = tuple(sorted(set(truth_fcs["gate"])))
        gating = gating_recovery(stored_gates(store, by="stats1", gates=gates), truth_fcs)
    finally:
        store.dispose()
    effects, cohort = _against_truth(sim, analysis)
    seconds["total"] = time.perf_counter() - start
    return ChainResult(
        study=sim,
        analysis_dir=analysis_dir,
        reports=reports,
        report_pages=pages,
        results=analysis.results,
        gating=gating,
        effects=effects,
        cohort=cohort,
        skipped=list(analysis.methods.get("skipped", [])),
        warnings=[str(w) for w in analysis.methods.get("warnings", [])],
        seconds=seconds,
    )


def _repeat(
    name: str, folder: Path, seed: int, events_per_file: int | None, populations: tuple[str, ...]
) -> pd.DataFrame:
    from immunorehab.analysis.study import run_study_analysis

    sim = simulate_study(name, folder, seed=seed, events_per_file=events_per_file, workers=1, overwrite=True)
    store = Store.open(sim.db_url)
    try:
        analysis = run_study_analysis(store, by="stats1", today=sim.today, populations=list(populations))
    finally:
        store.dispose()
    recovery = effect_recovery(analysis.results, pd.read_csv(sim.out / "truth_effects.csv"))
    recovery.insert(0, "seed", seed)
    return recovery


def coverage_study(
    seeds: Sequence[int],
    out: str | Path,
    *,
    name: str = "seed-trial",
    events_per_file: int | None = None,
    populations: Sequence[str] = ("itt",),
    processes: int = 2,
    on_progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """Simulate and analyse the trial once per seed; how often each CI covers the true effect.

    Each repeat is built into ``out/seed-<n>`` (replaced), analysed as the statistician and
    compared with its truth (:func:`~.recovery.effect_recovery`). Repeats run in ``processes``
    worker processes. Returns every repeat's rows with a ``seed`` column; a correct pipeline
    covers the truth in about 95% of them.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    frames = []
    with ProcessPoolExecutor(max(1, processes), mp_context=context) as pool:
        futures = [
            pool.submit(_repeat, name, folder / f"seed-{s}", s, events_per_file, tuple(populations))
            for s in seeds
        ]
        for done, future in enumerate(as_completed(futures), start=1):
            frames.append(future.result())
            if on_progress is not None:
                on_progress("Coverage repeats", done, len(futures))
    return pd.concat(frames).sort_values(["seed", "outcome", "population"]).reset_index(drop=True)
