"""Properties of valley finding: order of events does not matter; shifting the data shifts the valley."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from immunorehab.cytometry.density import find_valley


def _sample(seed: int, gap: float, weight: float, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    k = int(n * weight)
    return np.concatenate([rng.normal(0.2, 0.05, n - k), rng.normal(0.2 + gap, 0.05, k)])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    gap=st.floats(0.25, 0.6),
    weight=st.floats(0.05, 0.95),
    n=st.integers(500, 5000),
)
def test_permuting_events_leaves_the_valley_unchanged(seed: int, gap: float, weight: float, n: int) -> None:
    x = _sample(seed, gap, weight, n)
    shuffled = np.random.default_rng(seed + 1).permutation(x)
    a, b = find_valley(x, near=0.2 + gap / 2), find_valley(shuffled, near=0.2 + gap / 2)
    assert (a.threshold, a.clear, a.depth) == (b.threshold, b.clear, b.depth)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    gap=st.floats(0.3, 0.6),
    weight=st.floats(0.1, 0.9),
    shift=st.floats(-0.3, 0.3),
)
def test_shifting_the_data_shifts_the_valley(seed: int, gap: float, weight: float, shift: float) -> None:
    x = _sample(seed, gap, weight, 4000)
    near = 0.2 + gap / 2
    a, b = find_valley(x, near=near), find_valley(x + shift, near=near + shift)
    assert a.clear and b.clear
    bin_width = (x.max() - x.min()) * 1.2 / 256
    assert abs((b.threshold - shift) - a.threshold) <= 3 * bin_width


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(0, 3000), near=st.floats(-1, 2))
def test_threshold_is_the_template_or_inside_the_data(seed: int, n: int, near: float) -> None:
    x = np.random.default_rng(seed).normal(0.3, 0.1, n)
    valley = find_valley(x, near=near)
    if valley.clear:
        assert x.min() <= valley.threshold <= x.max()
        assert abs(valley.threshold - near) <= 0.25
    else:
        assert valley.threshold == near
