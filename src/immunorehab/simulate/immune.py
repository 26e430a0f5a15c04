"""A participant's lymphocytes as cell counts per leaf population, and the FCS fractions they imply.

Counts (cells/uL of blood) are the state; every fraction a flow file shows follows from them:
``t_cells`` = T/L, ``cd8`` = CD8/T, ``cd8_naive`` = naive CD8/CD8, and so on. An effect on
counts (exercise, inflammation) therefore moves the %-of-parent results by closure, as in real
blood (domain.md C3: subsets within a parent sum to 100%).

Baseline levels follow domain.md C1-C2: T cells 55-83% of lymphocytes, CD4 28-57% and CD8
10-39% of lymphocytes, naive T cells falling linearly with age (CD8 about twice as fast as CD4),
CMV seropositivity expanding CD8 TEMRA (and EM) cells, within-person CV of T-cell counts below
10% between visits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from immunorehab.simulate.fcs_model import PanelFractions

__all__ = [
    "LEAVES",
    "MEMORY_GATES",
    "ImmuneState",
    "baseline_immune_state",
    "outcome_value",
]

#: Leaf populations of live lymphocytes; their counts add up to the lymphocyte count.
LEAVES: tuple[str, ...] = (
    "cd4_naive",
    "cd4_cm",
    "cd4_em",
    "cd4_temra",
    "cd8_naive",
    "cd8_cm",
    "cd8_em",
    "cd8_temra",
    "t_dn",
    "t_dp",
    "b",
    "nk",
    "other",
)
MEMORY_GATES: tuple[str, ...] = LEAVES[:8]
_INDEX = {name: i for i, name in enumerate(LEAVES)}


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


@dataclass(frozen=True, slots=True)
class ImmuneState:
    """Cells/uL of every leaf population plus phenotype shares that are not counted separately.

    ``activated``/``senescent``: share of the CD4 or CD8 compartment that is HLA-DR+CD38+ or
    CD57+CD28- (senescent cells come from EM and TEMRA, so the share is capped by them);
    ``nk_cd56bright``: share of NK cells.
    """

    counts: tuple[float, ...]
    cd4_activated: float = 0.03
    cd8_activated: float = 0.06
    cd4_senescent_of_late: float = 0.15
    cd8_senescent_of_late: float = 0.5
    nk_cd56bright: float = 0.10

    def count(self, name: str) -> float:
        """Cells/uL of a leaf, or of ``cd4``, ``cd8``, ``t_cells``, ``lymphocytes``."""
        c = self.counts
        if name in _INDEX:
            return c[_INDEX[name]]
        if name in ("cd4", "cd8"):
            return sum(c[_INDEX[f"{name}_{m}"]] for m in ("naive", "cm", "em", "temra"))
        if name == "t_cells":
            return sum(c[: _INDEX["t_dp"] + 1])
        if name == "lymphocytes":
            return sum(c)
        raise KeyError(name)

    def scaled(self, factors: Mapping[str, float]) -> ImmuneState:
        """A copy with leaf counts multiplied by ``factors`` (leaves not named stay)."""
        counts = tuple(v * float(factors.get(name, 1.0)) for name, v in zip(LEAVES, self.counts, strict=True))
        return replace(self, counts=counts)

    def jittered(self, rng: np.random.Generator, cv: float) -> ImmuneState:
        """Visit-to-visit biological variation: every leaf count times ``exp(N(0, cv))``."""
        noise = np.exp(rng.normal(0.0, cv, len(LEAVES)))
        return replace(self, counts=tuple(float(v * z) for v, z in zip(self.counts, noise, strict=True)))

    def fraction(self, gate: str) -> float:
        """Fraction of its parent (0..1) for a memory gate, ``cd4``/``cd8`` (of T) or ``t_cells``."""
        if gate in MEMORY_GATES:
            return self.count(gate) / self.count(gate.split("_")[0])
        if gate in ("cd4", "cd8"):
            return self.count(gate) / self.count("t_cells")
        if gate == "t_cells":
            return self.count("t_cells") / self.count("lymphocytes")
        raise KeyError(gate)

    def panel_fractions(self, base: PanelFractions | None = None) -> PanelFractions:
        """The simulator's population fractions for a blood draw in this state."""
        lymph, t = self.count("lymphocytes"), self.count("t_cells")
        values = {g: self.fraction(g) for g in MEMORY_GATES}
        for subset in ("cd4", "cd8"):
            late = values[f"{subset}_em"] + values[f"{subset}_temra"]
            values[f"{subset}_senescent"] = late * getattr(self, f"{subset}_senescent_of_late")
            values[f"{subset}_activated"] = min(
                getattr(self, f"{subset}_activated"), 1 - values[f"{subset}_naive"]
            )
        return (base or PanelFractions()).with_values(
            t_cells=t / lymph,
            b_cells=self.count("b") / lymph,
            nk=self.count("nk") / lymph,
            cd4=self.count("cd4") / t,
            cd8=self.count("cd8") / t,
            double_positive=self.count("t_dp") / t,
            nk_cd56bright=self.nk_cd56bright,
            **values,
        )


def _memory(naive: float, cm: float, temra: float, min_em: float = 0.08) -> tuple[float, float, float, float]:
    em = max(1.0 - naive - cm - temra, min_em)
    total = naive + cm + em + temra
    return naive / total, cm / total, em / total, temra / total


def baseline_immune_state(
    rng: np.random.Generator, *, age_years: float, cmv: str, lymphocytes_per_ul: float = 1_800.0
) -> ImmuneState:
    """A participant's counts at baseline (see the module docstring for the sources).

    Parameters
    ----------
    age_years : age at consent; naive fractions fall 0.6 (CD8) and 0.4 (CD4) points per year.
    cmv : ``positive``, ``negative`` or ``unknown`` CMV serostatus (TEMRA expansion).
    lymphocytes_per_ul : median lymphocyte count of the population (cells/uL).
    """
    lymph = lymphocytes_per_ul * float(np.exp(rng.normal(0.0, 0.25)))
    t = _clip(0.68 + rng.normal(0, 0.06), 0.5, 0.8)
    b = _clip(0.11 + rng.normal(0, 0.03), 0.04, 0.2)
    nk = _clip(0.13 + rng.normal(0, 0.04), 0.04, 0.25)
    if t + b + nk > 0.97:  # leave at least 3% other (CD3-CD56-CD19-) lymphocytes
        b, nk = (x * (0.97 - t) / (b + nk) for x in (b, nk))
    cd4 = _clip(0.60 + rng.normal(0, 0.07), 0.35, 0.72)
    cd8 = _clip(0.30 + rng.normal(0, 0.06), 0.15, 0.9 - cd4)
    cmv_temra = {"positive": 0.30, "negative": 0.13}.get(cmv, 0.22)
    mem8 = _memory(
        _clip(0.42 - 0.006 * (age_years - 40) + rng.normal(0, 0.06), 0.06, 0.6),
        _clip(0.08 * float(np.exp(rng.normal(0, 0.25))), 0.03, 0.2),
        _clip(cmv_temra + rng.normal(0, 0.06), 0.04, 0.55),
    )
    mem4 = _memory(
        _clip(0.50 - 0.004 * (age_years - 40) + rng.normal(0, 0.06), 0.15, 0.7),
        _clip(0.28 + rng.normal(0, 0.04), 0.12, 0.4),
        _clip(0.03 + (0.03 if cmv == "positive" else 0.0) + rng.normal(0, 0.01), 0.01, 0.12),
    )
    t_count = lymph * t
    counts = [t_count * cd4 * f for f in mem4] + [t_count * cd8 * f for f in mem8]
    dp = 0.02 * t_count
    counts += [t_count - sum(counts) - dp, dp, lymph * b, lymph * nk, lymph * (1 - t - b - nk)]
    return ImmuneState(
        counts=tuple(float(c) for c in counts),
        cd4_activated=_clip(0.03 + rng.normal(0, 0.008), 0.01, 0.08),
        cd8_activated=_clip(0.06 + rng.normal(0, 0.015), 0.02, 0.15),
        nk_cd56bright=_clip(0.10 + rng.normal(0, 0.02), 0.04, 0.2),
    )


def outcome_value(state: ImmuneState, gate: str, quantity: str) -> float:
    """What the lab measures for ``gate``: ``pct_parent`` (0-100) or ``per_ul`` (cells/uL)."""
    if quantity == "pct_parent":
        return 100.0 * state.fraction(gate)
    if quantity == "per_ul":
        return state.count(gate)
    raise KeyError(quantity)
