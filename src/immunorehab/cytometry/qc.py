"""Quality-control flags of a gated sample.

A flag never stops a batch: it is stored with the results so that whoever analyses them
can exclude or down-weight the sample. Codes:

``too_few_events``        fewer events than needed for stable subset percentages
``unstable_flow``         the event rate over Time departs from steady (clog, bubble, drift)
``missing_compensation``  fluorescence gates ask for the file's spillover matrix, but the
                          file has none (or an identity matrix, i.e. never compensated)
``no_clear_valley``       an auto-placed threshold or scatter gate kept its template position
``too_few_beads``         single-platform absolute counts from fewer than ``min_bead_events`` beads
``draw_after_exercise``   blood drawn within 24 h after exercise: exercise moves lymphocytes
                          (NK, CD8 effector memory) into and out of the blood for hours
                          (domain.md C3, E2); such a draw does not reflect the resting state
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from .density import stable_time_window

if TYPE_CHECKING:
    from .autogate import Placement
    from .results import GatingResults
    from .sample import Sample
    from .strategy import GatingStrategy

__all__ = ["QC_CODES", "QcCode", "QcFlag", "QcSettings", "exercise_flag", "sample_flags"]

QcCode = Literal[
    "too_few_events",
    "unstable_flow",
    "missing_compensation",
    "no_clear_valley",
    "too_few_beads",
    "draw_after_exercise",
]
QC_CODES: tuple[QcCode, ...] = (
    "too_few_events",
    "unstable_flow",
    "missing_compensation",
    "no_clear_valley",
    "too_few_beads",
    "draw_after_exercise",
)


@dataclass(frozen=True, slots=True)
class QcFlag:
    """One QC flag: its code and a sentence saying what was found."""

    code: QcCode
    detail: str


@dataclass(frozen=True, slots=True)
class QcSettings:
    """Limits of the QC flags.

    ``min_events``: total events; ``min_population_events``: events in ``key_population``
    (live lymphocytes: subset percentages of a few hundred cells have wide binomial error);
    ``max_unstable_fraction``: share of events in time bins with an unsteady rate;
    ``min_bead_events``: beads for single-platform counts (the bead count's Poisson CV is
    1/sqrt(n): 3% at 1,000 beads); ``exercise_window_h``: hours after exercise during which
    a draw is flagged.
    """

    min_events: int = 10_000
    key_population: str = "live"
    min_population_events: int = 500
    max_unstable_fraction: float = 0.02
    min_bead_events: int = 1_000
    bead_gate: str = "beads"
    exercise_window_h: float = 24.0


def _time_index(sample: Sample) -> int | None:
    for i, channel in enumerate(sample.channels):
        if channel.lower() == "time":
            return i
    return None


def _compensation_flag(sample: Sample, strategy: GatingStrategy) -> QcFlag | None:
    wants_fcs = any(d.compensation == "FCS" for d in strategy.dimensions_used())
    if not wants_fcs:
        return None
    spill = sample.spillover
    if spill is None:
        return QcFlag(
            "missing_compensation",
            "the gates use the file's spillover matrix but the file has no $SPILLOVER/$SPILL keyword: "
            "fluorescence values were left uncompensated",
        )
    matrix = np.asarray(spill.matrix)
    if matrix.shape[0] == matrix.shape[1] and np.allclose(matrix, np.eye(matrix.shape[0])):
        return QcFlag(
            "missing_compensation",
            "the file's spillover matrix is the identity: the sample was most likely never compensated",
        )
    return None


def sample_flags(
    sample: Sample,
    strategy: GatingStrategy,
    results: GatingResults,
    placement: Placement | None,
    *,
    settings: QcSettings | None = None,
    single_platform: bool = False,
) -> list[QcFlag]:
    """Every QC flag the sample itself raises (the exercise flag needs visit data: :func:`exercise_flag`)."""
    s = settings or QcSettings()
    flags: list[QcFlag] = []
    if sample.n_events < s.min_events:
        flags.append(QcFlag("too_few_events", f"{sample.n_events} events (at least {s.min_events} expected)"))
    if s.key_population in results.gate_ids:
        n_key = results.count(s.key_population)
        if n_key < s.min_population_events:
            flags.append(
                QcFlag(
                    "too_few_events",
                    f"{n_key} events in {s.key_population!r} (at least {s.min_population_events} expected)",
                )
            )
    window = placement.time_window if placement is not None else None
    index = _time_index(sample)
    if window is None and index is not None:
        window = stable_time_window(sample.scaled[:, index])
    if window is not None and window.unstable_fraction > s.max_unstable_fraction:
        flags.append(
            QcFlag(
                "unstable_flow",
                f"{window.unstable_fraction:.1%} of events in time bins whose rate departs from the median "
                f"by more than half (rate CV {window.rate_cv:.2f})",
            )
        )
    comp = _compensation_flag(sample, strategy)
    if comp is not None:
        flags.append(comp)
    if placement is not None and placement.unclear:
        names = ", ".join(
            m.rule if ":" in m.rule else f"{m.rule} ({', '.join(m.gates)})" for m in placement.unclear
        )
        flags.append(QcFlag("no_clear_valley", f"template position kept for {names}"))
    if single_platform and s.bead_gate in results.gate_ids:
        beads = results.count(s.bead_gate)
        if beads < s.min_bead_events:
            flags.append(
                QcFlag(
                    "too_few_beads",
                    f"{beads} bead events (at least {s.min_bead_events} for counts within ~3%)",
                )
            )
    return flags


def exercise_flag(
    hours_since_exercise: float | None, *, window_h: float = 24.0, source: str
) -> QcFlag | None:
    """The ``draw_after_exercise`` flag when the draw was less than ``window_h`` hours after exercise."""
    if hours_since_exercise is None or math.isnan(hours_since_exercise):
        return None
    if hours_since_exercise < window_h:
        return QcFlag(
            "draw_after_exercise",
            f"blood drawn {hours_since_exercise:.1f} h after exercise ({source}); "
            f"draws should be at least {window_h:g} h after exercise",
        )
    return None
