"""Batches: every file of a manifest through the pipeline, in parallel, resumable, into the store.

``run_batch`` validates the whole manifest first (every problem at once, nothing run),
hashes every file, skips files already processed with the same strategy (their SHA-256
and the strategy hash are the key: in the store when one is given, else in the output
folder's ledger), and gates the rest in parallel:

- local worker processes (``concurrent.futures.ProcessPoolExecutor``, spawn start method)
  by default, or in this process with ``workers=1``;
- a Dask distributed cluster when ``scheduler`` names one (files must be readable by the
  workers at the same paths).

A failing file is reported (``failures.csv``) and the batch goes on; so is a manifest row whose
file does not exist or cannot be read (found while hashing, before anything runs). Each finished file is
written to the store in its own transaction (all of its rows, or none) and to the ledger
(``.ledger/<file-hash>-<strategy-hash>.json``, written atomically). At the end the output
folder gets ``counts.csv``, ``qc_flags.csv``, ``gate_moves.csv`` and ``failures.csv`` for
every manifest row that has a result (including those resumed from an earlier run).
"""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from immunorehab.errors import BatchError, ImmunorehabError, ManifestError

from .manifest import Manifest, ManifestRow
from .panel import Panel
from .pipeline import GateOptions, stack_frames
from .qc import exercise_flag
from .worker import FileJob, FileOutcome, Status, process_file, sha256_file

if TYPE_CHECKING:
    from immunorehab.study.store import Store


__all__ = ["BatchReport", "FileJob", "FileOutcome", "process_file", "run_batch", "sha256_file"]

ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class BatchReport:
    """Outcome of a batch: one :class:`FileOutcome` per manifest row, and the files written."""

    outcomes: tuple[FileOutcome, ...]
    written: tuple[Path, ...]
    seconds: float
    stored: int = 0

    def count(self, status: Status) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def failures(self) -> tuple[FileOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == "failed")

    def flag_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            for code in {c for c, _ in o.flags}:
                counts[code] = counts.get(code, 0) + 1
        return dict(sorted(counts.items()))


def _ledger_path(out: Path, file_sha: str, strategy_sha: str) -> Path:
    return out / ".ledger" / f"{file_sha}-{strategy_sha[:16]}.json"


def _options_for(row: ManifestRow, base: GateOptions, panels: dict[Path, Panel]) -> GateOptions:
    if row.panel is None:
        return base
    if row.panel not in panels:
        panels[row.panel] = Panel.from_csv(row.panel)
    return replace(base, panel=panels[row.panel])


def _plot_path(out: Path | None, row: ManifestRow, fmt: str) -> Path | None:
    if out is None:
        return None
    safe = "".join(
        c if c.isalnum() or c in "-_." else "_" for c in f"{row.participant_id}_{row.visit_id}_{row.tube}"
    )
    return out / "plots" / f"{safe}.{fmt}"


def _failed(job: FileJob, exc: BaseException) -> FileOutcome:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return FileOutcome(
        job.row, "failed", job.file_sha256, job.strategy_sha256, error=f"worker failed: {detail}"
    )


_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextmanager
def _single_threaded_children() -> Iterator[None]:
    """One BLAS/OpenMP thread per worker process (N workers x N BLAS threads would oversubscribe the cores).

    Spawned processes copy the environment when they start; the caller's own settings win.
    """
    saved = {name: os.environ.get(name) for name in _THREAD_VARIABLES}
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, "1")
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _run_local(jobs: Sequence[FileJob], workers: int) -> Iterator[FileOutcome]:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield process_file(job)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        with _single_threaded_children():  # workers are spawned while jobs are submitted
            futures: dict[Future[FileOutcome], FileJob] = {
                pool.submit(process_file, job): job for job in jobs
            }
        for future in as_completed(futures):
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by the OS: report and go on
                yield _failed(futures[future], exc)


def _run_dask(jobs: Sequence[FileJob], scheduler: str) -> Iterator[FileOutcome]:
    from distributed import Client
    from distributed import as_completed as dask_completed

    try:
        client = Client(scheduler, timeout="15s")  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise BatchError(f"cannot connect to the Dask scheduler at {scheduler!r}: {exc}") from None
    try:
        futures = client.map(process_file, list(jobs), pure=False)
        by_key = {f.key: job for f, job in zip(futures, jobs, strict=True)}
        for future in dask_completed(futures):  # type: ignore[no-untyped-call]
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker fails its file only
                yield _failed(by_key[future.key], exc)
    finally:
        client.close()  # type: ignore[no-untyped-call]


@dataclass
class _Plan:
    jobs: list[FileJob]
    done: list[FileOutcome]
    options: dict[str, GateOptions]


def _plan(
    manifest: Manifest,
    options: GateOptions,
    out: Path,
    processed: set[tuple[str, str]] | None,
    plots: str | None,
    on_progress: ProgressCallback | None,
) -> _Plan:
    panels: dict[Path, Panel] = {}
    hashes: dict[str | None, str] = {}
    seen: dict[str, ManifestRow] = {}
    problems = []
    plan = _Plan([], [], {})
    n = len(manifest.rows)
    for i, row in enumerate(manifest.rows, start=1):
        opts = _options_for(row, options, panels)
        key = opts.panel.sha256 if opts.panel is not None else None
        if key not in hashes:
            hashes[key] = opts.sha256(opts.strategy())
        strategy_sha = hashes[key]
        plan.options[strategy_sha] = opts
        try:
            file_sha = sha256_file(row.file)
        except OSError as exc:  # missing or unreadable: this row fails, the batch goes on
            why = "does not exist (or is not a file)" if not row.file.is_file() else f"cannot be read: {exc}"
            plan.done.append(FileOutcome(row, "failed", "", strategy_sha, error=f"{row.file} {why}"))
            if on_progress is not None:
                on_progress("Hashing FCS files", i, n)
            continue
        if file_sha in seen:
            from immunorehab.errors import Problem

            problems.append(
                Problem(f"row {row.row}, field file", f"same contents as row {seen[file_sha].row}")
            )
        seen.setdefault(file_sha, row)
        ledger = _ledger_path(out, file_sha, strategy_sha)
        already = (file_sha, strategy_sha) in processed if processed is not None else ledger.exists()
        if already:
            previous = (
                FileOutcome.from_json(ledger.read_text(encoding="utf-8"), row) if ledger.exists() else None
            )
            skipped = previous or FileOutcome(row, "skipped", file_sha, strategy_sha)
            plan.done.append(replace(skipped, status="skipped"))
        else:
            plan.jobs.append(
                FileJob(
                    row, opts, file_sha, strategy_sha, _plot_path(out if plots else None, row, plots or "png")
                )
            )
        if on_progress is not None:
            on_progress("Hashing FCS files", i, n)
    if problems:
        raise ManifestError(f"manifest {manifest.path} is invalid: nothing was processed", problems)
    return plan


def _with_exercise_flag(
    outcome: FileOutcome, store: Store | None, user: str | None, window_h: float
) -> FileOutcome:
    hours, source = outcome.row.hours_since_exercise, "manifest hours_since_exercise"
    if hours is None and store is not None and user is not None:
        from .service import hours_since_exercise

        with store.read(user) as session:
            hours = hours_since_exercise(session, outcome.row.participant_id, outcome.row.visit_id)
        source = f"visit {outcome.row.visit_id} measure hours_since_exercise"
    flag = exercise_flag(hours, window_h=window_h, source=source)
    if flag is None:
        return outcome
    return replace(outcome, flags=(*outcome.flags, (flag.code, flag.detail)))


def _finish(
    outcome: FileOutcome,
    options: GateOptions,
    out: Path,
    store: Store | None,
    user: str | None,
    replace_stored: bool,
    reason: str | None,
) -> tuple[FileOutcome, bool]:
    """Store and ledger one gated file; a store refusal turns it into a failure."""
    if outcome.status != "gated":
        return outcome, False
    stored = False
    if store is not None and user is not None:
        from .service import store_outcome

        try:
            result = store_outcome(
                store,
                by=user,
                row=outcome.row,
                options=options,
                file_sha256=outcome.file_sha256,
                strategy_sha256=outcome.strategy_sha256,
                placed_gatingml=outcome.placed_gatingml,
                placed_sha256=outcome.placed_sha256,
                n_events=outcome.n_events,
                counts=outcome.counts,
                moves=outcome.moves,
                flags=outcome.flags,
                replace=replace_stored,
                reason=reason,
            )
        except ImmunorehabError as exc:
            return replace(outcome, status="failed", error=f"not stored: {exc}"), False
        stored = result.file_id is not None
    text = outcome.to_json()

    def write_ledger(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    from immunorehab.study.export import atomic_write

    atomic_write(
        _ledger_path(out, outcome.file_sha256, outcome.strategy_sha256), write_ledger, overwrite=True
    )
    return outcome, stored


def _meta(o: FileOutcome) -> dict[str, Any]:
    return {
        "participant_id": o.row.participant_id,
        "visit_id": o.row.visit_id,
        "tube": o.row.tube,
        "file": str(o.row.file),
        "file_sha256": o.file_sha256,
        "strategy_sha256": o.strategy_sha256,
    }


def _summaries(outcomes: Sequence[FileOutcome], out: Path) -> list[Path]:
    with_counts = [o for o in outcomes if not o.counts.empty]
    frames = {
        "counts.csv": [o.counts.assign(**_meta(o)) for o in with_counts],
        "gate_moves.csv": [o.moves.assign(**_meta(o)) for o in with_counts if not o.moves.empty],
    }
    written = []
    for name, parts in frames.items():
        frame = stack_frames(parts, _meta_columns())
        written.append(_write_csv(frame, out / name))
    flags = [{**_meta(o), "code": c, "detail": d} for o in outcomes for c, d in o.flags]
    written.append(
        _write_csv(pd.DataFrame(flags, columns=[*_meta_columns(), "code", "detail"]), out / "qc_flags.csv")
    )
    failures = [{**_meta(o), "row": o.row.row, "error": o.error} for o in outcomes if o.status == "failed"]
    written.append(
        _write_csv(pd.DataFrame(failures, columns=["row", *_meta_columns(), "error"]), out / "failures.csv")
    )
    return written


def _meta_columns() -> tuple[str, ...]:
    return ("participant_id", "visit_id", "tube", "file", "file_sha256", "strategy_sha256")


def _write_csv(frame: pd.DataFrame, path: Path) -> Path:
    from immunorehab.study.export import atomic_write

    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False), overwrite=True)


def run_batch(
    manifest: Manifest,
    *,
    out: str | Path,
    options: GateOptions | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    store: Store | None = None,
    user: str | None = None,
    plots: Literal["png", "svg"] | None = None,
    replace_stored: bool = False,
    reason: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> BatchReport:
    """Gate every file of ``manifest``; see the module docstring.

    Parameters
    ----------
    manifest : Manifest
        From :func:`~.manifest.read_manifest`.
    out : path
        Output folder (created); summary CSVs are rewritten on every run, the ledger grows.
    options : GateOptions
        Template, default panel, auto-placement, MFI markers, QC limits (rows may name their own panel).
    workers : int, optional
        Local worker processes (default: CPU count; 1 = in this process).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://host:8786``); overrides ``workers``.
    store, user : Store and user name, optional
        Store results against participant and visit (roles ``admin`` or ``lab``).
    plots : "png" or "svg", optional
        Write a gate plot per file to ``out/plots``.
    replace_stored : bool
        Re-gate every file, replacing results stored with the same strategy (needs ``reason``,
        kept in the audit trail).
    on_progress : callable, optional
        ``on_progress(task, done, total)``.

    Raises
    ------
    ManifestError
        Rows naming unknown participants or visits, or two rows with the same file contents.
    PermissionDenied
        ``user`` may not store results.
    BatchError
        The Dask scheduler cannot be reached.
    """
    start = time.perf_counter()
    out = Path(out)
    options = options or GateOptions.create()
    if replace_stored and not reason:
        raise BatchError("re-gating stored results (--replace) needs a reason: pass --reason TEXT")
    if store is not None:
        from .service import check_manifest_rows, processed_keys, require_writer

        if user is None:
            raise BatchError("storing results needs a user: pass --user NAME")
        require_writer(store, by=user)
        problems = check_manifest_rows(store, by=user, rows=manifest.rows)
        if problems:
            raise ManifestError(
                f"manifest {manifest.path} does not match the study: nothing was processed", problems
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / ".ledger").mkdir(exist_ok=True)
    if plots:
        (out / "plots").mkdir(exist_ok=True)
    processed: set[tuple[str, str]] | None = None
    if replace_stored:
        processed = set()  # re-gate everything
    elif store is not None and user is not None:
        processed = processed_keys(store, by=user)
    plan = _plan(manifest, options, out, processed, plots, on_progress)
    runner = (
        _run_dask(plan.jobs, scheduler)
        if scheduler
        else _run_local(plan.jobs, workers or os.cpu_count() or 1)
    )
    outcomes, stored = list(plan.done), 0
    total = len(plan.jobs)
    if on_progress is not None:
        on_progress("Gating FCS files", 0, total)
    for done, outcome in enumerate(runner, start=1):
        if outcome.status == "gated":
            outcome = _with_exercise_flag(outcome, store, user, options.qc.exercise_window_h)
        job_options = plan.options[outcome.strategy_sha256]
        outcome, was_stored = _finish(outcome, job_options, out, store, user, replace_stored, reason)
        stored += was_stored
        outcomes.append(outcome)
        if on_progress is not None:
            on_progress("Gating FCS files", done, total)
    order = {r.row: i for i, r in enumerate(manifest.rows)}
    outcomes.sort(key=lambda o: order[o.row.row])
    written = _summaries(outcomes, out)
    return BatchReport(tuple(outcomes), tuple(written), time.perf_counter() - start, stored)
