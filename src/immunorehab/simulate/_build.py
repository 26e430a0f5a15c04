"""Shared state of one whole-study simulation: the store, random streams, blood draws and truth rows.

Everything is written through the platform's own services; this module only keeps what the
simulator knows (the truth) next to what it has asked the platform to store.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.simulate.immune import ImmuneState
from immunorehab.simulate.participants import synthetic_participants
from immunorehab.simulate.presets import StudyPreset
from immunorehab.study.export import atomic_write
from immunorehab.study.participants import import_participants, list_participants
from immunorehab.study.protocol import Protocol
from immunorehab.study.store import Store
from immunorehab.study.visits import record_visit

__all__ = ["STREAMS", "USERS", "BloodDraw", "Build", "ProgressCallback"]

ProgressCallback = Callable[[str, int, int], None]
#: Users of a simulated study (``admin`` creates it).
USERS: Mapping[str, str] = {
    "coord": "coordinator",
    "physio1": "physio",
    "lab1": "lab",
    "stats1": "statistician",
    "assessor1": "assessor",
}
#: Independent random streams, spawned from the seed in this order (adding a stream at the end
#: keeps the others).
STREAMS = ("participants", "clinic", "immune", "rehab", "fcs", "cytokines", "plates", "randomisation")


@dataclass(frozen=True, slots=True)
class BloodDraw:
    """One blood draw: its true immune state and plasma concentrations (pg/mL)."""

    participant_id: str
    visit_id: str
    drawn_on: dt.date
    state: ImmuneState
    concentrations: Mapping[str, float]


@dataclass
class Build:
    """One simulation in progress (mutable: the builder appends as it goes)."""

    store: Store
    out: Path
    preset: StudyPreset
    protocol: Protocol
    seed: int
    today: dt.date
    rngs: dict[str, np.random.Generator]
    on_progress: ProgressCallback | None = None
    draws: list[BloodDraw] = field(default_factory=list)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    visit_truth: list[dict[str, Any]] = field(default_factory=list)
    fcs_truth: list[dict[str, Any]] = field(default_factory=list)
    cytokine_truth: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def rng(self, stream: str) -> np.random.Generator:
        return self.rngs[stream]

    def progress(self, task: str, done: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(task, done, total)

    def enrol(self, *, adjust: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[str]:
        """Screen ``participants + screen_failures`` people and import them from a CSV file.

        ``adjust`` may adjust each record (e.g. the cohort's days since infection). Returns the
        ids of the eligible participants in consent order; covariates go to :attr:`people`.
        """
        preset, rng = self.preset, self.rng("participants")
        total = preset.participants + preset.screen_failures
        people = synthetic_participants(
            total,
            sites=[s.code for s in self.protocol.sites],
            rng=rng,
            first_consent=preset.first_consent,
            recruitment_days=preset.recruitment_days,
            screen_fail_fraction=0.0,
        )
        failing = set(rng.choice(total, size=preset.screen_failures, replace=False).tolist())
        for i, person in enumerate(people):
            if adjust is not None:
                person.update(adjust(person))
            if i in failing:  # not hospitalised, or too soon after the infection (NICE NG188)
                if rng.random() < 0.5:
                    person["hospitalised"] = False
                else:
                    person["days_since_infection"] = int(rng.integers(28, 84))
        path = self.out / "participants_import.csv"
        frame = pd.DataFrame(people)
        atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False), overwrite=True)
        ids = import_participants(self.store, by="coord", path=path, today=self.today)
        views = {v.participant_id: v for v in list_participants(self.store, by="coord")}
        for pid, person in zip(ids, people, strict=True):
            self.people[pid] = {"participant_id": pid, "eligible": views[pid].eligible, **person}
        return [pid for pid in ids if views[pid].eligible]

    def record(self, pid: str, visit: str, day: dt.date, values: Mapping[str, Any], *, by: str) -> None:
        """Record a visit through the study service (validated like any site's entry)."""
        record_visit(
            self.store,
            by=by,
            participant_id=pid,
            visit_id=visit,
            visit_date=day,
            values=values,
            today=self.today,
        )

    def write_truth(self, header: Mapping[str, Any]) -> Path:
        """Write the truth CSVs, then ``truth.json`` last (its presence marks a finished run)."""
        tables = {
            "truth_participants.csv": pd.DataFrame(list(self.people.values())),
            "truth_visits.csv": pd.DataFrame(self.visit_truth),
            "truth_fcs.csv": pd.DataFrame(self.fcs_truth),
            "truth_cytokines.csv": pd.DataFrame(self.cytokine_truth),
        }
        tables.update(self.tables)
        for name, frame in tables.items():
            atomic_write(self.out / name, _csv_writer(frame), overwrite=True)
        payload = {**header, "summary": self.summary, "tables": sorted(tables)}
        text = json.dumps(payload, indent=2, sort_keys=False, default=str)

        def write_json(tmp: Path) -> None:
            tmp.write_text(text, encoding="utf-8")

        return atomic_write(self.out / "truth.json", write_json)


def _csv_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        frame.to_csv(tmp, index=False)

    return write
