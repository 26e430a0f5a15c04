"""Property tests (hypothesis) for standard curves and plate processing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from immunorehab.cytokines import fit_standard_curve
from immunorehab.cytokines.assay import load_assay
from immunorehab.cytokines.models import FivePL
from immunorehab.cytokines.plate import PlateMap, Readings
from immunorehab.cytokines.process import process_plate

REPO = Path(__file__).resolve().parents[2]
PLATES = REPO / "tests" / "data" / "cytokines" / "plates"
CONC = np.repeat(10000 / 4.0 ** np.arange(8), 2)

params_5pl = st.tuples(
    st.floats(10, 200),  # a
    st.floats(0.6, 2.0),  # b
    st.floats(50, 3000),  # c
    st.floats(5000, 40000),  # d
    st.floats(0.5, 2.0),  # g
)


@settings(max_examples=60, deadline=None)
@given(p=params_5pl, fractions=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=20), rising=st.booleans())
def test_back_calculate_inverts_predict_across_the_range(p, fractions, rising) -> None:
    a, b, c, d, g = p
    truth = np.array([a, b, c, d, g] if rising else [d, b, c, a, g])
    y = FivePL().mean(CONC, truth) * (1 + 0.002 * np.sin(np.arange(CONC.size)))
    curve = fit_standard_curve(CONC, y, model="5PL", weights="1/y2")
    assert curve.ok
    lo, hi = np.log(CONC.min()), np.log(CONC.max())
    x = np.exp(lo + np.asarray(fractions) * (hi - lo))
    back = curve.back_calculate(curve.predict(x))
    assert np.allclose(back, x, rtol=1e-6)


@settings(max_examples=25, deadline=None)
@given(p=params_5pl, seed=st.integers(0, 2**32 - 1), model=st.sampled_from(["4PL", "5PL"]))
@example(p=(10.7890625, 0.6, 1186.75, 23860.8125, 0.5), seed=322, model="5PL")  # degenerate 5PL limit
def test_fit_does_not_depend_on_point_order(p, seed, model) -> None:
    rng = np.random.default_rng(seed)
    y = FivePL().mean(CONC, np.array(p)) * np.exp(rng.normal(0, 0.03, CONC.size))
    order = rng.permutation(CONC.size)
    one = fit_standard_curve(CONC, y, model=model)
    two = fit_standard_curve(CONC[order], y[order], model=model)
    assert one.status == two.status
    if one.ok:
        mid = np.geomspace(CONC.min(), CONC.max(), 7)
        assert np.allclose(one.predict(mid), two.predict(mid), rtol=1e-5)
        assert one.rse == pytest.approx(two.rse, rel=1e-6)


PLATE_MAP = pd.read_csv(PLATES / "FIX-P01_map.csv", dtype=str, keep_default_na=False)
READINGS = pd.read_csv(PLATES / "FIX-P01_long.csv").assign(saturated=False)
ASSAY = load_assay(REPO / "examples" / "assays" / "long_covid_panel.yaml")
BASE = process_plate(PlateMap.from_frame(PLATE_MAP), Readings(READINGS, "r", "long"), ASSAY).concentrations()


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_permuting_wells_does_not_change_results(seed) -> None:
    rng = np.random.default_rng(seed)
    pmap = PlateMap.from_frame(PLATE_MAP.iloc[rng.permutation(len(PLATE_MAP))].reset_index(drop=True))
    reads = Readings(READINGS.iloc[rng.permutation(len(READINGS))].reset_index(drop=True), "r", "long")
    got = process_plate(pmap, reads, ASSAY).concentrations()
    key = ["participant", "visit", "analyte"]
    a = BASE.sort_values(key).reset_index(drop=True)
    b = got.sort_values(key).reset_index(drop=True)
    assert (a[key] == b[key]).all().all() and (a["flag"] == b["flag"]).all()
    assert np.allclose(a["concentration"], b["concentration"], rtol=1e-6, equal_nan=True)
