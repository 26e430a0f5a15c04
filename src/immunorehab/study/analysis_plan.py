"""The ``analysis:`` section of a protocol: the prespecified statistical analysis plan.

A trial declares its outcomes (where each value comes from, which visits, role, family for
multiplicity, transform, model, population), the reference arm and the contrasts against it,
the covariates (the stratification factors unless overridden), multiple imputation for the
intention-to-treat analysis and the completer definition for the per-protocol sensitivity
analysis. A cohort declares the group that splits participants (e.g. persistent symptoms at
12 months), time-to-normalisation analyses of markers against a reference threshold,
prevalence per visit, and mixed models of markers over time.

Every model forbids unknown keys; cross-field checks (unknown visits, measures, arms,
covariates, families, model/visit combinations) live in
:mod:`immunorehab.study._analysis_checks` and are reported with key paths such as
``analysis.outcomes[3].visits[0]``.

Example (trial)::

    analysis:
      reference_arm: usual_care
      contrasts: [{arm: face_to_face, primary: true}, {arm: remote, primary: true}]
      imputation: {method: mice, m: 20, seed: 20230309}
      per_protocol: {completers_from: rehab, programme_arms: [face_to_face, remote]}
      families: [{id: primary, method: holm}, {id: t_cell_subsets, method: BH}]
      outcomes:
        - id: iswt_week8
          label: "ISWT distance at 8 weeks"
          source: {type: visit, measure: iswt_distance_m}
          visits: [week8]
          role: primary
          family: primary
          population: both
        - id: cd8_naive
          label: "Naive CD8+ T cells (% of CD8+)"
          source: {type: cytometry, gate: cd8_naive, quantity: pct_parent}
          visits: [week8]
          role: exploratory
          family: t_cell_subsets
          transform: log
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from immunorehab.study._protocol_checks import SLUG_PATTERN

__all__ = [
    "AdjustMethod",
    "AnalysisPlan",
    "Contrast",
    "CytokineSource",
    "CytometrySource",
    "Family",
    "GateQuantity",
    "Grouping",
    "Imputation",
    "ModelKind",
    "Multiplicity",
    "Normalisation",
    "OutcomeSource",
    "Outcome",
    "PerProtocol",
    "PopulationChoice",
    "Prevalence",
    "RehabQuantity",
    "RehabSource",
    "Role",
    "Transform",
    "VisitSource",
]

Role = Literal["primary", "secondary", "exploratory"]
Transform = Literal["none", "log"]
#: ``ancova`` one follow-up visit adjusted for baseline; ``mmrm`` several post-baseline visits
#: (unstructured covariance); ``mixed`` random intercept/slope over time (trial: arm x time;
#: cohort: group x time); ``descriptive`` summaries only (no model, no p-value).
ModelKind = Literal["ancova", "mmrm", "mixed", "descriptive"]
PopulationChoice = Literal["itt", "per_protocol", "both"]
AdjustMethod = Literal["BH", "holm", "hochberg", "hommel", "bonferroni", "BY", "none"]
GateQuantity = Literal["pct_parent", "pct_total", "per_ul"]
RehabQuantity = Literal[
    "attendance_pct",
    "attended",
    "aerobic_pct",
    "resistance_pct",
    "aerobic_minutes_done",
    "resistance_volume_done_kg",
    "pese_events",
    "stop_events",
    "adverse_events",
    "serious_adverse_events",
]
TimeUnit = Literal["days", "weeks", "months"]
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]


class _PlanModel(BaseModel):
    """Same rules as the rest of the protocol: immutable, strict, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class VisitSource(_PlanModel):
    """A numeric visit measure of the protocol (e.g. ``iswt_distance_m``)."""

    type: Literal["visit"]
    measure: Slug


class CytometrySource(_PlanModel):
    """A gated population's result: % of parent, % of total events, or cells/uL.

    ``gate`` is the gate id of the gating strategy (e.g. ``cd8_naive``); ``tube`` picks one
    tube when several tubes of a visit carry the same gate.
    """

    type: Literal["cytometry"]
    gate: Annotated[str, Field(min_length=1)]
    quantity: GateQuantity = "pct_parent"
    tube: str | None = None


class CytokineSource(_PlanModel):
    """A cytokine concentration (e.g. pg/mL) of one analyte.

    ``below_lloq``: ``as_stored`` analyses the value the assay rule stored for results below
    the LLOQ (e.g. LLOQ/2, flagged ``<LLOQ``); ``missing`` treats them as missing.
    """

    type: Literal["cytokine"]
    analyte: Annotated[str, Field(min_length=1)]
    quantity: Literal["concentration"] = "concentration"
    below_lloq: Literal["as_stored", "missing"] = "as_stored"


class RehabSource(_PlanModel):
    """A participant's adherence to the rehabilitation programme (per participant, no visit)."""

    type: Literal["rehab"]
    quantity: RehabQuantity


OutcomeSource = Annotated[
    VisitSource | CytometrySource | CytokineSource | RehabSource, Field(discriminator="type")
]
MarkerSource = Annotated[VisitSource | CytometrySource | CytokineSource, Field(discriminator="type")]


class Outcome(_PlanModel):
    """One prespecified outcome.

    ``visits`` are the follow-up visits (``ancova``: exactly one; ``mmrm``: one or more after
    baseline; ``mixed``: the visits that enter the model, after the plan's baseline visit in a
    trial; in a cohort, whose baseline is often the acute phase, only these visits unless
    ``baseline_visit`` names one); ``primary_visit`` is the MMRM visit reported in the results
    (default the last). ``covariates`` default to the plan's covariates.
    """

    id: Slug
    label: Annotated[str, Field(min_length=1)]
    source: OutcomeSource
    visits: list[Slug] = Field(default_factory=list)
    baseline_visit: Slug | None = None
    primary_visit: Slug | None = None
    role: Role
    family: Slug | None = None
    transform: Transform = "none"
    model: ModelKind = "ancova"
    population: PopulationChoice = "itt"
    covariates: list[str] | None = None
    impute: bool = True


class Contrast(_PlanModel):
    """A comparison of ``arm`` against the reference arm; ``primary`` marks a confirmatory one."""

    arm: Slug
    primary: bool = True


class Family(_PlanModel):
    """A family of outcomes whose p-values are adjusted together.

    ``method`` defaults to Benjamini-Hochberg when every outcome of the family is exploratory
    and to Holm otherwise.
    """

    id: Slug
    label: str | None = None
    method: AdjustMethod | None = None


class Multiplicity(_PlanModel):
    """``across_contrasts``: adjust over the contrasts (arms) too, not only over outcomes."""

    across_contrasts: bool = False


class Imputation(_PlanModel):
    """Multiple imputation by chained equations for the ITT analysis (ANCOVA outcomes)."""

    method: Literal["mice"] = "mice"
    m: Annotated[int, Field(ge=2, le=500)] = 20
    iterations: Annotated[int, Field(ge=1, le=100)] = 10
    impute_with: Literal["pmm", "norm"] = "pmm"
    seed: Annotated[int, Field(ge=0)]


class PerProtocol(_PlanModel):
    """Per-protocol population: completers of ``programme_arms`` plus everyone in other arms.

    The completer definition is the rehabilitation programme's (attended at least the
    programme's ``completer_min_fraction`` of the sessions offered).
    """

    completers_from: Literal["rehab"] = "rehab"
    programme_arms: list[Slug] = Field(min_length=1)


class Grouping(_PlanModel):
    """Cohort groups from one visit measure (boolean or choice), e.g. symptoms at 12 months."""

    id: Slug
    label: Annotated[str, Field(min_length=1)]
    measure: Slug
    visit: Slug
    true_label: Slug = "yes"
    false_label: Slug = "no"
    reference: str | None = None


class Normalisation(_PlanModel):
    """Time from baseline to the first visit at which a marker is within the normal range.

    ``normal: below`` means normal when ``value <= threshold``; ``above`` when
    ``value >= threshold``. Participants already normal at baseline are not at risk and are
    counted separately. Event times are the visits' scheduled days, in ``time_unit``.
    """

    id: Slug
    label: Annotated[str, Field(min_length=1)]
    source: MarkerSource
    threshold: float
    normal: Literal["below", "above"] = "below"
    threshold_source: str | None = None
    visits: list[Slug] = Field(min_length=1)
    baseline_visit: Slug | None = None
    covariates: list[str] = Field(default_factory=list)
    time_unit: TimeUnit = "months"


class Prevalence(_PlanModel):
    """Proportion with a condition (a boolean visit measure) per visit, Wilson intervals."""

    id: Slug
    label: Annotated[str, Field(min_length=1)]
    measure: Slug
    visits: list[Slug] = Field(min_length=1)
    by: str | None = None


class AnalysisPlan(_PlanModel):
    """The prespecified analysis of a study (``analysis:`` in the protocol)."""

    alpha: Annotated[float, Field(gt=0, lt=1)] = 0.05
    baseline_visit: Slug | None = None
    reference_arm: Slug | None = None
    contrasts: list[Contrast] = Field(default_factory=list)
    multiplicity: Multiplicity = Field(default_factory=Multiplicity)
    covariates: list[str] | None = None
    df_method: Literal["kenward-roger", "satterthwaite"] = "kenward-roger"
    time_unit: TimeUnit = "months"
    imputation: Imputation | None = None
    per_protocol: PerProtocol | None = None
    group: Grouping | None = None
    families: list[Family] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(default_factory=list)
    normalisation: list[Normalisation] = Field(default_factory=list)
    prevalence: list[Prevalence] = Field(default_factory=list)

    def family(self, family_id: str) -> Family:
        """The declared family ``family_id`` (validated to exist for every outcome's family)."""
        return next(f for f in self.families if f.id == family_id)

    def family_method(self, family_id: str) -> AdjustMethod:
        """The family's adjustment method: declared, else BH for all-exploratory, else Holm."""
        declared = self.family(family_id).method
        if declared is not None:
            return declared
        roles = {o.role for o in self.outcomes if o.family == family_id}
        return "BH" if roles == {"exploratory"} else "holm"
