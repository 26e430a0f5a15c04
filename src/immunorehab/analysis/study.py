"""The prespecified study analysis: the protocol's ``analysis:`` plan run over the store.

:func:`run_study_analysis` reads visit measures, gated cytometry results, cytokine
concentrations and rehabilitation adherence (one query per source, :mod:`.sources`), builds a
tidy frame per outcome (:mod:`._tidy`), runs the declared model in each declared population with
the verified pure functions (:mod:`._models`, :mod:`._cohort`), adjusts p-values within each
declared family, and returns a :class:`StudyAnalysis`.

Blinding: only ``statistician`` and ``admin`` may run the unblinded analysis. Everyone else
(and anyone asking with ``blinded=True``) gets the blinded pooled analysis: the arm is never
read from the store, arms are pooled (descriptives under arm ``"all"``), no contrast is
estimated, the per-protocol population and rehabilitation adherence (which exist only for
exercise arms) are left out. A cohort has no allocation: everyone gets the same analysis.

Output contract
---------------
``results``      one row per outcome, population and contrast: ``outcome, label, source, family,
                 role, population, model, scale, contrast, estimate, se, ci_low, ci_high,
                 p_value, p_adjusted, adjust_method, n, n_missing``. ``scale`` is
                 ``"difference"`` or ``"ratio"`` (log-transformed outcomes: ratio of geometric
                 means; ``se`` is then on the log scale). ``n`` counts participants analysed;
                 ``n_missing`` participants of the population whose value (or baseline) at the
                 reported visit is missing (imputed under MICE, else excluded).
``descriptives`` ``outcome, visit, arm, n, mean, sd, median, q1, q3, geo_mean`` per outcome, visit
                 and arm (cohort: group label), plus the pooled ``"all"``; observed values.
``by_visit``     MMRM contrasts at every visit: ``outcome, label, population, visit, contrast,
                 estimate, se, df, ci_low, ci_high, p_value, scale``.
``cohort``       further tidy tables, each with ``outcome, label`` first: ``km``, ``km_summary``,
                 ``log_rank``, ``cox`` (time to normalisation), ``prevalence``, ``mixed_fixed``,
                 ``mixed_random`` (mixed models over time); only those that were run.
``datasets``     outcome id -> the frame given to the model (or the values described).
``methods``      plain data for a methods paragraph (models, covariates, df method, imputation,
                 multiplicity, populations, data handling, skipped outcomes, warnings).
``provenance``   protocol SHA-256, software versions, seeds, row counts, user, time.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from immunorehab.analysis._cohort import group_labels, group_levels
from immunorehab.analysis._runner import PlanRunner
from immunorehab.analysis.sources import read_rehab, read_study
from immunorehab.errors import AnalysisPlanError, PermissionDenied
from immunorehab.study.analysis_plan import AnalysisPlan, CytokineSource, CytometrySource, VisitSource
from immunorehab.study.protocol import Protocol
from immunorehab.study.service import actor_of, get_protocol, get_study
from immunorehab.study.store import Store

__all__ = [
    "BY_VISIT_COLUMNS",
    "DESCRIPTIVE_COLUMNS",
    "RESULT_COLUMNS",
    "UNBLINDED_ROLES",
    "StudyAnalysis",
    "run_study_analysis",
]

UNBLINDED_ROLES = ("admin", "statistician")
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
BY_VISIT_COLUMNS = [
    "outcome",
    "label",
    "population",
    "visit",
    "contrast",
    "estimate",
    "se",
    "df",
    "ci_low",
    "ci_high",
    "p_value",
    "scale",
]
ProgressCallback = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True, eq=False)
class StudyAnalysis:
    """The study's prespecified analysis (see the module docstring for every frame's columns)."""

    results: pd.DataFrame
    descriptives: pd.DataFrame
    by_visit: pd.DataFrame
    cohort: dict[str, pd.DataFrame]
    datasets: dict[str, pd.DataFrame]
    methods: dict[str, Any]
    provenance: dict[str, Any]
    blinded: bool
    design: Literal["trial", "cohort"]

    def primary(self) -> pd.DataFrame:
        """Rows of ``results`` for primary outcomes."""
        return self.results[self.results["role"] == "primary"].reset_index(drop=True)


def _needs(plan: AnalysisPlan) -> tuple[list[str], list[str], list[str]]:
    """Visit measures, gates and analytes the plan reads."""
    sources = [o.source for o in plan.outcomes] + [n.source for n in plan.normalisation]
    measures = [s.measure for s in sources if isinstance(s, VisitSource)]
    measures += [p.measure for p in plan.prevalence] + ([plan.group.measure] if plan.group else [])
    gates = [s.gate for s in sources if isinstance(s, CytometrySource)]
    analytes = [s.analyte for s in sources if isinstance(s, CytokineSource)]
    return sorted(set(measures)), sorted(set(gates)), sorted(set(analytes))


def _resolve_blinding(role: str, by: str, design: str, blinded: bool | None) -> bool:
    if design == "cohort":
        return False  # no allocation exists
    allowed = role in UNBLINDED_ROLES
    if blinded is False and not allowed:
        raise PermissionDenied(
            f"user '{by}' (role {role}) may not run the unblinded analysis; allowed roles: "
            f"{', '.join(UNBLINDED_ROLES)}. Run the blinded pooled analysis instead (--blinded)"
        )
    return not allowed if blinded is None else blinded


def _populations(plan: AnalysisPlan, populations: Sequence[str] | None, blinded: bool) -> tuple[str, ...]:
    wanted = tuple(populations) if populations is not None else ("itt", "per_protocol")
    unknown = [p for p in wanted if p not in ("itt", "per_protocol")]
    if unknown:
        raise AnalysisPlanError(f"unknown population(s) {unknown}: expected itt and/or per_protocol")
    if blinded or plan.per_protocol is None:
        wanted = tuple(p for p in wanted if p == "itt")
    return tuple(p for p in ("itt", "per_protocol") if p in wanted)


def mice_seed(seed: int, outcome_id: str) -> tuple[int, int]:
    """The MICE seed of one outcome: the plan's seed and the CRC-32 of the outcome id.

    ``numpy.random.default_rng([seed, crc])`` reproduces the imputations; adding or removing
    other outcomes does not change them.
    """
    return seed, zlib.crc32(outcome_id.encode("utf-8"))


def _load(store: Store, by: str) -> tuple[Protocol, str, str, str]:
    with store.read(by) as session:
        actor = actor_of(session)
        study = get_study(session)
        return get_protocol(session), study.protocol_sha256, study.slug, actor.role


def run_study_analysis(
    store: Store,
    *,
    by: str,
    blinded: bool | None = None,
    populations: Sequence[str] | None = None,
    skip_unavailable: bool = False,
    today: dt.date | None = None,
    on_progress: ProgressCallback | None = None,
) -> StudyAnalysis:
    """Run the protocol's prespecified analysis over the store.

    Parameters
    ----------
    store : Store
        The study database.
    by : str
        The user running the analysis (``statistician``/``admin`` may run it unblinded).
    blinded : bool, optional
        ``None``: unblinded for ``statistician``/``admin``, blinded pooled for other roles;
        ``True``: blinded pooled for anyone; ``False``: unblinded (refused for other roles).
    populations : sequence of {"itt", "per_protocol"}, optional
        Restrict the populations run (default: each outcome's declared populations).
    skip_unavailable : bool
        Leave out (and list in ``methods["skipped"]``) outcomes without data or with too few
        observations for their model, instead of raising.
    today : datetime.date, optional
        Date for the rehabilitation completer status (participants still inside the programme
        window are "in progress", not completers); default today.
    on_progress : callable, optional
        ``on_progress(task, done, total)`` after each outcome.

    Returns
    -------
    StudyAnalysis

    Raises
    ------
    AnalysisPlanError
        The protocol has no ``analysis:`` section, or an unknown population was asked for.
    OutcomeDataError
        An outcome has no data in the store (unless ``skip_unavailable``).
    PermissionDenied
        An unblinded analysis was asked for by a role other than statistician/admin.
    """
    protocol, sha, slug, role = _load(store, by)
    plan = protocol.analysis
    if plan is None:
        raise AnalysisPlanError(
            f"the protocol of study {slug!r} has no analysis section: declare the outcomes, families and "
            "populations under 'analysis:' (see examples/protocols/phosp_r_immune.yaml)"
        )
    hidden = _resolve_blinding(role, by, protocol.design, blinded)
    pops = _populations(plan, populations, hidden)
    measures, gates, analytes = _needs(plan)
    data = read_study(
        store,
        by=by,
        protocol=protocol,
        protocol_sha256=sha,
        study=slug,
        measures=measures,
        gates=gates,
        analytes=analytes,
        blinded=hidden,
    )
    today = today or dt.date.today()
    needs_rehab = "per_protocol" in pops or any(o.source.type == "rehab" for o in plan.outcomes)
    if not hidden and protocol.randomised and needs_rehab:
        data = _with_rehab(data, store, by, today)
    groups = group_labels(plan.group, data.visits) if plan.group is not None else None
    levels = group_levels(plan.group, groups) if plan.group is not None and groups is not None else []
    runner = PlanRunner(
        protocol=protocol,
        plan=plan,
        data=data,
        blinded=hidden,
        populations=pops,
        skip_unavailable=skip_unavailable,
        cohort_groups=groups,
        cohort_levels=levels,
        seed_of=mice_seed,
    )
    runner.run(on_progress)
    return StudyAnalysis(
        results=runner.results_frame(),
        descriptives=runner.descriptives_frame(),
        by_visit=runner.by_visit_frame(),
        cohort=runner.cohort_frames(),
        datasets=runner.datasets,
        methods=runner.methods(),
        provenance=runner.provenance(by=by, role=role, today=today),
        blinded=hidden,
        design=protocol.design,
    )


def _with_rehab(data: Any, store: Store, by: str, today: dt.date) -> Any:
    from dataclasses import replace

    rehab = read_rehab(store, by=by, today=today)
    rows = {**data.rows, "rehab_participants": len(rehab)}
    return replace(data, rehab=rehab, rows=rows)
