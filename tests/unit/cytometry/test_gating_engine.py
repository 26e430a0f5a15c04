"""Gate declarations, strategy checks and the evaluation engine (boundaries, subsets, counts table)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from immunorehab.cytometry import (
    BooleanGate,
    Dimension,
    Divider,
    EllipsoidGate,
    GatingStrategy,
    LogicleTransform,
    PolygonGate,
    Quadrant,
    QuadrantGate,
    RectangleGate,
    Sample,
    Spillover,
)
from immunorehab.errors import GateError

X, Y = Dimension("X"), Dimension("Y")


def grid_sample() -> Sample:
    xs, ys = np.meshgrid(np.arange(-2.0, 3.0), np.arange(-2.0, 3.0))
    return Sample.from_array(np.column_stack([xs.ravel(), ys.ravel()]), ["X", "Y"], name="grid")


def quad(parent: str | None = None) -> QuadrantGate:
    return QuadrantGate(
        "q",
        parent,
        (X, Y),
        (Divider("dx", (0.0,)), Divider("dy", (0.0,))),
        (
            Quadrant("pp", (("dx", 1.0), ("dy", 1.0))),
            Quadrant("pn", (("dx", 1.0), ("dy", -1.0))),
            Quadrant("np", (("dx", -1.0), ("dy", 1.0))),
            Quadrant("nn", (("dx", -1.0), ("dy", -1.0))),
        ),
    )


def test_rectangle_bounds_are_min_inclusive_max_exclusive_and_open_ended() -> None:
    sample = grid_sample()
    gates = [
        RectangleGate("r", None, (X, Y), (0.0, None), (2.0, 0.0)),  # 0 <= x < 2, y < 0
        RectangleGate("range", None, (X,), (None,), (0.0,)),
    ]
    res = GatingStrategy(gates).gate(sample)
    x, y = sample.raw[:, 0], sample.raw[:, 1]
    np.testing.assert_array_equal(res.membership("r"), (x >= 0) & (x < 2) & (y < 0))
    np.testing.assert_array_equal(res.membership("range"), x < 0)


def test_quadrants_partition_the_parent_with_half_open_intervals() -> None:
    sample = grid_sample()
    parent = RectangleGate("p", None, (X,), (-1.0,), (None,))
    res = GatingStrategy([parent, quad("p")]).gate(sample)
    x, y = sample.raw[:, 0], sample.raw[:, 1]
    np.testing.assert_array_equal(res.membership("pp"), (x >= 0) & (y >= 0))
    np.testing.assert_array_equal(res.membership("nn"), (x >= -1) & (x < 0) & (y < 0))
    total = sum(res.count(q) for q in ("pp", "pn", "np", "nn"))
    assert total == res.count("p")
    assert res.parent_of("pp") == "p"


def test_polygon_edges_are_half_open_and_self_intersecting_uses_even_odd() -> None:
    """flowutils' crossing test (the compliance suite's Polygon truth): like rectangles, the low edges of
    an axis-aligned square are inside and the high edges outside; NaN coordinates are outside."""
    points = [[0.5, 0.5], [0.0, 0.5], [0.5, 0.0], [1.0, 0.5], [0.5, 1.0], [1.5, 0.5], [np.nan, 0.5]]
    sample = Sample.from_array(points, ["X", "Y"])
    square = PolygonGate("sq", None, (X, Y), ((0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)))
    res = GatingStrategy([square]).gate(sample)
    assert res.membership("sq").tolist() == [True, True, True, False, False, False, False]
    # a bow-tie: its crossing point's neighbourhood alternates; a point in each lobe is inside
    bow = PolygonGate("bow", None, (X, Y), ((0.0, 0.0), (2.0, 1.0), (2.0, 0.0), (0.0, 1.0)))
    lobes = Sample.from_array([[0.2, 0.5], [1.8, 0.5], [1.0, 0.9]], ["X", "Y"])
    assert GatingStrategy([bow]).gate(lobes).membership("bow").tolist() == [True, True, False]


def test_ellipse_is_the_mahalanobis_ball() -> None:
    gate = EllipsoidGate("e", None, (X, Y), (0.0, 0.0), ((4.0, 0.0), (0.0, 1.0)), 1.0)
    sample = Sample.from_array([[2.0, 0.0], [0.0, 1.0], [2.0, 0.5], [0.0, 0.0]], ["X", "Y"])
    assert GatingStrategy([gate]).gate(sample).membership("e").tolist() == [True, True, False, True]


def test_boolean_gates_with_complements_and_parent() -> None:
    sample = grid_sample()
    a = RectangleGate("a", None, (X,), (0.0,), (None,))
    b = RectangleGate("b", None, (Y,), (0.0,), (None,))
    gates = [
        a,
        b,
        BooleanGate("and", None, "and", (("a", False), ("b", True))),
        BooleanGate("or", None, "or", (("a", False), ("b", False))),
        BooleanGate("not", "b", "not", (("a", False),)),
    ]
    res = GatingStrategy(gates).gate(sample)
    ma, mb = res.membership("a"), res.membership("b")
    np.testing.assert_array_equal(res.membership("and"), ma & ~mb)
    np.testing.assert_array_equal(res.membership("or"), ma | mb)
    np.testing.assert_array_equal(res.membership("not"), ~ma & mb)


def test_counts_table() -> None:
    sample = grid_sample()
    res = GatingStrategy([RectangleGate("p", None, (X,), (0.0,), (None,)), quad("p")]).gate(sample)
    table = res.counts()
    assert list(table.columns[:7]) == [
        "sample",
        "gate",
        "parent",
        "count",
        "parent_count",
        "pct_parent",
        "pct_total",
    ]
    assert table["gate"].tolist() == ["p", "pp", "pn", "np", "nn"]
    row = table.set_index("gate").loc["pp"]
    assert row["count"] == 9 and row["parent"] == "p" and row["parent_count"] == 15
    assert row["pct_parent"] == pytest.approx(60.0) and row["pct_total"] == pytest.approx(36.0)
    assert table.set_index("gate").loc["p", "parent"] is None
    assert table.set_index("gate").loc["nn", "count"] == 0
    with pytest.raises(ValueError):
        res.membership("p")[0] = True  # read-only
    with pytest.raises(GateError, match="populations are p, pp"):
        res.membership("nope")


def test_strategy_checks_every_reference() -> None:
    with pytest.raises(GateError) as info:
        GatingStrategy(
            [
                RectangleGate("a", "ghost", (Dimension("X", "M1", "T1"),), (0.0,), (None,)),
                RectangleGate("a", None, (X,), (0.0,), (None,)),
                BooleanGate("b", None, "and", (("a", False), ("zz", False))),
            ]
        )
    text = str(info.value)
    for fragment in ("parent 'ghost'", "'M1'", "transform 'T1'", "operand 'zz'", "used more than once"):
        assert fragment in text
    with pytest.raises(GateError, match="reference cycle"):
        GatingStrategy(
            [
                RectangleGate("a", "b", (X,), (0.0,), (None,)),
                RectangleGate("b", "a", (X,), (0.0,), (None,)),
            ]
        )
    with pytest.raises(GateError, match="use one of its quadrants"):
        GatingStrategy([quad(), RectangleGate("c", "q", (X,), (0.0,), (None,))])


def test_gate_declarations_validate() -> None:
    with pytest.raises(GateError, match="minimum 2.0 > maximum 1.0"):
        RectangleGate("r", None, (X,), (2.0,), (1.0,))
    with pytest.raises(GateError, match="neither minimum nor maximum"):
        RectangleGate("r", None, (X,), (None,), (None,))
    with pytest.raises(GateError, match="at least 3 vertices"):
        PolygonGate("p", None, (X, Y), ((0.0, 0.0), (1.0, 1.0)))
    with pytest.raises(GateError, match="singular"):
        EllipsoidGate("e", None, (X, Y), (0.0, 0.0), ((1.0, 1.0), (1.0, 1.0)), 1.0)
    with pytest.raises(GateError, match="exactly one operand"):
        BooleanGate("b", None, "not", (("a", False), ("c", False)))
    with pytest.raises(GateError, match="increasing order"):
        Divider("d", (2.0, 1.0))
    with pytest.raises(GateError, match="unknown dividers"):
        QuadrantGate("q", None, (X,), (Divider("d", (0.0,)),), (Quadrant("a", (("zz", 1.0),)),))
    with pytest.raises(GateError, match="own parent"):
        RectangleGate("r", "r", (X,), (0.0,), (None,))


def test_accessors_replace_gate_and_progress() -> None:
    strategy = GatingStrategy([RectangleGate("p", None, (X,), (0.0,), (None,)), quad("p")])
    assert strategy.gate_ids == ("p", "pp", "pn", "np", "nn")
    assert strategy.get_gate("pn").id == "q" and strategy.parent_of("pn") == "p"
    assert strategy.children_of("p") == ("pp", "pn", "np", "nn") and strategy.children_of(None) == ("p",)
    moved = strategy.replace_gate(RectangleGate("p", None, (X,), (1.0,), (None,)))
    assert moved.get_gate("p").minimums == (1.0,) and strategy.get_gate("p").minimums == (0.0,)
    assert moved.sha256 != strategy.sha256
    with pytest.raises(GateError, match="no gate with that id"):
        strategy.replace_gate(RectangleGate("zz", None, (X,), (1.0,), (None,)))
    calls: list[tuple[str, int, int]] = []
    strategy.gate(grid_sample(), on_progress=lambda task, done, total: calls.append((task, done, total)))
    assert calls[-1] == ("gating grid", 2, 2)


def large_sample(n: int = 300_000) -> tuple[Sample, Spillover]:
    rng = np.random.default_rng(3)
    true = np.column_stack([rng.normal(5e4, 2e4, n), np.abs(rng.lognormal(7, 2, (n, 3)))])
    spill = Spillover(("A", "B", "C"), np.array([[1, 0.1, 0.02], [0.05, 1, 0.1], [0.0, 0.2, 1.0]]))
    events = np.column_stack([true[:, 0], true[:, 1:] @ spill.matrix])
    return Sample.from_array(events, ["FSC", "A", "B", "C"], spillover=spill, name="big"), spill


def test_subset_evaluation_equals_full_evaluation() -> None:
    """Children evaluated on their parent's events only (and transforms computed for those events only) give
    exactly the membership of a naive full-matrix evaluation."""
    sample, spill = large_sample()
    xf = LogicleTransform()
    a, b, c = (Dimension(ch, "FCS", "L") for ch in ("A", "B", "C"))
    gates = [
        RectangleGate("small", None, (Dimension("FSC"),), (6.5e4,), (None,)),  # ~23% of events
        RectangleGate("bpos", "small", (b,), (0.45,), (None,)),
        PolygonGate("poly", "small", (a, c), ((0.2, 0.2), (0.8, 0.25), (0.7, 0.9), (0.3, 0.7))),
        RectangleGate("big", None, (Dimension("FSC"),), (2e4,), (None,)),  # ~93%
        RectangleGate("bpos2", "big", (b,), (0.45,), (None,)),
    ]
    res = GatingStrategy(gates, {"L": xf}).gate(sample)
    comp = sample.raw[:, 1:] @ np.linalg.inv(spill.matrix)
    scaled = xf.apply(comp, fast=True)
    small = sample.raw[:, 0] >= 6.5e4
    np.testing.assert_array_equal(res.membership("small"), small)
    np.testing.assert_array_equal(res.membership("bpos"), small & (scaled[:, 1] >= 0.45))
    big = sample.raw[:, 0] >= 2e4
    np.testing.assert_array_equal(res.membership("bpos2"), big & (scaled[:, 1] >= 0.45))
    from flowutils import gating as fu_gating

    poly = fu_gating.points_in_polygon(
        np.array(gates[2].vertices), np.column_stack([scaled[:, 0], scaled[:, 2]])
    ).astype(bool)
    np.testing.assert_array_equal(res.membership("poly"), small & poly)


def test_fast_and_exact_paths_agree_on_gated_counts() -> None:
    """300,000 events use the table-driven logicle; values stay within 1e-6 of flowutils' exact ones."""
    sample, spill = large_sample()
    gate = RectangleGate("bpos", None, (Dimension("B", "FCS", "L"),), (0.45,), (None,))
    strategy = GatingStrategy([gate], {"L": LogicleTransform()})
    values = strategy.dimension_values(sample, gate.dimensions)[:, 0]
    compensated_b = np.linalg.solve(spill.matrix.T, sample.raw[:, 1:].T).T[:, 1]  # flowutils' algebra
    exact = LogicleTransform().apply(compensated_b, fast=False)
    assert np.max(np.abs(values - exact) / np.abs(exact)) < 1e-6
    assert strategy.gate(sample).count("bpos") == int(np.count_nonzero(exact >= 0.45))


def test_dimension_values_are_compensated_then_transformed() -> None:
    sample, spill = large_sample(1000)
    strategy = GatingStrategy([], {"L": LogicleTransform()})
    dims = (Dimension("A", "FCS"), Dimension("B", "FCS", "L"), Dimension("FSC"))
    values = strategy.dimension_values(sample, dims)
    comp = sample.raw[:, 1:] @ np.linalg.inv(spill.matrix)
    np.testing.assert_allclose(values[:, 0], comp[:, 0], rtol=1e-12)
    np.testing.assert_allclose(values[:, 1], LogicleTransform().apply(comp[:, 1]), rtol=1e-12)
    np.testing.assert_array_equal(values[:, 2], sample.raw[:, 0])


def test_ratio_dimension(tmp_path: object) -> None:
    from immunorehab.cytometry import RatioTransform

    sample = Sample.from_array([[4.0, 1.0], [1.0, 4.0]], ["A", "B"])
    gate = RectangleGate("r", None, (Dimension("ab", kind="ratio"),), (2.0,), (None,))
    res = GatingStrategy([gate], {"ab": RatioTransform("A", "B")}).gate(sample)
    assert res.membership("r").tolist() == [True, False]


def test_samples_strategies_and_results_pickle_for_worker_processes() -> None:
    import pickle

    sample, _ = large_sample(500)
    gate = RectangleGate("bpos", None, (Dimension("B", "FCS", "L"),), (0.45,), (None,))
    strategy = GatingStrategy([gate], {"L": LogicleTransform()}, source="x.xml")
    results = strategy.gate(sample)
    sample2, strategy2, results2 = pickle.loads(pickle.dumps((sample, strategy, results)))
    np.testing.assert_array_equal(sample2.raw, sample.raw)
    assert sample2.sha256 == sample.sha256 and sample2.spillover == sample.spillover
    assert strategy2.sha256 == strategy.sha256 and strategy2.source == "x.xml"
    assert results2.counts().equals(results.counts())
    np.testing.assert_array_equal(strategy2.gate(sample2).membership("bpos"), results.membership("bpos"))


def test_event_values_are_shared_across_strategies_of_one_sample() -> None:
    """Auto-placement gates growing partial strategies: shared values compute each column once."""
    from unittest import mock

    from immunorehab.cytometry import EventValues

    sample, _ = large_sample(2000)
    xf = LogicleTransform()
    first = GatingStrategy(
        [RectangleGate("b", None, (Dimension("B", "FCS", "L1"),), (0.45,), (None,))], {"L1": xf}
    )
    second = GatingStrategy(  # other ids, same transform: still shared
        [
            RectangleGate("b", None, (Dimension("B", "FCS", "L2"),), (0.45,), (None,)),
            RectangleGate("c", "b", (Dimension("C", "FCS", "L2"),), (0.3,), (None,)),
        ],
        {"L2": LogicleTransform()},
    )
    values = EventValues(first, sample)
    with mock.patch.object(
        LogicleTransform, "apply", autospec=True, side_effect=LogicleTransform.apply
    ) as spy:
        r1 = first.gate(sample, values=values)
        r2 = second.gate(sample, values=values)
    assert spy.call_count == 2  # B once (shared), C once
    assert r1.count("b") == r2.count("b")
    fresh = second.gate(sample)
    np.testing.assert_array_equal(r2.membership("c"), fresh.membership("c"))
    other, _ = large_sample(10)
    with pytest.raises(GateError, match="values were computed for sample"):
        first.gate(other, values=values)


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=1, max_value=3000))
def test_permuting_events_permutes_membership(seed: int, n: int) -> None:
    """Gating is per event: a permutation of the events permutes every population's membership."""
    rng = np.random.default_rng(seed)
    spill = Spillover(("A", "B"), np.array([[1.0, 0.15], [0.05, 1.0]]))
    events = np.column_stack([rng.normal(5e4, 3e4, n), rng.lognormal(6, 2, (n, 2))])
    sample = Sample.from_array(events, ["FSC", "A", "B"], spillover=spill)
    order = rng.permutation(n)
    shuffled = Sample.from_array(events[order], ["FSC", "A", "B"], spillover=spill)
    a, b = Dimension("A", "FCS", "L"), Dimension("B", "FCS", "L")
    strategy = GatingStrategy(
        [
            RectangleGate("fsc", None, (Dimension("FSC"),), (2e4,), (None,)),
            PolygonGate("poly", "fsc", (a, b), ((0.1, 0.1), (0.9, 0.2), (0.8, 0.9), (0.2, 0.6))),
            QuadrantGate(
                "q",
                "fsc",
                (a, b),
                (Divider("da", (0.4,)), Divider("db", (0.5,))),
                (Quadrant("pp", (("da", 1.0), ("db", 1.0))), Quadrant("nn", (("da", 0.0), ("db", 0.0)))),
            ),
            BooleanGate("either", "fsc", "or", (("pp", False), ("poly", True))),
        ],
        {"L": LogicleTransform()},
    )
    original, permuted = strategy.gate(sample), strategy.gate(shuffled)
    for gid in strategy.gate_ids:
        np.testing.assert_array_equal(permuted.membership(gid), original.membership(gid)[order])
