"""A StudyAnalysis-shaped stand-in and small frames for the report's unit tests.

The shape follows the contract of ``immunorehab.analysis.study.StudyAnalysis``:
``results`` (outcome, label, source, family, role, population, model, scale, contrast,
estimate, se, ci_low, ci_high, p_value, p_adjusted, adjust_method, n, n_missing) and
``descriptives`` (outcome, visit, arm, n, mean, sd, median, q1, q3, geo_mean).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

RESULT_COLUMNS = [
    "outcome",
    "label",
    "source",
    "family",
    "role",
    "population",
    "model",
    "scale",
    "contrast",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "adjust_method",
    "n",
    "n_missing",
]
DESCRIPTIVE_COLUMNS = ["outcome", "visit", "arm", "n", "mean", "sd", "median", "q1", "q3", "geo_mean"]


@dataclass(frozen=True)
class FakeAnalysis:
    results: pd.DataFrame
    descriptives: pd.DataFrame
    methods: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    blinded: bool = False
    by_visit: pd.DataFrame = field(default_factory=pd.DataFrame)
    cohort: dict[str, pd.DataFrame] = field(default_factory=dict)
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)


OUTCOMES = [
    ("iswt_week8", "ISWT distance at 8 weeks (m)", "visit", "primary", "primary", "difference"),
    ("cd8_naive", "Naive CD8+ T cells (% of CD8+)", "cytometry", "t_cell_subsets", "exploratory", "ratio"),
    ("cd4_naive", "Naive CD4+ T cells (% of CD4+)", "cytometry", "t_cell_subsets", "exploratory", "ratio"),
    ("il6_week8", "IL-6 at 8 weeks (pg/mL)", "cytokine", "cytokines", "exploratory", "ratio"),
]


def fake_analysis(arms: list[str], reference: str, *, visits: list[str], seed: int = 1) -> FakeAnalysis:
    rng = np.random.default_rng(seed)
    rows = []
    for outcome, label, source, family, role, scale in OUTCOMES:
        for arm in arms:
            if arm == reference:
                continue
            for pop in ("itt", "per_protocol"):
                est = rng.normal(40, 5) if scale == "difference" else float(np.exp(rng.normal(0.1, 0.05)))
                half = 30.0 if scale == "difference" else 0.15
                lo, hi = (
                    (est - half, est + half)
                    if scale == "difference"
                    else (est / (1 + half), est * (1 + half))
                )
                rows.append(
                    [
                        outcome,
                        label,
                        source,
                        family,
                        role,
                        pop,
                        "ancova",
                        scale,
                        f"{arm} vs {reference}",
                        est,
                        0.1,
                        lo,
                        hi,
                        0.01,
                        0.03,
                        "holm" if role == "primary" else "BH",
                        18,
                        2,
                    ]
                )
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    desc = []
    for outcome, *_ in OUTCOMES:
        for visit in visits:
            for arm in arms:
                x = rng.lognormal(3, 0.3, size=10)
                q1, med, q3 = np.quantile(x, [0.25, 0.5, 0.75])
                desc.append(
                    [
                        outcome,
                        visit,
                        arm,
                        10,
                        x.mean(),
                        x.std(ddof=1),
                        med,
                        q1,
                        q3,
                        float(np.exp(np.log(x).mean())),
                    ]
                )
    descriptives = pd.DataFrame(desc, columns=DESCRIPTIVE_COLUMNS)
    return FakeAnalysis(
        results, descriptives, {}, {"protocol_sha256": "ab" * 32, "seeds": {"imputation": 20230309}}
    )
