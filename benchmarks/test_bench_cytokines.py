"""Standard-curve fitting throughput: 40 analytes x 10 plates, against a plain scipy curve_fit loop.

Run with `make bench`. Figures are recorded in benchmarks/README.md (medians and ratios).

The yardstick is the loop a lab analyst writes by hand: ``scipy.optimize.curve_fit`` of the 5PL on
log-concentration with ``sigma = y`` (1/y^2 weights) and default tolerances; it returns
parameters and the covariance and nothing else. ``fit_standard_curve`` adds self-starting values,
pre/post checks (too few standards, flat, non-monotone, F test against a flat line), tight
tolerances (1e-12, to match R to the printed digits), R^2 and per-parameter standard errors.
The end-to-end benchmark processes one 8-analyte plate from file (read, fit, limits, flags).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import OptimizeWarning, curve_fit

from immunorehab.cytokines import fit_standard_curve
from immunorehab.cytokines.assay import load_assay
from immunorehab.cytokines.io_plate import read_plate_map, read_readings
from immunorehab.cytokines.models import FivePL
from immunorehab.cytokines.process import process_plate

ROOT = Path(__file__).resolve().parents[1]
PLATES = ROOT / "tests" / "data" / "cytokines" / "plates"
CONC = np.repeat(10000 / 4.0 ** np.arange(8), 2)


def _curves(n_plates: int = 10, n_analytes: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(42)
    out = []
    for _ in range(n_plates * n_analytes):
        p = np.array(
            [
                rng.uniform(15, 60),
                rng.uniform(0.8, 1.4),
                rng.uniform(500, 3000),
                rng.uniform(15000, 30000),
                rng.uniform(0.7, 1.3),
            ]
        )
        out.append(FivePL().mean(CONC, p) * np.exp(rng.normal(0, 0.05, CONC.size)))
    return out


CURVES = _curves()


def _five_pl(logx: np.ndarray, a: float, b: float, logc: float, d: float, g: float) -> np.ndarray:
    return d + (a - d) / (1.0 + np.exp(b * (logx - logc))) ** g


def _curve_fit_loop() -> int:
    ok = 0
    logx = np.log(CONC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        for y in CURVES:
            p0 = [y.min(), 1.0, float(np.median(logx)), y.max(), 1.0]
            try:
                params, cov = curve_fit(_five_pl, logx, y, p0=p0, sigma=y, maxfev=5000)
            except RuntimeError:
                continue
            ok += bool(np.all(np.isfinite(cov)))
    return ok


def _immunorehab_loop() -> int:
    return sum(fit_standard_curve(CONC, y, model="5PL", weights="1/y2").ok for y in CURVES)


@pytest.mark.benchmark(group="fit-400-curves")
def test_fit_400_curves_immunorehab(benchmark) -> None:
    ok = benchmark.pedantic(_immunorehab_loop, rounds=3, iterations=1)
    assert ok == 400


@pytest.mark.benchmark(group="fit-400-curves")
def test_fit_400_curves_scipy_curve_fit_yardstick(benchmark) -> None:
    ok = benchmark.pedantic(_curve_fit_loop, rounds=3, iterations=1)
    assert ok >= 390


@pytest.mark.benchmark(group="plate-end-to-end")
def test_process_one_plate_from_xponent_file(benchmark) -> None:
    assay = load_assay(ROOT / "examples" / "assays" / "long_covid_panel.yaml")

    def run() -> int:
        result = process_plate(
            read_plate_map(PLATES / "FIX-P01_map.csv"), read_readings(PLATES / "FIX-P01_xponent.csv"), assay
        )
        return len(result.results)

    assert benchmark.pedantic(run, rounds=5, iterations=1) == 32 * 8
