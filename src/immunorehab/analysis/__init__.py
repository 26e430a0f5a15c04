"""immunorehab.analysis: the trial's statistics on tidy DataFrames (no store inside).

Every function takes pandas DataFrames (or arrays) and returns a frozen result object with a
tidy ``.table`` and plain attributes, so reports render results without recomputing them. Each
method agrees with R's published output on R's own example datasets (see
``tests/data/r_reference/README.md``).

========================  ==========================================================
primary analysis          :func:`ancova` (difference or geometric-mean ratio vs reference)
repeated visits           :func:`mmrm` (unstructured, Kenward-Roger), :func:`mixed_model`
missing data              :func:`ancova_mi` (MICE + Rubin), :func:`completers_ancova`
many outcomes             :func:`adjust_family`, :func:`adjust_pvalues` (BH, Holm, ...)
effect sizes              :func:`cohens_d`, :func:`hedges_g`, :func:`standardised_difference`
time to normalisation     :func:`kaplan_meier`, :func:`survival_at`, :func:`log_rank`, :func:`cox`
prevalence                :func:`prevalence_by_visit`, :func:`wilson_ci`
planning the next trial   :func:`power_t_test`, :func:`power_ancova`, :func:`simulated_power`
figures                   :func:`forest_plot`, :func:`km_plot`
========================  ==========================================================
"""

from immunorehab.analysis.ancova import ancova
from immunorehab.analysis.effect_sizes import cohens_d, hedges_g, standardised_difference
from immunorehab.analysis.imputation import ancova_mi, completers_ancova, mice_impute, rubin_pool
from immunorehab.analysis.mixed import mixed_model
from immunorehab.analysis.mmrm import mmrm
from immunorehab.analysis.multiplicity import adjust_family, adjust_pvalues
from immunorehab.analysis.plots import forest_plot, km_plot
from immunorehab.analysis.power import TrialModel, planning_model, power_ancova, power_t_test, simulated_power
from immunorehab.analysis.prevalence import prevalence_by_visit, wilson_ci
from immunorehab.analysis.results import (
    AncovaResult,
    CoxResult,
    EffectSizeResult,
    KaplanMeierResult,
    LogRankResult,
    MixedModelResult,
    MMRMResult,
    MultiplicityResult,
    PooledResult,
    PowerResult,
    PrevalenceResult,
    SimulatedPowerResult,
)
from immunorehab.analysis.survival import cox, kaplan_meier, log_rank, survival_at

__all__ = [
    "AncovaResult",
    "CoxResult",
    "EffectSizeResult",
    "KaplanMeierResult",
    "LogRankResult",
    "MMRMResult",
    "MixedModelResult",
    "MultiplicityResult",
    "PooledResult",
    "PowerResult",
    "PrevalenceResult",
    "SimulatedPowerResult",
    "TrialModel",
    "adjust_family",
    "adjust_pvalues",
    "ancova",
    "ancova_mi",
    "cohens_d",
    "completers_ancova",
    "cox",
    "forest_plot",
    "hedges_g",
    "kaplan_meier",
    "km_plot",
    "log_rank",
    "mice_impute",
    "mixed_model",
    "mmrm",
    "planning_model",
    "power_ancova",
    "power_t_test",
    "prevalence_by_visit",
    "rubin_pool",
    "simulated_power",
    "standardised_difference",
    "survival_at",
    "wilson_ci",
]
