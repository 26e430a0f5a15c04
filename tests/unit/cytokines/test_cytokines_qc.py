"""QC across plates: Westgard rules, Levey-Jennings, inter-plate CV, bridging normalisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from immunorehab.cytokines.qc import (
    bridge_normalise,
    bridging_factors,
    inter_plate_cv,
    levey_jennings,
    westgard,
)


@pytest.mark.parametrize(
    ("z", "index", "rule"),
    [
        ([0, 0.5, 3.2], 2, "1_3s"),
        ([0, 2.5], 1, "1_2s"),
        ([0, 2.3, 2.4], 2, "2_2s"),
        ([0, 2.1, -2.2], 2, "R_4s"),
        ([0, 1.2, 1.5, 1.1, 1.3], 4, "4_1s"),
        ([0.2] * 10, 9, "10_x"),
    ],
)
def test_westgard_rules(z: list[float], index: int, rule: str) -> None:
    rules = westgard(z)
    assert rule in rules[index]
    assert rules[0] == [] or rule == "10_x"


def test_westgard_quiet_series() -> None:
    assert all(r == [] for r in westgard([0.1, -0.5, 0.8, -1.2, 0.3, -0.1, 1.5, -0.4]))
    assert westgard([0.0, 2.2, 0.0, -2.1]) == [[], ["1_2s"], [], ["1_2s"]]  # warnings only
    assert westgard([float("nan"), 0.0]) == [[], []]


def controls_frame(values: list[float], control: str = "CTRL-H", analyte: str = "IL-6") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "plate_id": [f"P{i}" for i in range(len(values))],
            "order": range(len(values)),
            "control": control,
            "analyte": analyte,
            "concentration": values,
        }
    )


def test_levey_jennings_with_baseline_target() -> None:
    values = [100, 104, 96, 101, 99, 100, 300]  # last plate far off
    lj = levey_jennings(controls_frame(values), baseline=6)
    base = np.log10(values[:6])
    assert lj["target_mean"].iloc[0] == pytest.approx(base.mean())
    assert lj["target_sd"].iloc[0] == pytest.approx(base.std(ddof=1))
    assert bool(lj["reject"].iloc[-1]) and "1_3s" in lj["rules"].iloc[-1]
    assert not lj["reject"].iloc[:6].any()
    linear = levey_jennings(controls_frame(values), log=False, targets={("CTRL-H", "IL-6"): (100.0, 2.0)})
    assert linear["z"].iloc[1] == pytest.approx(2.0)


def test_inter_plate_cv() -> None:
    cv = inter_plate_cv(controls_frame([90.0, 100.0, 110.0]))
    assert cv["cv"].iloc[0] == pytest.approx(10 / 100) and cv["n_plates"].iloc[0] == 3


def test_bridging_recovers_plate_gains() -> None:
    rng = np.random.default_rng(3)
    gains = {"P0": 1.0, "P1": 1.3, "P2": 0.8}
    rows, samples = [], []
    for i, (plate, gain) in enumerate(gains.items()):
        for control, level in (("CTRL-L", 20.0), ("CTRL-H", 200.0)):
            rows.append(
                {
                    "plate_id": plate,
                    "order": i,
                    "control": control,
                    "analyte": "IL-6",
                    "concentration": level * gain,
                }
            )
        for _ in range(5):
            true = float(rng.lognormal(2, 0.5))
            samples.append({"plate_id": plate, "analyte": "IL-6", "concentration": true * gain, "true": true})
    factors = bridging_factors(pd.DataFrame(rows))
    fixed = bridge_normalise(pd.DataFrame(samples), factors)
    # up to one common scale (the reference is the geometric mean of the plates)
    ratio = fixed["concentration"] / fixed["true"]
    assert ratio.std() / ratio.mean() < 1e-9 and fixed["bridged"].all()
    assert ratio.iloc[0] == pytest.approx(np.exp(np.mean(np.log(list(gains.values())))))
    unbridged = bridge_normalise(pd.DataFrame(samples).assign(analyte="TNF-a"), factors)
    assert (
        not unbridged["bridged"].any()
        and (unbridged["concentration"] == unbridged["concentration_raw"]).all()
    )
