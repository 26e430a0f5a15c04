"""The participant record: pseudonymous baseline covariates, with types and allowed values.

These are the only participant fields the store keeps (no names, no contact details,
no free-text identifiers). Protocol eligibility criteria and stratification factors
refer to them by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["COVARIATES", "Covariate", "CovariateType", "SEX_VALUES", "CMV_VALUES"]

CovariateType = Literal["integer", "boolean", "choice", "text", "date"]

SEX_VALUES: tuple[str, ...] = ("female", "male", "other")
CMV_VALUES: tuple[str, ...] = ("positive", "negative", "unknown")


@dataclass(frozen=True, slots=True)
class Covariate:
    """One baseline field of a participant."""

    name: str
    type: CovariateType
    description: str
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    required: bool = True


COVARIATES: dict[str, Covariate] = {
    c.name: c
    for c in (
        Covariate("site", "text", "Recruiting site code (e.g. LEI), also the participant-ID prefix"),
        Covariate(
            "consent_date",
            "date",
            "Date written informed consent was given (empty while screening)",
            required=False,
        ),
        Covariate("age_years", "integer", "Age at consent in completed years", minimum=0, maximum=120),
        Covariate("sex", "choice", "Sex recorded at birth", choices=SEX_VALUES),
        Covariate(
            "who_severity",
            "integer",
            "Worst acute severity on the WHO clinical progression scale (0 uninfected .. 10 dead)",
            minimum=0,
            maximum=10,
        ),
        Covariate("hospitalised", "boolean", "Hospitalised for acute COVID-19"),
        Covariate("icu_admitted", "boolean", "Admitted to intensive care during the acute illness"),
        Covariate("invasive_ventilation", "boolean", "Received invasive mechanical ventilation"),
        Covariate("vaccination_doses", "integer", "COVID-19 vaccine doses received before consent", 0, 10),
        Covariate("cmv_serostatus", "choice", "Cytomegalovirus IgG serostatus", choices=CMV_VALUES),
        Covariate(
            "days_since_infection",
            "integer",
            "Days from acute infection (symptom onset or positive test) to consent",
            minimum=0,
            maximum=36500,
        ),
    )
}
