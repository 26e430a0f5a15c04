"""Paths and constants shared by test modules (import this, never ``conftest``).

Several folders have a ``conftest.py``; importing ``conftest`` by name picks whichever was
loaded first, so shared constants live here under a unique module name.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXTERNAL = REPO.parent / "shared" / "data" / "external"
PROTOCOLS = REPO / "examples" / "protocols"
PHOSP = PROTOCOLS / "phosp_r_immune.yaml"
TWO_ARM = PROTOCOLS / "two_arm_minimisation.yaml"
ROLE_USERS = {
    "coord": "coordinator",
    "physio1": "physio",
    "lab1": "lab",
    "stats1": "statistician",
    "assessor1": "assessor",
}
