"""immunorehab: exercise-rehabilitation trials for post-COVID syndrome with immune recovery as the outcome."""

from __future__ import annotations

from immunorehab.errors import (
    AlreadyRandomised,
    AnalysisError,
    ConfigError,
    CytokineError,
    CytometryError,
    DataValidationError,
    EligibilityError,
    ImmunorehabError,
    ImmunorehabWarning,
    IntegrityError,
    NotFoundError,
    PermissionDenied,
    Problem,
    ProtocolError,
    RehabError,
    StoreError,
    StudyError,
)

__version__ = "0.1.0"

__all__ = [
    "AlreadyRandomised",
    "AnalysisError",
    "CytokineError",
    "CytometryError",
    "RehabError",
    "ConfigError",
    "DataValidationError",
    "EligibilityError",
    "ImmunorehabError",
    "ImmunorehabWarning",
    "IntegrityError",
    "NotFoundError",
    "PermissionDenied",
    "Problem",
    "ProtocolError",
    "StoreError",
    "StudyError",
    "__version__",
]
