"""Density maths of auto-placement (checked against analytic densities) and per-sample gate placement."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import optimize, stats

from immunorehab.cytometry import GatingStrategy, RectangleGate
from immunorehab.cytometry.autogate import AutoGateSettings, place_gates
from immunorehab.cytometry.density import cluster_polygon, find_valley, singlet_band, stable_time_window
from immunorehab.cytometry.template import default_panel, load_template
from immunorehab.errors import TemplateError
from immunorehab.simulate.fcs import PanelFractions, simulate_panel_sample


def _mixture(rng: np.random.Generator, weights: list[float], means: list[float], sds: list[float], n: int):
    parts = rng.multinomial(n, weights)
    return np.concatenate([rng.normal(m, s, k) for m, s, k in zip(means, sds, parts, strict=True)])


@pytest.mark.parametrize(
    ("weights", "means", "sds"),
    [
        ([0.5, 0.5], [0.2, 0.6], [0.06, 0.06]),
        ([0.8, 0.2], [0.2, 0.65], [0.07, 0.05]),
        ([0.35, 0.65], [0.25, 0.55], [0.05, 0.08]),
    ],
)
def test_valley_matches_the_analytic_density_minimum(weights, means, sds) -> None:
    x = _mixture(np.random.default_rng(1), weights, means, sds, 50_000)

    def density(v: float) -> float:
        return float(sum(w * stats.norm.pdf(v, m, s) for w, m, s in zip(weights, means, sds, strict=True)))

    true_min = optimize.minimize_scalar(density, bounds=(means[0], means[1]), method="bounded").x
    valley = find_valley(x, near=0.45)
    assert valley.clear
    assert valley.threshold == pytest.approx(true_min, abs=0.02)
    assert valley.negative_mode == pytest.approx(means[0], abs=0.03)
    assert valley.positive_mode == pytest.approx(means[1], abs=0.03)


def test_small_separated_positive_population_is_found() -> None:
    x = _mixture(np.random.default_rng(2), [0.97, 0.03], [0.2, 0.65], [0.06, 0.05], 5_000)
    valley = find_valley(x, near=0.45)
    assert valley.clear and 0.38 < valley.threshold < 0.52


def test_one_mode_keeps_the_template_position() -> None:
    x = np.random.default_rng(3).normal(0.3, 0.08, 20_000)
    valley = find_valley(x, near=0.45)
    assert not valley.clear
    assert valley.threshold == 0.45
    assert "one mode" in valley.reason


def test_the_valley_closest_to_the_template_wins() -> None:
    """Negative, dim and bright modes (CD56): the template says which split is meant."""
    x = _mixture(np.random.default_rng(4), [0.6, 0.3, 0.1], [0.2, 0.5, 0.8], [0.04, 0.04, 0.04], 30_000)
    assert find_valley(x, near=0.33).threshold == pytest.approx(0.35, abs=0.03)
    assert find_valley(x, near=0.7).threshold == pytest.approx(0.65, abs=0.03)


def test_a_valley_too_far_from_the_template_does_not_count() -> None:
    x = _mixture(np.random.default_rng(5), [0.5, 0.5], [0.2, 0.6], [0.05, 0.05], 10_000)
    assert not find_valley(x, near=0.9, max_shift=0.2).clear


def test_too_few_events() -> None:
    valley = find_valley([0.1, 0.9, 0.2], near=0.5)
    assert not valley.clear and "only 3 events" in valley.reason


@pytest.mark.parametrize("level", [0.01, 0.05])
def test_cluster_contour_holds_the_expected_share_and_excludes_the_neighbour(level: float) -> None:
    """For a 2-D normal cluster, the contour at f x the peak density holds 1 - f of it."""
    rng = np.random.default_rng(6)
    cluster = rng.multivariate_normal([0.2, 0.05], [[0.025**2, 0], [0, 0.012**2]], 40_000)
    neighbour = rng.multivariate_normal([0.36, 0.18], [[0.04**2, 0], [0, 0.03**2]], 8_000)
    points = np.vstack([cluster, neighbour])
    template = [(0.12, 0.01), (0.3, 0.01), (0.3, 0.1), (0.12, 0.1)]
    found = cluster_polygon(points[:, 0], points[:, 1], template=template, levels=(level,))
    assert found.clear and found.vertices is not None
    from flowutils.gating import points_in_polygon

    inside = np.asarray(points_in_polygon(np.array(found.vertices), points), dtype=bool)
    assert inside[:40_000].mean() == pytest.approx(1 - level, abs=0.01)
    assert inside[40_000:].mean() < 0.01


def test_a_merged_neighbour_forces_a_tighter_contour() -> None:
    """Two overlapping clusters share the 1% and 5% contours; the 20% contour isolates the first."""
    rng = np.random.default_rng(7)
    cluster = rng.multivariate_normal([0.2, 0.05], [[0.025**2, 0], [0, 0.012**2]], 20_000)
    neighbour = rng.multivariate_normal([0.28, 0.09], [[0.025**2, 0], [0, 0.012**2]], 12_000)
    points = np.vstack([cluster, neighbour])
    template = [(0.12, 0.01), (0.26, 0.01), (0.26, 0.07), (0.12, 0.07)]
    found = cluster_polygon(points[:, 0], points[:, 1], template=template, levels=(0.01, 0.05, 0.2))
    assert found.clear
    assert found.reason == "density contour at 0.2 x peak"
    merged = cluster_polygon(points[:, 0], points[:, 1], template=template, levels=(0.01,))
    assert not merged.clear and "merges" in merged.reason


def test_cluster_without_events_keeps_the_template() -> None:
    found = cluster_polygon([0.9] * 100, [0.9] * 100, template=[(0.1, 0.1), (0.2, 0.1), (0.2, 0.2)])
    assert not found.clear and found.vertices is None


def test_singlet_band_keeps_singlets_and_drops_doublets() -> None:
    rng = np.random.default_rng(7)
    area = rng.normal(0.21, 0.03, 20_000)
    height = area / 1.22 * (1 + rng.normal(0, 0.025, 20_000))
    d_area = rng.normal(0.42, 0.05, 1_000)
    d_height = d_area / 2.1 * (1 + rng.normal(0, 0.04, 1_000))
    band = singlet_band(np.r_[area, d_area], np.r_[height, d_height], template=(1.0, 1.45))
    ratio_s, ratio_d = area / height, d_area / d_height
    assert band.clear and band.mode == pytest.approx(1.22, abs=0.02)
    assert ((ratio_s >= band.low) & (ratio_s <= band.high)).mean() > 0.995
    assert ((ratio_d >= band.low) & (ratio_d <= band.high)).mean() < 0.01


def test_stable_run_is_not_trimmed_and_a_slow_start_is() -> None:
    rng = np.random.default_rng(8)
    steady = np.sort(rng.uniform(0, 100, 50_000))
    window = stable_time_window(steady)
    assert window.start is None and window.end is None and window.unstable_fraction == 0
    slow = np.sort(np.r_[rng.uniform(0, 10, 500), rng.uniform(10, 100, 45_000)])
    window = stable_time_window(slow)
    assert window.start == pytest.approx(10, abs=1.0)
    assert window.end is None


# -- placement on simulated samples ------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> GatingStrategy:
    return load_template("tcell-memory")


def test_every_threshold_moves_to_the_sample(template: GatingStrategy) -> None:
    sample, _ = simulate_panel_sample(30_000, rng=np.random.default_rng(9))
    placement = place_gates(template, sample, panel=default_panel("tcell-memory"))
    rules = {m.rule: m for m in placement.moves}
    assert {"time", "cluster", "singlets", "live:CD3", "cd4:CCR7", "cd8:CD45RA", "nk:CD16"} <= set(rules)
    assert not placement.unclear
    assert rules["time"].status == "unchanged"
    ccr7 = rules["cd4:CCR7"]
    assert ccr7.status == "moved" and ccr7.template_value == 0.42 and ccr7.shift is not None
    for gate_id in ccr7.gates:  # shared threshold: all four memory gates carry the placed value
        gate = placement.strategy.get_gate(gate_id)
        assert isinstance(gate, RectangleGate)
        assert ccr7.placed_value in (gate.minimums[0], gate.maximums[0])


def test_a_missing_population_keeps_the_template_and_says_so(template: GatingStrategy) -> None:
    sample, _ = simulate_panel_sample(
        30_000, rng=np.random.default_rng(10), fractions=PanelFractions(nk_cd56bright=0.0)
    )
    placement = place_gates(template, sample, panel=default_panel("tcell-memory"))
    kept = {m.rule: m for m in placement.unclear}
    assert "nk:CD56" in kept
    assert kept["nk:CD56"].placed_value == kept["nk:CD56"].template_value == 0.68
    assert "no clear valley" in kept["nk:CD56"].detail


def test_settings_change_the_hash() -> None:
    assert AutoGateSettings().sha256 != AutoGateSettings(max_depth=0.4).sha256


def test_a_strategy_without_the_template_gates_is_refused(template: GatingStrategy) -> None:
    custom = GatingStrategy([dataclasses.replace(template.get_gate("qc"))], template.transforms)
    sample, _ = simulate_panel_sample(1_000, rng=np.random.default_rng(1))
    with pytest.raises(
        TemplateError, match="(?s)does not fit automatic placement.*gates live, t_cells, .*lymphocytes"
    ):
        place_gates(custom, sample, panel=default_panel("tcell-memory"))
