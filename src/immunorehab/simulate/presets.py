"""Settings of the two whole-study presets and the trial's configurable arm effect.

``seed-trial``
    The PHOSP-R immune sub-study (domain.md section 0): 31 hospitalised adults with post-COVID
    syndrome randomised to face-to-face rehabilitation or usual care for 8 weeks
    (``seed_trial_immune.yaml``), blood at baseline and week 8.
``seed-cohort``
    The Fong et al. 2023 cohort (domain.md sections 0 and F): 78 patients followed from the acute
    admission to 24 months (``fong_cohort.yaml``), blood at every visit.

The arm effect is declared as a ratio of *cell counts* (cells/uL) per T-cell memory subset for a
participant who completes the programme (attends at least the completer share of sessions);
partial attendance gives a proportionally smaller effect on the log scale. Counts are what
exercise changes; the subsets' % of parent follow by closure (a subset's share rises only as
much as it outgrows its siblings), and the ground-truth file reports both.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Literal

from immunorehab.errors import SimulationError

__all__ = [
    "DEFAULT_COUNT_RATIOS",
    "EFFECT_GATES",
    "PRESETS",
    "PresetName",
    "StudyPreset",
    "TrialEffects",
    "parse_effects",
    "preset",
]

PresetName = Literal["seed-trial", "seed-cohort"]
#: Memory subsets whose counts the arm effect may change (TEMRA counts are left alone).
EFFECT_GATES: tuple[str, ...] = tuple(f"{s}_{m}" for s in ("cd4", "cd8") for m in ("naive", "cm", "em"))
#: Count ratios after completing 8 weeks of face-to-face rehabilitation (the seed claim, ERS 2025:
#: more naive T cells, central-memory CD4+, central- and effector-memory CD8+; sizes are a
#: simulation setting). With TEMRA counts unchanged, the claimed subsets' % of parent rise by
#: about 5-9% and TEMRA's share falls (closure).
DEFAULT_COUNT_RATIOS: Mapping[str, float] = {
    "cd4_naive": 1.25,
    "cd4_cm": 1.25,
    "cd4_em": 1.10,
    "cd8_naive": 1.35,
    "cd8_cm": 1.35,
    "cd8_em": 1.35,
}


@dataclass(frozen=True, slots=True)
class TrialEffects:
    """Effects of completing the programme (exercise arm vs usual care).

    ``count_ratio``: multiplicative effect on the subset's cells/uL (1 = none), by gate id of
    :data:`EFFECT_GATES`. ``iswt_m``: ISWT metres gained (PHOSP-R face-to-face: +52 m, 95% CI
    19-85, domain.md 0). ``eswt_s``: endurance shuttle walk seconds gained; ``sts_reps``:
    1-minute sit-to-stand repetitions gained. Symptoms and quality of life have no arm effect
    (PHOSP-R found no between-group differences).
    """

    count_ratio: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_COUNT_RATIOS))
    iswt_m: float = 60.0
    eswt_s: float = 150.0
    sts_reps: float = 2.0

    def ratio(self, gate: str) -> float:
        """Count ratio of ``gate`` (1.0 for subsets without an effect)."""
        return float(self.count_ratio.get(gate, 1.0))

    def as_dict(self) -> dict[str, object]:
        return {
            "count_ratio": {g: self.ratio(g) for g in EFFECT_GATES},
            "iswt_m": self.iswt_m,
            "eswt_s": self.eswt_s,
            "sts_reps": self.sts_reps,
        }


_SCALARS = {"iswt": "iswt_m", "iswt_m": "iswt_m", "eswt": "eswt_s", "eswt_s": "eswt_s", "sts": "sts_reps"}


def parse_effects(items: Iterable[str], base: TrialEffects | None = None) -> TrialEffects:
    """Effects from ``NAME=VALUE`` texts, e.g. ``cd8_naive=1.3``, ``iswt=52``, ``all=1`` (no effect).

    ``all=R`` sets every subset's count ratio to R; ``none`` removes every effect.

    Raises
    ------
    SimulationError
        An unknown name, a value that is not a number, or a ratio that is not positive (every
        problem is listed).
    """
    effects = base or TrialEffects()
    ratios = dict(effects.count_ratio)
    scalars: dict[str, float] = {}
    problems: list[str] = []
    for item in items:
        text = item.strip()
        if text == "none":
            ratios = dict.fromkeys(EFFECT_GATES, 1.0)
            scalars.update(iswt_m=0.0, eswt_s=0.0, sts_reps=0.0)
            continue
        name, sep, raw = text.partition("=")
        name = name.strip().lower()
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not sep or not math.isfinite(value):
            problems.append(f"{item!r}: expected NAME=NUMBER, e.g. cd8_naive=1.3 or iswt=52")
        elif name in EFFECT_GATES or name == "all":
            if value <= 0:
                problems.append(f"{item!r}: a count ratio must be positive (1 = no effect)")
            for gate in EFFECT_GATES if name == "all" else (name,):
                ratios[gate] = value
        elif name in _SCALARS:
            scalars[_SCALARS[name]] = value
        else:
            problems.append(
                f"{item!r}: unknown effect {name!r}; expected one of {', '.join(EFFECT_GATES)}, all, "
                "iswt, eswt, sts or none"
            )
    if problems:
        raise SimulationError("invalid --effect: " + "; ".join(problems))
    return replace(effects, count_ratio=ratios, **scalars)


@dataclass(frozen=True, slots=True)
class StudyPreset:
    """Size, calendar and laboratory settings of one preset.

    ``screen_failures``: extra screened people built to fail eligibility (the CONSORT flow shows
    them). ``first_consent`` and ``recruitment_days``: the recruitment calendar (fixed dates make
    a seed reproduce the same study whatever day it runs). ``events_per_file``: FCS events per
    blood draw. ``missing_visit``: chance a follow-up visit is missed.
    """

    name: PresetName
    protocol_file: str
    participants: int
    screen_failures: int
    first_consent: dt.date
    recruitment_days: int
    events_per_file: int
    missing_visit: float
    design: Literal["trial", "cohort"]

    def protocol_path(self) -> Path:
        """The packaged protocol of this preset."""
        return Path(str(resources.files("immunorehab") / "data" / self.protocol_file))


PRESETS: Mapping[str, StudyPreset] = {
    "seed-trial": StudyPreset(
        name="seed-trial",
        protocol_file="seed_trial_immune.yaml",
        participants=31,
        screen_failures=2,
        first_consent=dt.date(2022, 3, 7),
        recruitment_days=240,
        events_per_file=30_000,
        missing_visit=0.06,
        design="trial",
    ),
    "seed-cohort": StudyPreset(
        name="seed-cohort",
        protocol_file="fong_cohort.yaml",
        participants=78,
        screen_failures=0,
        first_consent=dt.date(2021, 6, 1),
        recruitment_days=120,
        events_per_file=12_000,
        missing_visit=0.04,
        design="cohort",
    ),
}


def preset(name: str) -> StudyPreset:
    """The preset called ``name``.

    Raises
    ------
    SimulationError
        Unknown preset name.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise SimulationError(f"unknown preset {name!r}: expected one of {', '.join(PRESETS)}") from None
