"""Quality control across plates: Levey-Jennings, Westgard rules, inter-plate CV, bridging.

Control materials run on every plate are tracked per (control, analyte) in run order. The
Levey-Jennings target (mean, SD) comes from baseline plates (default: all plates) or is given;
by default on log10 concentration, as cytokine levels are log-normal (domain.md D3). Westgard
rules (Westgard et al. 1981) flag each point:

``1_2s`` warning: one point beyond +-2 SD; ``1_3s``: one beyond +-3 SD; ``2_2s``: two
consecutive beyond 2 SD on the same side; ``R_4s``: two consecutive on opposite sides more
than 4 SD apart; ``4_1s``: four consecutive beyond 1 SD on the same side; ``10_x``: ten
consecutive on the same side of the mean. Any rule but ``1_2s`` rejects the run.

Bridging normalisation (Biancotto 2013, domain.md D3): each plate's concentrations of an
analyte are multiplied by ``reference / plate value`` of the shared controls (geometric means),
so the controls agree across plates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "REJECT_RULES",
    "bridge_normalise",
    "bridging_factors",
    "inter_plate_cv",
    "levey_jennings",
    "westgard",
]

REJECT_RULES = ("1_3s", "2_2s", "R_4s", "4_1s", "10_x")


def westgard(z: Sequence[float]) -> list[list[str]]:
    """Westgard rules violated at each point of the z-score series ``z`` (run order)."""
    zs = np.asarray(z, dtype=float)
    out: list[list[str]] = []
    for i, v in enumerate(zs):
        rules: list[str] = []
        if not math.isfinite(v):
            out.append(rules)
            continue
        if abs(v) > 3:
            rules.append("1_3s")
        elif abs(v) > 2:
            rules.append("1_2s")
        prev = zs[i - 1] if i >= 1 else math.nan
        if i >= 1 and abs(v) > 2 and abs(prev) > 2 and np.sign(v) == np.sign(prev):
            rules.append("2_2s")
        if i >= 1 and math.isfinite(prev) and v * prev < 0 and abs(v - prev) > 4:
            rules.append("R_4s")
        last4 = zs[max(0, i - 3) : i + 1]
        if last4.size == 4 and (np.all(last4 > 1) or np.all(last4 < -1)):
            rules.append("4_1s")
        last10 = zs[max(0, i - 9) : i + 1]
        if last10.size == 10 and (np.all(last10 > 0) or np.all(last10 < 0)):
            rules.append("10_x")
        out.append(rules)
    return out


def levey_jennings(
    controls: pd.DataFrame,
    *,
    log: bool = True,
    baseline: int | None = None,
    targets: dict[tuple[str, str], tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Levey-Jennings table of control results across plates.

    Parameters
    ----------
    controls : DataFrame
        ``plate_id, order, control, analyte, concentration`` (one row per plate, control and
        analyte; replicate wells already averaged). ``order`` sorts the runs.
    log : bool
        Work on log10 concentration (default) or on the concentration itself.
    baseline : int, optional
        Number of first runs defining the target mean and SD (default: all runs).
    targets : dict, optional
        ``(control, analyte) -> (mean, sd)`` on the working scale, overriding the baseline.

    Returns
    -------
    DataFrame
        The input plus ``value`` (working scale), ``target_mean``, ``target_sd``, ``z``,
        ``rules`` (";"-joined) and ``reject`` (any rejection rule).
    """
    frames = []
    for (control, analyte), g in controls.sort_values("order").groupby(["control", "analyte"], sort=True):
        g = g.copy()
        conc = g["concentration"].astype(float)
        g["value"] = np.log10(conc.where(conc > 0)) if log else conc
        base = g["value"].iloc[:baseline] if baseline else g["value"]
        mean, sd = (targets or {}).get(
            (str(control), str(analyte)), (float(base.mean()), float(base.std(ddof=1)))
        )
        g["target_mean"], g["target_sd"] = mean, sd
        g["z"] = (g["value"] - mean) / sd if sd and sd > 0 else math.nan
        rules = westgard(g["z"].to_list())
        g["rules"] = [";".join(r) for r in rules]
        g["reject"] = [any(x in REJECT_RULES for x in r) for r in rules]
        frames.append(g)
    if not frames:
        return controls.assign(value=[], target_mean=[], target_sd=[], z=[], rules=[], reject=[])
    return pd.concat(frames, ignore_index=True)


def inter_plate_cv(controls: pd.DataFrame) -> pd.DataFrame:
    """CV of each control's concentration across plates: ``control, analyte, n_plates, mean, cv``."""
    g = controls.groupby(["control", "analyte"])["concentration"]
    out = pd.DataFrame({"n_plates": g.count(), "mean": g.mean(), "sd": g.std(ddof=1)}).reset_index()
    out["cv"] = out["sd"] / out["mean"]
    return out


def bridging_factors(controls: pd.DataFrame, *, bridge: Sequence[str] | None = None) -> pd.DataFrame:
    """Per plate and analyte: ``factor = reference / plate value`` of the bridging controls.

    The plate value is the geometric mean of the bridging controls on that plate, the reference
    the geometric mean of those plate values over all plates (log-scale centring).
    """
    c = controls if bridge is None else controls[controls["control"].isin(list(bridge))]
    c = c[c["concentration"] > 0].assign(logc=lambda d: np.log(d["concentration"]))
    # normalise each control by its own across-plate mean first, so several controls combine
    c = c.assign(rel=c["logc"] - c.groupby(["control", "analyte"])["logc"].transform("mean"))
    plate = c.groupby(["plate_id", "analyte"])["rel"].mean().rename("log_shift").reset_index()
    plate["factor"] = np.exp(-plate["log_shift"])
    return plate[["plate_id", "analyte", "factor"]]


def bridge_normalise(results: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """Multiply ``concentration`` of ``results`` (with ``plate_id, analyte``) by the plate factors.

    Rows of plates/analytes without a factor keep their value (factor 1) and are listed in
    column ``bridged`` = False.
    """
    merged = results.merge(factors, on=["plate_id", "analyte"], how="left")
    merged["bridged"] = merged["factor"].notna()
    merged["factor"] = merged["factor"].fillna(1.0)
    merged["concentration_raw"] = merged["concentration"]
    merged["concentration"] = merged["concentration"] * merged["factor"]
    return merged
