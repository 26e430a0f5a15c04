from __future__ import annotations

from pathlib import Path

import pytest

from immunorehab.cytokines.assay import AssayConfig, load_assay

REPO = Path(__file__).resolve().parents[3]
PLATES = REPO / "tests" / "data" / "cytokines" / "plates"
EXAMPLE_ASSAY = REPO / "examples" / "assays" / "long_covid_panel.yaml"


@pytest.fixture(scope="session")
def assay() -> AssayConfig:
    return load_assay(EXAMPLE_ASSAY)
