"""Cytokine and inflammation panels: plates to concentrations with 4PL/5PL standard curves.

Public API::

    fit_standard_curve, StandardCurve, CurveStatus   standard curves (curves.py, models.py)
    load_assay, AssayConfig                          assay configuration (assay.py)
    read_plate_map, read_readings                    plate files (io_plate.py)
    process_plate, PlateResult                       one plate to flagged concentrations
    levey_jennings, westgard, inter_plate_cv,
    bridging_factors, bridge_normalise               QC across plates (qc.py)
    load_reference, inflammation_profile,
    composite_scores, persistently_elevated          inflammation profile (profile.py)
"""

from __future__ import annotations

from immunorehab.cytokines.assay import AssayConfig, load_assay, parse_assay
from immunorehab.cytokines.curves import CurveStatus, StandardCurve, fit_standard_curve
from immunorehab.cytokines.io_plate import read_plate_map, read_readings
from immunorehab.cytokines.models import FivePL, FourPL
from immunorehab.cytokines.process import PlateResult, process_plate
from immunorehab.cytokines.profile import (
    composite_scores,
    inflammation_profile,
    load_reference,
    persistently_elevated,
)
from immunorehab.cytokines.qc import (
    bridge_normalise,
    bridging_factors,
    inter_plate_cv,
    levey_jennings,
    westgard,
)

__all__ = [
    "AssayConfig",
    "CurveStatus",
    "FivePL",
    "FourPL",
    "PlateResult",
    "StandardCurve",
    "bridge_normalise",
    "bridging_factors",
    "composite_scores",
    "fit_standard_curve",
    "inflammation_profile",
    "inter_plate_cv",
    "levey_jennings",
    "load_assay",
    "load_reference",
    "parse_assay",
    "persistently_elevated",
    "process_plate",
    "read_plate_map",
    "read_readings",
    "westgard",
]
