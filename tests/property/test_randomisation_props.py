"""Property tests (hypothesis) for immunorehab.study.randomisation."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from immunorehab.study.randomisation import (
    ArmSpec,
    block_sequence,
    imbalance_summary,
    minimisation_arm,
    permuted_block_arm,
)

FACTORS = {"site": ("LEI", "GLA", "BRI"), "sex": ("female", "male"), "pem": ("yes", "no")}

seeds = st.integers(min_value=-(2**70), max_value=2**70)
ratio_lists = st.lists(st.integers(min_value=1, max_value=3), min_size=1, max_size=4)
multiple_lists = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=4)
strata = st.text(max_size=12)


def arms_from(ratios: list[int]) -> list[ArmSpec]:
    return [ArmSpec(f"arm{i}", r) for i, r in enumerate(ratios)]


@settings(max_examples=100, deadline=None)
@given(seed=seeds, stratum=strata, ratios=ratio_lists, multiples=multiple_lists, n=st.integers(0, 80))
def test_each_block_holds_each_arm_m_times_ratio(
    seed: int, stratum: str, ratios: list[int], multiples: list[int], n: int
) -> None:
    arms = arms_from(ratios)
    total = sum(ratios)
    blocks = block_sequence(seed=seed, stratum=stratum, arms=arms, block_multiples=multiples, n=n)
    sizes = [b.size for b in blocks]
    assert sum(sizes) >= n and sum(sizes[:-1]) < max(n, 1)
    for block in blocks:
        m, rest = divmod(block.size, total)
        assert rest == 0 and m in multiples
        assert Counter(block.arms) == {a.id: m * a.ratio for a in arms}


@settings(max_examples=60, deadline=None)
@given(
    seed=seeds,
    stratum=strata,
    ratios=ratio_lists,
    multiples=multiple_lists,
    n_short=st.integers(0, 40),
    extra=st.integers(0, 60),
)
def test_prefix_property_and_positions_agree(
    seed: int, stratum: str, ratios: list[int], multiples: list[int], n_short: int, extra: int
) -> None:
    arms = arms_from(ratios)
    short = block_sequence(seed=seed, stratum=stratum, arms=arms, block_multiples=multiples, n=n_short)
    long = block_sequence(seed=seed, stratum=stratum, arms=arms, block_multiples=multiples, n=n_short + extra)
    assert long[: len(short)] == short
    flat = [arm for block in long for arm in block.arms]
    for position in range(0, n_short + extra, 7):
        arm = permuted_block_arm(
            seed=seed, stratum=stratum, position=position, arms=arms, block_multiples=multiples
        )
        assert arm == flat[position]


@st.composite
def minimisation_inputs(draw: st.DrawFn) -> dict[str, Any]:
    ratios = draw(ratio_lists)
    arms = arms_from(ratios)
    factors = draw(st.lists(st.sampled_from(sorted(FACTORS)), unique=True, max_size=3))
    history_size = draw(st.integers(0, 30))
    history = [
        (
            {f: draw(st.sampled_from(FACTORS[f])) for f in FACTORS},
            draw(st.sampled_from([a.id for a in arms])),
        )
        for _ in range(history_size)
    ]
    return {
        "seed": draw(seeds),
        "sequence": history_size,
        "arms": arms,
        "levels": {f: draw(st.sampled_from(FACTORS[f])) for f in factors},
        "history": history,
        "weights": {f: draw(st.floats(0.0, 5.0)) for f in factors if draw(st.booleans())},
        "probability": draw(st.sampled_from([0.51, 0.75, 0.8, 0.9, 1.0])),
        "imbalance": draw(st.sampled_from(["range", "variance"])),
    }


@settings(max_examples=120, deadline=None)
@given(inputs=minimisation_inputs())
def test_decision_is_well_formed_and_deterministic(inputs: dict[str, Any]) -> None:
    decision = minimisation_arm(**inputs)
    arm_ids = [a.id for a in inputs["arms"]]
    assert decision.arm in arm_ids
    assert list(decision.scores) == arm_ids and list(decision.probabilities) == arm_ids
    assert all(score >= 0 for score in decision.scores.values())
    best = min(decision.scores.values())
    assert decision.minimising_arms and all(
        abs(decision.scores[a] - best) <= 1e-9 * max(1.0, best) for a in decision.minimising_arms
    )
    assert decision.all_tied == (len(decision.minimising_arms) == len(arm_ids))
    assert abs(sum(decision.probabilities.values()) - 1.0) < 1e-12
    assert decision.probabilities[decision.arm] > 0
    assert 0.0 <= decision.random_draw < 1.0
    if inputs["probability"] == 1.0:
        assert decision.arm in decision.minimising_arms
    positive = [a for a, p in decision.probabilities.items() if p > 0]
    assert decision.deterministic == (len(positive) == 1)
    # The draw falls in the chosen arm's sub-interval of [0, 1) (arms laid out in order).
    lower = sum(decision.probabilities[a] for a in positive[: positive.index(decision.arm)])
    assert lower - 1e-12 <= decision.random_draw
    if decision.arm != positive[-1]:
        assert decision.random_draw < lower + decision.probabilities[decision.arm]
    assert minimisation_arm(**inputs) == decision


@settings(max_examples=100, deadline=None)
@given(inputs=minimisation_inputs(), shuffle_seed=st.integers(0, 2**32))
def test_history_order_does_not_change_scores(inputs: dict[str, Any], shuffle_seed: int) -> None:
    history = list(inputs["history"])
    random.Random(shuffle_seed).shuffle(history)
    original = minimisation_arm(**inputs)
    shuffled = minimisation_arm(**{**inputs, "history": history})
    assert shuffled == original  # same sequence, same counts, same draw


@settings(max_examples=40, deadline=None)
@given(seed=seeds, ratios=st.lists(st.integers(1, 2), min_size=2, max_size=3))
def test_deterministic_minimisation_single_factor_keeps_levels_within_one_ratio_unit(
    seed: int, ratios: list[int]
) -> None:
    arms = arms_from(ratios)
    levels_cycle = ["LEI", "GLA", "LEI", "BRI", "LEI", "GLA"]
    history: list[tuple[Mapping[str, str], str]] = []
    for i in range(60):
        levels = {"site": levels_cycle[i % len(levels_cycle)]}
        decision = minimisation_arm(
            seed=seed, sequence=i, arms=arms, levels=levels, history=history, weights={}, probability=1.0,
            imbalance="range",
        )  # fmt: skip
        history.append((levels, decision.arm))
        assert max(b.imbalance for b in imbalance_summary(history, arms)) <= 1.0 + 1e-12
