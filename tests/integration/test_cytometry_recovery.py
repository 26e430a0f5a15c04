"""Recovery oracle: the tcell-memory template with per-sample placement recovers simulated ground truth.

The truth is the simulator's per-event labels (see immunorehab.simulate.fcs). Tolerances:

* per gate, |gated % of parent - true % of parent| <= 1.0 percentage point. The truth is counted on the
  same events, so sampling error cancels; what remains is misclassification where negative and positive
  populations overlap (lognormal tails plus compensation spreading error), which no threshold avoids.
  Over 12 samples (4 fraction settings x 3 seeds, 50,000 events) the worst difference seen was 0.56
  points (lymphocytes) and <= 0.4 for every T/NK subset, so 1.0 leaves margin without hiding a
  misplaced gate (a threshold off by 0.05 logicle units moves CCR7/CD45RA subsets by 2-5 points);
* per gate, F1 of gated vs true membership >= 0.97 (worst seen 0.980, CD4 senescent): fractions could
  agree by cancelling errors, membership cannot;
* gated vs the fraction the caller chose: within 4.5 binomial SEs of the parent count plus 1.0 point.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from immunorehab.cytometry.pipeline import GateOptions, analyse_sample
from immunorehab.simulate.fcs import PanelFractions, simulate_panel_sample

OPTIONS = GateOptions.create(mfi_markers=())
SUBSETS = [
    "lymphocytes",
    "live",
    "t_cells",
    "cd4",
    "cd8",
    *(f"{s}_{k}" for s in ("cd4", "cd8") for k in ("naive", "cm", "em", "temra", "activated", "senescent")),
    "nk",
    "nk_cd56bright",
    "nk_cd56dim",
]
SETTINGS = {
    "default": PanelFractions(),
    "older_cmv_positive": PanelFractions().with_values(
        cd8_naive=0.1,
        cd8_cm=0.05,
        cd8_em=0.35,
        cd8_temra=0.5,
        cd8_senescent=0.45,
        cd4_naive=0.25,
        cd4_cm=0.35,
        cd4_em=0.3,
        cd4_temra=0.1,
    ),
    "activated": PanelFractions().with_values(
        cd4_activated=0.12, cd8_activated=0.2, nk=0.16, nk_cd56bright=0.2
    ),
    "pbmc": PanelFractions().with_values(lymphocytes=0.75, monocytes=0.2, dead=0.12),
}


def _f1(gated: np.ndarray, truth: np.ndarray) -> float:
    return 2 * float((gated & truth).sum()) / max(1.0, float(gated.sum() + truth.sum()))


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("seed", [101, 202])
def test_gated_subsets_recover_the_truth(setting: str, seed: int) -> None:
    sample, truth = simulate_panel_sample(
        50_000, rng=np.random.default_rng(seed), fractions=SETTINGS[setting]
    )
    analysis = analyse_sample(sample, OPTIONS)
    assert not analysis.placement.unclear
    gated = analysis.counts.set_index("gate")
    true = truth.gates.set_index("gate")
    for gate in SUBSETS:
        diff = gated.loc[gate, "pct_parent"] - true.loc[gate, "pct_parent"]
        assert abs(diff) <= 1.0, (
            f"{gate}: gated {gated.loc[gate, 'pct_parent']:.2f} vs truth {true.loc[gate, 'pct_parent']:.2f}"
        )
        assert _f1(analysis.results.membership(gate), truth.membership(gate)) >= 0.97, gate
        if gate not in ("lymphocytes",):
            p = true.loc[gate, "expected_pct_parent"] / 100
            parent = int(gated.loc[gate, "parent_count"])
            allowed = 100 * 4.5 * math.sqrt(p * (1 - p) / parent) + 1.0
            assert abs(gated.loc[gate, "pct_parent"] - 100 * p) <= allowed, gate


def test_placement_rescues_a_dim_staining_where_the_template_fails() -> None:
    """A dim CD3/CD8 reagent lot: the template's fixed CD3 threshold loses a sixth of the T cells;
    per-sample placement finds the shifted valley and recovers the truth."""
    sample, truth = simulate_panel_sample(
        40_000, rng=np.random.default_rng(303), brightness={"CD3": 0.2, "CD8": 0.3}
    )
    true = truth.gates.set_index("gate")["pct_parent"]
    placed = analyse_sample(sample, OPTIONS).counts.set_index("gate")["pct_parent"]
    fixed = analyse_sample(sample, dataclasses.replace(OPTIONS, auto=False)).counts.set_index("gate")[
        "pct_parent"
    ]
    assert abs(fixed["t_cells"] - true["t_cells"]) > 5.0
    for gate in ("t_cells", "cd4", "cd8", "cd8_naive", "cd8_temra", "nk"):
        assert abs(placed[gate] - true[gate]) <= 1.0, gate


def test_an_unresolvable_marker_is_flagged_not_guessed() -> None:
    """CCR7 stained 4x dimmer merges into the negatives: placement keeps the template and flags it."""
    sample, _ = simulate_panel_sample(40_000, rng=np.random.default_rng(404), brightness={"CCR7": 0.25})
    analysis = analyse_sample(sample, OPTIONS)
    kept = {m.rule for m in analysis.placement.unclear}
    assert {"cd4:CCR7", "cd8:CCR7"} <= kept
    assert any(f.code == "no_clear_valley" and "cd4:CCR7" in f.detail for f in analysis.flags)
