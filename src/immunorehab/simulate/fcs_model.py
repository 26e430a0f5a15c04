"""Population model of the synthetic T-cell memory panel (used by :mod:`immunorehab.simulate.fcs`).

Detector layout and spillover of a BD LSRFortessa-like instrument, the population
fractions a caller may choose (:class:`PanelFractions`), and the per-event draws: scatter
of lymphocytes/monocytes/granulocytes, debris, dead cells, lineages, T-cell phenotypes,
marker expression (lognormal positive populations over autofluorescence) and event times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from immunorehab.errors import FcsSimulationError

__all__ = [
    "CELL_TYPES",
    "CHANNELS",
    "FLUORESCENCE",
    "LINEAGES",
    "MARKERS",
    "MEMORY",
    "NK_SUBSETS",
    "MemoryFractions",
    "PanelFractions",
    "spillover_text",
]

#: (detector, marker) of the 12 fluorescence channels (BD LSRFortessa-like names).
FLUORESCENCE: tuple[tuple[str, str], ...] = (
    ("BV510-A", "Viability"),
    ("BUV395-A", "CD3"),
    ("BV605-A", "CD4"),
    ("APC-H7-A", "CD8"),
    ("PE-Cy7-A", "CCR7"),
    ("FITC-A", "CD45RA"),
    ("BV711-A", "HLA-DR"),
    ("PerCP-Cy5.5-A", "CD38"),
    ("BV421-A", "CD57"),
    ("PE-CF594-A", "CD28"),
    ("PE-A", "CD56"),
    ("APC-A", "CD16"),
)
_SCATTER = ("FSC-A", "FSC-H", "SSC-A")
#: Every channel ($PnN) in file order; markers ($PnS) are "" for scatter and Time.
CHANNELS: tuple[str, ...] = (*_SCATTER, *(d for d, _ in FLUORESCENCE), "Time")
MARKERS: tuple[str, ...] = ("", "", "", *(m for _, m in FLUORESCENCE), "")
_M = {m: i for i, (_, m) in enumerate(FLUORESCENCE)}
_RANGE = 262144.0
TIMESTEP_S = 0.01
#: Events with FSC-A or SSC-A at or above this share of the range are off scale (saturated).
_OFF_SCALE = 0.999

# Spillover (fluorochrome -> detector), typical magnitudes of a 4-laser instrument.
_SPILL_PAIRS: dict[tuple[str, str], float] = {
    ("FITC-A", "PE-A"): 0.18,
    ("FITC-A", "PE-CF594-A"): 0.04,
    ("FITC-A", "PerCP-Cy5.5-A"): 0.03,
    ("PE-A", "PE-CF594-A"): 0.32,
    ("PE-A", "PerCP-Cy5.5-A"): 0.10,
    ("PE-A", "FITC-A"): 0.01,
    ("PE-CF594-A", "PerCP-Cy5.5-A"): 0.22,
    ("PE-CF594-A", "PE-Cy7-A"): 0.04,
    ("PerCP-Cy5.5-A", "PE-Cy7-A"): 0.08,
    ("PerCP-Cy5.5-A", "BV711-A"): 0.02,
    ("PE-Cy7-A", "APC-H7-A"): 0.03,
    ("APC-A", "APC-H7-A"): 0.12,
    ("APC-H7-A", "PE-Cy7-A"): 0.05,
    ("BV421-A", "BV510-A"): 0.21,
    ("BV421-A", "BV605-A"): 0.03,
    ("BV510-A", "BV605-A"): 0.12,
    ("BV510-A", "FITC-A"): 0.05,
    ("BV605-A", "BV711-A"): 0.09,
    ("BV605-A", "PE-CF594-A"): 0.06,
    ("BV711-A", "PerCP-Cy5.5-A"): 0.05,
    ("BUV395-A", "BV421-A"): 0.02,
}

#: label codes (labels are stored as small integers; these are their names)
CELL_TYPES = ("debris", "bead", "doublet", "lymphocyte", "monocyte", "granulocyte")
LINEAGES = ("none", "t_cd4", "t_cd8", "t_dn", "t_dp", "b", "nk", "other")
MEMORY = ("none", "naive", "cm", "em", "temra")
NK_SUBSETS = ("none", "bright", "dim")


@dataclass(frozen=True, slots=True)
class MemoryFractions:
    """Naive / central memory / effector memory / TEMRA fractions of a T-cell subset (sum 1)."""

    naive: float
    cm: float
    em: float
    temra: float

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.naive, self.cm, self.em, self.temra)


@dataclass(frozen=True, slots=True)
class PanelFractions:
    """Population fractions of a simulated sample; each is a fraction of its parent (0..1).

    ``debris``, ``doublets``: of all non-bead events. ``lymphocytes``, ``monocytes``: of cells
    (granulocytes are the rest). ``dead``: of cells. ``t_cells``, ``b_cells``, ``nk``: of
    lymphocytes (the rest are other CD3-CD56- lymphocytes). ``cd4``, ``cd8``,
    ``double_positive``: of T cells (the rest double-negative). ``*_activated``: of the
    subset (HLA-DR+CD38+, drawn from its memory cells); ``*_senescent``: of the subset
    (CD57+CD28-, drawn from its EM and TEMRA cells). ``nk_cd56bright``: of NK cells.
    """

    debris: float = 0.06
    doublets: float = 0.04
    lymphocytes: float = 0.32
    monocytes: float = 0.08
    dead: float = 0.05
    t_cells: float = 0.70
    b_cells: float = 0.12
    nk: float = 0.12
    cd4: float = 0.60
    cd8: float = 0.30
    double_positive: float = 0.02
    cd4_memory: MemoryFractions = field(default_factory=lambda: MemoryFractions(0.45, 0.30, 0.20, 0.05))
    cd8_memory: MemoryFractions = field(default_factory=lambda: MemoryFractions(0.35, 0.10, 0.30, 0.25))
    cd4_activated: float = 0.03
    cd8_activated: float = 0.06
    cd4_senescent: float = 0.04
    cd8_senescent: float = 0.20
    nk_cd56bright: float = 0.10

    def problems(self) -> list[str]:
        """Every impossible setting, as readable sentences (empty when valid)."""
        out: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            values = value.as_tuple() if isinstance(value, MemoryFractions) else (value,)
            if any(not (0.0 <= v <= 1.0) or math.isnan(v) for v in values):
                out.append(f"{f.name} must be between 0 and 1, got {value}")
        sums = {
            "debris + doublets": self.debris + self.doublets,
            "lymphocytes + monocytes": self.lymphocytes + self.monocytes,
            "t_cells + b_cells + nk": self.t_cells + self.b_cells + self.nk,
            "cd4 + cd8 + double_positive": self.cd4 + self.cd8 + self.double_positive,
        }
        out += [f"{k} must be at most 1, got {v:.4g}" for k, v in sums.items() if v > 1.0 + 1e-9]
        for subset in ("cd4", "cd8"):
            mem: MemoryFractions = getattr(self, f"{subset}_memory")
            if abs(sum(mem.as_tuple()) - 1.0) > 1e-6:
                out.append(f"{subset}_memory fractions must sum to 1, got {sum(mem.as_tuple()):.4g}")
            if getattr(self, f"{subset}_activated") > 1.0 - mem.naive + 1e-9:
                out.append(
                    f"{subset}_activated cannot exceed the memory (non-naive) fraction {1 - mem.naive:.3g}"
                )
            if getattr(self, f"{subset}_senescent") > mem.em + mem.temra + 1e-9:
                out.append(
                    f"{subset}_senescent cannot exceed the EM + TEMRA fraction {mem.em + mem.temra:.3g}"
                )
        return out

    def with_values(self, **values: float) -> PanelFractions:
        """A copy with some fractions changed; ``cd4_naive=0.4`` etc. set memory fractions."""
        kwargs: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        for key, value in values.items():
            subset, _, stage = key.partition("_")
            if subset in ("cd4", "cd8") and stage in ("naive", "cm", "em", "temra"):
                mem = asdict(kwargs[f"{subset}_memory"])
                mem[stage] = float(value)
                kwargs[f"{subset}_memory"] = MemoryFractions(**mem)
            elif key in kwargs and not key.endswith("_memory"):
                kwargs[key] = float(value)
            else:
                names = [k for k in kwargs if not k.endswith("_memory")]
                stages = [f"{s}_{m}" for s in ("cd4", "cd8") for m in ("naive", "cm", "em", "temra")]
                raise FcsSimulationError(
                    f"unknown fraction {key!r}: expected one of {', '.join(names + stages)}"
                )
        return PanelFractions(**kwargs)


def spillover_text(matrix: np.ndarray) -> str:
    """The ``$SPILLOVER`` keyword value of a 12 x 12 matrix over :data:`FLUORESCENCE`."""
    names = [d for d, _ in FLUORESCENCE]
    values = ",".join(f"{v:.6g}" for v in matrix.ravel())
    return f"{len(names)},{','.join(names)},{values}"


def spillover_matrix() -> np.ndarray:
    names = [d for d, _ in FLUORESCENCE]
    index = {n: i for i, n in enumerate(names)}
    matrix = np.eye(len(names))
    for (src, dst), value in _SPILL_PAIRS.items():
        matrix[index[src], index[dst]] = value
    return matrix


# -- population model ---------------------------------------------------------------------


def lognormal(rng: np.random.Generator, median: float, sd: float, n: int) -> np.ndarray:
    return rng.lognormal(math.log(median), sd, n)


def pick(rng: np.random.Generator, probs: tuple[float, ...], n: int) -> np.ndarray:
    p = np.asarray(probs, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def draw_cells(
    n: int, rng: np.random.Generator, f: PanelFractions, brightness: Mapping[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``n`` single cells: (scatter n x 3 [FSC-A, FSC-H, SSC-A], true fluorescence n x 12, labels).

    ``brightness`` scales the stained (positive) intensity of markers, e.g. ``{"CCR7": 0.3}``
    for a dim reagent lot; autofluorescence is unchanged.
    """
    granulocytes = max(0.0, 1.0 - f.lymphocytes - f.monocytes)
    kind = pick(rng, (f.lymphocytes, f.monocytes, granulocytes), n)  # 0 lymph, 1 mono, 2 gran
    dead = rng.random(n) < f.dead
    fsc = np.choose(
        kind, [rng.normal(55_000, 6_500, n), rng.normal(95_000, 11_000, n), rng.normal(112_000, 13_000, n)]
    )
    ssc = np.choose(
        kind,
        [
            lognormal(rng, 14_000, 0.18, n),
            lognormal(rng, 48_000, 0.18, n),
            lognormal(rng, 125_000, 0.16, n),
        ],
    )
    fsc = np.where(dead, fsc * 0.72, fsc)
    ssc = np.where(dead, ssc * 1.35, ssc)
    fsc_h = fsc * 0.82 * (1.0 + rng.normal(0.0, 0.025, n))
    scatter = np.column_stack([fsc, fsc_h, ssc])

    autof = lognormal(rng, 90.0, 0.45, n) * np.choose(kind, [1.0, 2.0, 3.5])
    x = np.outer(autof, np.linspace(1.2, 0.6, len(FLUORESCENCE)))
    labels = lineage_labels(kind == 0, rng, f)
    express(x, kind, dead, labels, rng, brightness or {})
    labels["cell_type"] = (kind + CELL_TYPES.index("lymphocyte")).astype(np.int8)
    labels["dead"] = dead
    return scatter, x, labels


def lineage_labels(lymph: np.ndarray, rng: np.random.Generator, f: PanelFractions) -> dict[str, np.ndarray]:
    n = lymph.size
    other = max(0.0, 1.0 - f.t_cells - f.b_cells - f.nk)
    lineage_of_lymph = pick(rng, (f.t_cells, f.b_cells, f.nk, other), n)  # t, b, nk, other
    dn = max(0.0, 1.0 - f.cd4 - f.cd8 - f.double_positive)
    t_kind = pick(rng, (f.cd4, f.cd8, dn, f.double_positive), n)  # cd4, cd8, dn, dp
    t_codes = np.array([LINEAGES.index(x) for x in ("t_cd4", "t_cd8", "t_dn", "t_dp")], dtype=np.int8)
    rest_codes = np.array(
        [0, LINEAGES.index("b"), LINEAGES.index("nk"), LINEAGES.index("other")], dtype=np.int8
    )
    lineage = np.where(lineage_of_lymph == 0, t_codes[t_kind], rest_codes[lineage_of_lymph])
    lineage = np.where(lymph, lineage, 0).astype(np.int8)

    memory = np.zeros(n, dtype=np.int8)
    activated = np.zeros(n, dtype=bool)
    senescent = np.zeros(n, dtype=bool)
    is_t = lineage_of_lymph == 0
    for code, mem, act, sen in (
        (t_codes[0], f.cd4_memory, f.cd4_activated, f.cd4_senescent),
        (t_codes[1], f.cd8_memory, f.cd8_activated, f.cd8_senescent),
    ):
        own = lineage == code
        # double-negative/-positive T cells follow the CD8 (dn) or CD4 (dp) memory mix
        pool = own | (lymph & is_t & (lineage == (t_codes[2] if code == t_codes[1] else t_codes[3])))
        stage = pick(rng, mem.as_tuple(), n) + 1
        memory = np.where(pool, stage, memory).astype(np.int8)
        non_naive = own & (memory != MEMORY.index("naive"))
        late = own & ((memory == MEMORY.index("em")) | (memory == MEMORY.index("temra")))
        p_act = act / max(1e-12, 1.0 - mem.naive)
        p_sen = sen / max(1e-12, mem.em + mem.temra)
        activated |= non_naive & (rng.random(n) < p_act)
        senescent |= late & (rng.random(n) < p_sen)
    nk = lineage == LINEAGES.index("nk")
    nk_subset = np.where(nk, np.where(rng.random(n) < f.nk_cd56bright, 1, 2), 0).astype(np.int8)
    return {
        "lineage": lineage,
        "memory": memory,
        "activated": activated,
        "senescent": senescent,
        "nk_subset": nk_subset,
    }


def express(
    x: np.ndarray,
    kind: np.ndarray,
    dead: np.ndarray,
    lab: dict[str, np.ndarray],
    rng: np.random.Generator,
    brightness: Mapping[str, float],
) -> None:
    """Add each population's marker expression to the autofluorescence in ``x`` (in place)."""

    def add(mask: np.ndarray, marker: str, median: float, sd: float = 0.4) -> None:
        k = int(mask.sum())
        if k:
            x[mask, _M[marker]] += lognormal(rng, median * brightness.get(marker, 1.0), sd, k)

    lin, mem = lab["lineage"], lab["memory"]
    t = np.isin(lin, [LINEAGES.index(c) for c in ("t_cd4", "t_cd8", "t_dn", "t_dp")])
    cd4 = np.isin(lin, [LINEAGES.index("t_cd4"), LINEAGES.index("t_dp")])
    cd8 = np.isin(lin, [LINEAGES.index("t_cd8"), LINEAGES.index("t_dp")])
    nk, b = lin == LINEAGES.index("nk"), lin == LINEAGES.index("b")
    bright, dim = lab["nk_subset"] == 1, lab["nk_subset"] == 2
    act, sen = lab["activated"], lab["senescent"]
    naive = mem == MEMORY.index("naive")
    add(dead, "Viability", 30_000, 0.35)
    add(~dead, "Viability", 250, 0.4)
    add(t, "CD3", 11_000)
    add(cd4, "CD4", 8_000)
    add(kind == 1, "CD4", 1_800)  # monocytes are CD4 dim
    add(cd8, "CD8", 18_000)
    add(nk & (rng.random(x.shape[0]) < 0.3), "CD8", 2_500)  # some NK cells are CD8 dim
    add(t & np.isin(mem, [1, 2]), "CCR7", 3_500, 0.6)
    add(t & np.isin(mem, [1, 4]) | b | nk, "CD45RA", 9_000, 0.5)
    add((t & act) | b | (kind == 1), "HLA-DR", 7_000, 0.55)
    add(t & act, "CD38", 9_000, 0.55)
    add(t & naive & (rng.random(x.shape[0]) < 0.5), "CD38", 2_200, 0.5)
    add(kind == 1, "CD38", 4_000)
    add(t & sen, "CD57", 7_500, 0.6)
    add(dim & (rng.random(x.shape[0]) < 0.4), "CD57", 6_000)
    add(t & ~sen, "CD28", 4_500, 0.5)
    add(bright, "CD56", 28_000, 0.35)
    add(dim, "CD56", 2_600, 0.45)
    add(dim, "CD16", 14_000)
    add(bright, "CD16", 350, 0.5)
    add(kind == 2, "CD16", 30_000, 0.25)  # neutrophils are CD16 bright
    add((kind == 1) & (rng.random(x.shape[0]) < 0.12), "CD16", 7_000)


def event_times(
    n: int, rng: np.random.Generator, events_per_second: float, disturbance: tuple[float, float, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted acquisition times in ticks of 10 ms and whether each fell in the disturbance."""
    duration = n / events_per_second
    if disturbance is None:
        times = np.sort(rng.uniform(0.0, duration, n))
        return np.floor(times / TIMESTEP_S), np.zeros(n, dtype=bool)
    start, end, factor = disturbance
    # piecewise-constant rate: 1 outside [start, end) of the run, ``factor`` inside
    mass = np.array([start, (end - start) * factor, 1.0 - end])
    total = mass.sum()
    u = np.sort(rng.uniform(0.0, total, n))
    edges = np.cumsum(mass)
    frac = np.where(
        u < edges[0],
        u,
        np.where(u < edges[1], start + (u - edges[0]) / max(factor, 1e-12), end + (u - edges[1])),
    )
    seconds = frac * duration / total  # the usual rate outside the window: the run lasts longer
    unstable = (u >= edges[0]) & (u < edges[1])
    return np.floor(seconds / TIMESTEP_S), unstable


def draw_debris(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    fsc = rng.exponential(9_000, n) + 800
    scatter = np.column_stack(
        [fsc, fsc * 0.8 * (1.0 + rng.normal(0, 0.05, n)), lognormal(rng, 6_000, 0.7, n)]
    )
    x = np.outer(lognormal(rng, 60.0, 0.6, n), np.ones(len(FLUORESCENCE)))
    stained = rng.random(n) < 0.5  # membrane fragments take up the viability dye
    x[stained, _M["Viability"]] += lognormal(rng, 8_000, 0.8, int(stained.sum()))
    return scatter, x


def draw_beads(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    fsc = rng.normal(22_000, 1_200, n)
    scatter = np.column_stack(
        [fsc, fsc * 0.85 * (1.0 + rng.normal(0, 0.02, n)), rng.normal(40_000, 2_500, n)]
    )
    return scatter, lognormal(rng, 90_000, 0.05, n * len(FLUORESCENCE)).reshape(n, len(FLUORESCENCE))


def labels_frame(
    parts: list[dict[str, np.ndarray]], order: np.ndarray, unstable: np.ndarray, off_scale: np.ndarray
) -> pd.DataFrame:
    cols = {k: np.concatenate([p[k] for p in parts])[order] for k in parts[0]}
    return pd.DataFrame(
        {
            "cell_type": pd.Categorical.from_codes(cols["cell_type"], categories=pd.Index(CELL_TYPES)),
            "dead": cols["dead"],
            "lineage": pd.Categorical.from_codes(cols["lineage"], categories=pd.Index(LINEAGES)),
            "memory": pd.Categorical.from_codes(cols["memory"], categories=pd.Index(MEMORY)),
            "activated": cols["activated"],
            "senescent": cols["senescent"],
            "nk_subset": pd.Categorical.from_codes(cols["nk_subset"], categories=pd.Index(NK_SUBSETS)),
            "unstable": unstable,
            "off_scale": off_scale,
        }
    )


def blank_labels(n: int, cell_type: str) -> dict[str, np.ndarray]:
    zeros = np.zeros(n, dtype=np.int8)
    return {
        "cell_type": np.full(n, CELL_TYPES.index(cell_type), dtype=np.int8),
        "dead": np.zeros(n, dtype=bool),
        "lineage": zeros,
        "memory": zeros,
        "activated": np.zeros(n, dtype=bool),
        "senescent": np.zeros(n, dtype=bool),
        "nk_subset": zeros,
    }
