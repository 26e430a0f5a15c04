"""Whole synthetic studies built with the platform's own capabilities, with their ground truth.

:func:`simulate_study` creates a fresh SQLite study from the preset's protocol and drives it the
way a site and a lab would: participants imported from a CSV file, allocation by the study's
randomiser, visits recorded and validated against the protocol, rehabilitation prescribed and
session logs imported (trial), one FCS file per blood draw gated in a batch and stored, and
cytokine plates written in reader formats, fitted and imported. Nothing is written to the
store's tables directly.

The output folder holds ``study.db``, the files a site and a lab would have
(``participants_import.csv``, ``rehab/*.csv``, ``cytometry/fcs/*.fcs`` + ``manifest.csv`` +
``batch/``, ``cytokines/plates/*``) and the ground truth:

=========================  =======================================================================
``truth.json``             preset, seed, data cut-off, protocol hash, configured effects and a
                           summary (true effects, prevalences, ...); written last: a folder
                           without it is an unfinished run
``truth_participants.csv`` covariates, arm, latent values (symptom burden, dose, cluster, ...)
``truth_visits.csv``       every scheduled visit: date, recorded or missed, true state
``truth_fcs.csv``          per file and gate: the fraction set, the true fraction on the events'
                           labels, true count and cells/uL
``truth_cytokines.csv``    per plate and sample: the true concentration in the tube (pg/mL)
``truth_effects.csv``      (trial) true arm effect per analysed outcome, ITT and per protocol
=========================  =======================================================================

The same seed builds the same study (the calendar is fixed by the preset, not by today's date).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from immunorehab.errors import SimulationError
from immunorehab.simulate._build import STREAMS, USERS, Build, ProgressCallback
from immunorehab.simulate._cohort import simulate_cohort
from immunorehab.simulate._lab import gate_files, run_plates, write_fcs_files
from immunorehab.simulate._trial import simulate_trial
from immunorehab.simulate.presets import StudyPreset, TrialEffects, preset
from immunorehab.study.protocol import Protocol, load_protocol
from immunorehab.study.service import add_user, create_study

if TYPE_CHECKING:
    from immunorehab.cytometry.batch import BatchReport

__all__ = ["SimulatedStudy", "data_cutoff", "load_truth", "simulate_study"]

GENERATOR = "immunorehab.simulate.study"


@dataclass(frozen=True, slots=True)
class SimulatedStudy:
    """Where a simulated study is and what it holds."""

    preset: str
    out: Path
    db_path: Path
    seed: int
    today: dt.date
    truth_path: Path
    truth: dict[str, Any]
    fcs_files: int
    gated: int
    failed: int
    gating_seconds: float
    plates: int
    seconds: float

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    def describe(self) -> list[str]:
        """What was built, as lines to print."""
        summary = self.truth["summary"]
        lines = [f"Simulated '{self.preset}' (seed {self.seed}, data cut-off {self.today}) in {self.out}"]
        lines += _trial_lines(summary) if self.truth["design"] == "trial" else _cohort_lines(summary)
        curves = summary["cytokines"]["curves"]
        return lines + [
            f"Cytometry: {self.fcs_files} FCS files ({self.truth['events_per_file']:,} events), {self.gated} "
            f"gated and stored as lab1, {self.failed} failed ({self.gating_seconds:.1f} s).",
            f"Cytokines: {self.plates} plates fitted and imported ({curves.get('ok', 0)} curves ok, "
            f"{curves.get('failed', 0)} failed).",
            f"Database: {self.db_url}",
            f"Truth: {self.truth_path} (+ truth_*.csv); built in {self.seconds:.0f} s.",
        ]


def _trial_lines(summary: dict[str, Any]) -> list[str]:
    rehab = summary["rehab"]
    arms = ", ".join(f"{n} {arm}" for arm, n in summary["arms"].items())
    return [
        f"Screened {summary['screened']}, randomised {summary['randomised']} ({arms}); week 8 recorded "
        f"for {summary['week8_recorded']}, {summary['withdrawn']} withdrawn.",
        f"Rehabilitation: {rehab['prescribed']} prescribed, {rehab['sessions_imported']} sessions "
        f"imported ({rehab['sessions_attended']} attended), {rehab['completers']} completers, "
        f"{rehab['pese_events']} PESE flares, {rehab['stop_criteria_cleared']} stop criterion cleared.",
    ]


def _cohort_lines(summary: dict[str, Any]) -> list[str]:
    prevalence = ", ".join(f"{v} {p:.0%}" for v, p in summary["prevalence_all"].items())
    visits = ", ".join(f"{v} {n}" for v, n in summary["visits_recorded"].items())
    return [
        f"Enrolled {summary['enrolled']} at the acute admission; visits recorded: {visits}.",
        f"True symptom prevalence {prevalence}; {summary['inflamed_cluster']} in the inflamed cluster.",
    ]


def data_cutoff(spec: StudyPreset, protocol: Protocol) -> dt.date:
    """The study's 'today': after the last possible visit of the last recruit, plus two weeks."""
    last = max(protocol.visits, key=lambda v: v.day)
    days = spec.recruitment_days + 10 + last.day + last.window_after_days + 14
    return spec.first_consent + dt.timedelta(days=days)


def _prepare(out: Path, overwrite: bool) -> None:
    """A new or empty folder; an earlier simulation's folder only with ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise SimulationError(f"{out} exists and is not a folder: choose another --out")
    if out.exists() and any(out.iterdir()):
        ours = (out / "truth.json").exists() or (out / "study.db").exists()
        if not overwrite or not ours:
            hint = (
                "pass --overwrite to replace it"
                if ours
                else "it is not a simulated study: choose another --out"
            )
            raise SimulationError(f"{out} is not empty: {hint}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}


def simulate_study(
    name: str,
    out: str | Path,
    *,
    seed: int = 2025,
    effects: TrialEffects | None = None,
    events_per_file: int | None = None,
    participants: int | None = None,
    workers: int = 2,
    overwrite: bool = False,
    on_progress: ProgressCallback | None = None,
) -> SimulatedStudy:
    """Build the preset ``name`` (``seed-trial`` or ``seed-cohort``) into folder ``out``.

    Parameters
    ----------
    name : preset name (see :mod:`immunorehab.simulate.presets`).
    out : output folder; must be new or empty (or an earlier simulation with ``overwrite``).
    seed : seed of every random stream (and of the study's randomisation).
    effects : trial arm effects (default :class:`TrialEffects`); ignored by the cohort.
    events_per_file : FCS events per blood draw (default: the preset's).
    participants : number of participants (default: the preset's; smaller for quick runs).
    workers : local processes gating FCS files.
    on_progress : ``on_progress(task, done, total)`` as each step advances.

    Raises
    ------
    SimulationError
        Unknown preset, ``out`` not usable, fewer than 1000 events per file or 8 participants.
    """
    start = time.perf_counter()
    spec = _checked_preset(name, events_per_file, participants)
    events = events_per_file or spec.events_per_file
    out = Path(out).resolve()
    _prepare(out, overwrite)
    protocol = load_protocol(spec.protocol_path())
    rngs = _streams(seed)
    db = out / "study.db"
    randomisation_seed = int(rngs["randomisation"].integers(0, 2**62))
    store, info = create_study(
        f"sqlite:///{db}", spec.protocol_path(), admin="admin", seed=randomisation_seed
    )
    try:
        for user, role in USERS.items():
            add_user(store, by="admin", username=user, role=role)
        build = Build(store, out, spec, protocol, seed, data_cutoff(spec, protocol), rngs, on_progress)
        trial_effects = effects or TrialEffects()
        if spec.design == "trial":
            simulate_trial(build, trial_effects)
        else:
            simulate_cohort(build)
        report = _labwork(build, events, workers)
        header = {
            "generator": GENERATOR,
            "preset": spec.name,
            "design": spec.design,
            "seed": seed,
            "today": build.today,
            "protocol": {"file": spec.protocol_file, "sha256": info.protocol_sha256, "study": info.slug},
            "participants": spec.participants,
            "events_per_file": events,
            "effects": trial_effects.as_dict() if spec.design == "trial" else None,
        }
        truth_path = build.write_truth(header)
    finally:
        store.dispose()
    return SimulatedStudy(
        preset=spec.name,
        out=out,
        db_path=db,
        seed=seed,
        today=build.today,
        truth_path=truth_path,
        truth=load_truth(out),
        fcs_files=len(build.draws),
        gated=report.count("gated"),
        failed=report.count("failed"),
        gating_seconds=report.seconds,
        plates=int(build.summary["cytokines"]["plates"]),
        seconds=time.perf_counter() - start,
    )


def _checked_preset(name: str, events_per_file: int | None, participants: int | None) -> StudyPreset:
    spec = preset(name)
    if events_per_file is not None and events_per_file < 1_000:
        raise SimulationError(f"events per file must be at least 1000, got {events_per_file}")
    if participants is not None:
        if participants < 8:
            raise SimulationError(f"a simulated study needs at least 8 participants, got {participants}")
        spec = replace(spec, participants=participants)
    return spec


def _labwork(build: Build, events_per_file: int, workers: int) -> BatchReport:
    """FCS files gated in a batch, then cytokine plates; summaries into the truth."""
    manifest = write_fcs_files(build, build.draws, events_per_file)
    report = gate_files(build, manifest, workers)
    build.summary["cytometry"] = {
        "files": len(build.draws),
        "gated": report.count("gated"),
        "failed": report.count("failed"),
        "qc_flags": report.flag_counts(),
    }
    prefix = "TRIAL" if build.preset.design == "trial" else "COHORT"
    build.summary["cytokines"] = run_plates(build, build.draws, prefix)
    return report


def load_truth(folder: str | Path) -> dict[str, Any]:
    """``truth.json`` of a simulated study folder.

    Raises
    ------
    SimulationError
        No ``truth.json`` there (not a simulated study, or an unfinished run).
    """
    path = Path(folder) / "truth.json"
    if not path.exists():
        raise SimulationError(f"{folder} has no truth.json: not a finished simulated study")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data
