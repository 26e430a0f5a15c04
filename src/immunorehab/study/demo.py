"""The demo job: what ``make demo`` runs.

``run_chain_demo`` (the default ``immunorehab demo``) runs the whole chain on two synthetic
studies calibrated to the seed studies (:mod:`immunorehab.simulate.chain`): the PHOSP-R immune
sub-study trial (31 participants, 8 weeks) and the Fong cohort (78 participants to 24 months).
Each is built through the platform's own services (participants import, randomisation, visits,
rehabilitation logs, a batch of gated FCS files, fitted cytokine plates), analysed as the
protocol prespecifies, reported (HTML + PDF), checked (allocation and audit hash chains,
balance per stratum), exported (CSV/Parquet, REDCap dictionary) and compared with its truth.
The two studies run in two processes at once.

``run_demo`` (``immunorehab demo --walkthrough``) is the capability walk-through on the shipped
three-arm PHOSP-R protocol: it creates a fresh SQLite study, adds users, imports synthetic
participants from a CSV (the same path a site's file takes), randomises the eligible ones in
consent order, records baseline and end-of-programme visits, withdraws a few, runs each
capability's demo step (:data:`DEMO_STEPS`), verifies both hash chains and exports the data.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from immunorehab.simulate.participants import synthetic_participants
from immunorehab.study.allocation import BalanceReport, allocation_balance, randomise, verify_allocations
from immunorehab.study.audit import verify_audit_chain
from immunorehab.study.export import participants_frame, visits_frame, write_frame
from immunorehab.study.participants import import_participants, list_participants, withdraw_participant
from immunorehab.study.protocol import Measure, Protocol, Visit, load_protocol
from immunorehab.study.redcap import write_redcap_data_dictionary
from immunorehab.study.service import add_user, create_study, get_protocol
from immunorehab.study.store import Store
from immunorehab.study.visits import record_visit, visit_statuses

if TYPE_CHECKING:
    from immunorehab.simulate.chain import ChainResult

__all__ = [
    "CHAIN_SETTINGS",
    "ChainDemoResult",
    "DEMO_STEPS",
    "DEMO_USERS",
    "DemoContext",
    "DemoResult",
    "DemoStep",
    "ProgressCallback",
    "StudyChecks",
    "default_protocol_path",
    "run_chain_demo",
    "run_demo",
    "study_checks",
]

#: ``on_progress(task, done, total)``: a long step reports how far it is (the CLI draws a bar).
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class DemoContext:
    """What a capability's demo step gets: the freshly built demo study and where to write.

    ``randomised`` lists ``(participant_id, randomisation date)`` in randomisation order;
    ``users`` maps demo user names to roles (``admin`` is the study admin).
    """

    store: Store
    out: Path
    seed: int
    today: dt.date
    protocol: Protocol
    randomised: tuple[tuple[str, dt.date], ...]
    users: dict[str, str]
    on_progress: ProgressCallback | None = None


#: A capability's demo step: does its work on the demo study and returns lines to print.
DemoStep = Callable[[DemoContext], list[str]]

#: Demo steps run in this order after enrolment and randomisation, as ``"module:function"``
#: (imported lazily). Each capability appends its own step when it lands.
DEMO_STEPS: list[str] = [
    "immunorehab.cytokines.demo:demo_cytokines",
    "immunorehab.rehab.demo:demo_rehab",
    "immunorehab.cytometry.demo:demo_cytometry",
    "immunorehab.report.demo:demo_report",
]

DEMO_USERS = {
    "coord": "coordinator",
    "physio1": "physio",
    "lab1": "lab",
    "stats1": "statistician",
    "assessor1": "assessor",
}


def default_protocol_path() -> Path:
    """The shipped PHOSP-R immune sub-study protocol (package data)."""
    return Path(str(resources.files("immunorehab") / "data" / "phosp_r_immune.yaml"))


@dataclass(frozen=True, slots=True)
class DemoResult:
    study: str
    db_path: Path
    import_file: Path
    enrolled: int
    ineligible: int
    failures: list[str]
    randomised: int
    withdrawn: int
    balance: BalanceReport
    allocation_check: str
    audit_check: str
    today: dt.date
    visit_counts: dict[str, int]
    exports: list[Path]
    steps: list[tuple[str, list[str]]]


def _value(measure: Measure, rng: np.random.Generator, visit_date: dt.date) -> Any:
    if measure.type in ("number", "integer"):
        lo = measure.min if measure.min is not None else 0.0
        hi = measure.max if measure.max is not None else lo + 100.0
        x = rng.uniform(lo + 0.2 * (hi - lo), lo + 0.6 * (hi - lo))
        return int(round(x)) if measure.type == "integer" else round(float(x), 2)
    if measure.type == "boolean":
        return bool(rng.random() < 0.8)
    if measure.type == "choice":
        return str(rng.choice(list(measure.choices)))
    if measure.type == "date":
        return visit_date.isoformat()
    return "synthetic"


def _rehab_baseline(visit: Visit, covariates: dict[str, Any], rng: np.random.Generator) -> dict[str, Any]:
    """Realistic rehabilitation baseline values (ISWT, 1RM tests, DSQ-PEM, ...) for the visit's measures."""
    from immunorehab.simulate.sessions import synthetic_baseline

    measures = {m.id for m in visit.measures}
    values = synthetic_baseline(rng, age_years=covariates["age_years"], sex=covariates["sex"])
    return {key: value for key, value in values.items() if key in measures}


def _remove_db(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)


def run_demo(
    out: Path,
    *,
    n: int = 60,
    seed: int = 2025,
    protocol_path: Path | None = None,
    today: dt.date | None = None,
    on_progress: Callable[[], None] | None = None,
    on_step_progress: ProgressCallback | None = None,
) -> DemoResult:
    """Run the demo into folder ``out`` (its demo.db is recreated); return what happened."""
    today = today or dt.date.today()
    rng = np.random.default_rng(seed)
    rehab_rng = np.random.default_rng(seed + 1)  # baseline rehab assessments (own stream)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.db"
    _remove_db(db)
    protocol_path = protocol_path or default_protocol_path()
    protocol = load_protocol(protocol_path)
    store, info = create_study(f"sqlite:///{db}", protocol_path, admin="admin", seed=seed)
    for name, role in DEMO_USERS.items():
        add_user(store, by="admin", username=name, role=role)

    people = synthetic_participants(
        n, sites=[s.code for s in protocol.sites], rng=rng, first_consent=today - dt.timedelta(days=400)
    )
    import_file = out / "participants_import.csv"
    pd.DataFrame(people).to_csv(import_file, index=False)
    ids = import_participants(store, by="coord", path=import_file, today=today)

    views = {v.participant_id: v for v in list_participants(store, by="coord")}
    failures = Counter(c for v in views.values() for c in v.failed_criteria)
    randomised: list[tuple[str, dt.date]] = []
    for pid in ids:
        view = views[pid]
        if view.eligible:
            consent = view.covariates["consent_date"]
            day = min(consent + dt.timedelta(days=int(rng.integers(1, 10))), today)
            randomise(store, by="coord", participant_id=pid, on=day)
            randomised.append((pid, day))
        if on_progress is not None:
            on_progress()

    withdrawn = 0
    for pid, day in randomised:
        for visit in protocol.visits:
            target = day + dt.timedelta(days=visit.day)
            visit_date = target + dt.timedelta(
                days=int(rng.integers(-visit.window_before_days, visit.window_after_days + 1))
            )
            if visit_date > today or rng.random() < 0.1:
                continue
            values = {
                m.id: _value(m, rng, visit_date) for m in visit.measures if m.required or rng.random() < 0.7
            }
            if visit.day == 0:
                values |= _rehab_baseline(visit, views[pid].covariates, rehab_rng)
            record_visit(
                store,
                by="physio1",
                participant_id=pid,
                visit_id=visit.id,
                visit_date=visit_date,
                values=values,
                today=today,
            )
        if withdrawn < max(1, n // 30) and rng.random() < 0.1:
            withdraw_participant(
                store,
                by="coord",
                participant_id=pid,
                reason="participant request (synthetic)",
                on=min(day + dt.timedelta(days=30), today),
            )
            withdrawn += 1

    context = DemoContext(
        store=store,
        out=out,
        seed=seed,
        today=today,
        protocol=protocol,
        randomised=tuple(randomised),
        users={"admin": "admin", **DEMO_USERS},
        on_progress=on_step_progress,
    )
    steps = [(name, _step(name)(context)) for name in DEMO_STEPS]

    alloc = verify_allocations(store, by="admin")
    audit_report = _audit(store)
    statuses = Counter(s.status for s in visit_statuses(store, by="coord", today=today))
    exports = [
        write_frame(participants_frame(store, by="stats1"), out / "participants.csv", overwrite=True),
        write_frame(visits_frame(store, by="stats1"), out / "visits.parquet", overwrite=True),
    ]
    dictionary = out / "redcap_data_dictionary.csv"
    dictionary.unlink(missing_ok=True)
    write_redcap_data_dictionary(protocol, dictionary)
    exports.append(dictionary)
    balance = allocation_balance(store, by="stats1")
    store.dispose()
    return DemoResult(
        study=info.slug,
        db_path=db,
        import_file=import_file,
        enrolled=len(ids),
        ineligible=sum(not v.eligible for v in views.values()),
        failures=[f"{k} x{v}" for k, v in sorted(failures.items())],
        randomised=len(randomised),
        withdrawn=withdrawn,
        balance=balance,
        allocation_check="intact" if alloc.ok else f"BROKEN: {alloc.problem}",
        audit_check=audit_report,
        today=today,
        visit_counts=dict(sorted(statuses.items())),
        exports=exports,
        steps=steps,
    )


def _step(name: str) -> DemoStep:
    import importlib

    module, _, func = name.partition(":")
    step: DemoStep = getattr(importlib.import_module(module), func)
    return step


def _audit(store: Store) -> str:
    with store.read("admin") as session:
        report = verify_audit_chain(session)
    return f"intact ({report.checked} events)" if report.ok else f"BROKEN: {report.problem}"


# -- the whole chain (make demo) ---------------------------------------------------------------

#: (preset, events per FCS file, participants, blinded report) for the full and the quick demo.
CHAIN_SETTINGS: dict[bool, tuple[tuple[str, int | None, int | None, bool], ...]] = {
    False: (("seed-trial", None, None, True), ("seed-cohort", None, None, True)),
    True: (("seed-trial", 10_000, None, False), ("seed-cohort", 10_000, 24, False)),
}


@dataclass(frozen=True, slots=True)
class StudyChecks:
    """The foundation's checks and exports on one simulated study."""

    allocation_check: str
    audit_check: str
    balance: BalanceReport | None
    exports: tuple[Path, ...]


@dataclass(frozen=True, slots=True)
class ChainDemoResult:
    """Both simulated studies through the whole chain, with their checks."""

    out: Path
    seed: int
    quick: bool
    chains: dict[str, ChainResult]
    checks: dict[str, StudyChecks]
    seconds: float


def study_checks(db_url: str, folder: Path) -> StudyChecks:
    """Verify the allocation and audit hash chains, read the balance, export the data (as a site would)."""
    store = Store.open(db_url)
    try:
        with store.read("admin") as session:
            protocol = get_protocol(session)
        alloc = verify_allocations(store, by="admin") if protocol.randomised else None
        balance = allocation_balance(store, by="stats1") if protocol.randomised else None
        exports_dir = folder / "exports"
        exports_dir.mkdir(exist_ok=True)
        exports = [
            write_frame(
                participants_frame(store, by="stats1"), exports_dir / "participants.csv", overwrite=True
            ),
            write_frame(visits_frame(store, by="stats1"), exports_dir / "visits.parquet", overwrite=True),
        ]
        dictionary = exports_dir / "redcap_data_dictionary.csv"
        dictionary.unlink(missing_ok=True)
        write_redcap_data_dictionary(protocol, dictionary)
        exports.append(dictionary)
        audit = _audit(store)
    finally:
        store.dispose()
    allocation = (
        "not randomised (cohort)"
        if alloc is None
        else (f"intact ({alloc.checked} allocations)" if alloc.ok else f"BROKEN: {alloc.problem}")
    )
    return StudyChecks(allocation, audit, balance, tuple(exports))


_QUEUE: Any = None  # set in each demo worker process: progress goes back to the parent


def _init_worker(queue: Any) -> None:
    global _QUEUE
    _QUEUE = queue


def _forward(preset: str) -> ProgressCallback:
    def forward(task: str, done: int, total: int) -> None:
        if _QUEUE is not None:
            _QUEUE.put((f"{preset}: {task}", done, total))

    return forward


def _chain_job(
    preset: str,
    folder: Path,
    seed: int,
    events: int | None,
    participants: int | None,
    blinded: bool,
    workers: int,
) -> tuple[ChainResult, StudyChecks]:
    """One preset through the chain and the foundation checks (runs in a worker process)."""
    from immunorehab.simulate.chain import run_chain

    chain = run_chain(
        preset,
        folder,
        seed=seed,
        events_per_file=events,
        participants=participants,
        workers=workers,
        blinded_report=blinded,
        on_progress=_forward(preset),
    )
    return chain, study_checks(chain.study.db_url, chain.study.out)


def _drain(queue: Any, on_progress: ProgressCallback | None, stop: threading.Event) -> None:
    import queue as queues

    while not stop.is_set() or not queue.empty():
        try:
            task, done, total = queue.get(timeout=0.1)
        except queues.Empty:
            continue
        if on_progress is not None:
            on_progress(task, done, total)


def run_chain_demo(
    out: Path,
    *,
    seed: int = 2025,
    quick: bool = False,
    on_progress: ProgressCallback | None = None,
) -> ChainDemoResult:
    """Both seed presets through the whole chain, in two processes at once, into ``out/<preset>/``.

    ``quick`` shrinks the studies (10,000 events per file, 24 cohort participants, no blinded
    report) for tests; ``make demo`` runs the full presets. Earlier demo folders are replaced.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    stop = threading.Event()
    reader = threading.Thread(target=_drain, args=(queue, on_progress, stop), daemon=True)
    reader.start()
    jobs = CHAIN_SETTINGS[quick]
    try:
        with ProcessPoolExecutor(
            len(jobs), mp_context=context, initializer=_init_worker, initargs=(queue,)
        ) as pool:
            futures = {
                name: pool.submit(_chain_job, name, out / name, seed, events, people, blinded, 2)
                for name, events, people, blinded in jobs
            }
            done = {name: future.result() for name, future in futures.items()}
    finally:
        stop.set()
        reader.join()
    return ChainDemoResult(
        out=out,
        seed=seed,
        quick=quick,
        chains={name: chain for name, (chain, _) in done.items()},
        checks={name: checks for name, (_, checks) in done.items()},
        seconds=time.perf_counter() - start,
    )
