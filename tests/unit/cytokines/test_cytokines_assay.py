"""Assay configuration: strict YAML, every problem listed with its key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from immunorehab.cytokines.assay import AssayConfig, load_assay, parse_assay
from immunorehab.errors import AssayConfigError

EXAMPLE_ASSAY = Path(__file__).resolve().parents[3] / "examples" / "assays" / "long_covid_panel.yaml"


@pytest.fixture(scope="module")
def assay() -> AssayConfig:
    return load_assay(Path(__file__).resolve().parents[3] / "examples" / "assays" / "long_covid_panel.yaml")


def test_example_assay_loads(assay: AssayConfig) -> None:
    assert assay.names == ["IL-6", "TNF-a", "IL-1b", "IP-10", "MCP-1", "MIP-1b", "IFN-g", "IL-10"]
    assert assay.rules.recovery == [0.8, 1.2] and assay.rules.min_beads == 35
    assert assay.canonical("tnf-alpha") == "TNF-a" and assay.canonical("IL-99") is None
    assert assay.model_for("IL-6") == "5PL" and assay.weights_for("IL-6") == "1/y2"


def test_package_copy_of_example_is_identical() -> None:
    from immunorehab.cytokines.demo import example_assay_path

    assert example_assay_path().read_text() == EXAMPLE_ASSAY.read_text()


def test_every_problem_is_listed_with_its_path() -> None:
    text = (
        "assay: {id: x}\nanalytes: [{name: IL-6, model: 6PL}]\n"
        "rules: {cv_max: 2, bogus: 1, below_lloq: zero}\n"
    )
    with pytest.raises(AssayConfigError) as info:
        parse_assay(text, "panel.yaml")
    where = [p.location for p in info.value.problems]
    assert "panel.yaml: assay.name" in where
    assert "panel.yaml: analytes[0].model" in where
    assert "panel.yaml: rules.cv_max" in where and "panel.yaml: rules.bogus" in where
    assert "panel.yaml: rules.below_lloq" in where
    assert "5 problems" in str(info.value)


def test_recovery_window_must_bracket_one() -> None:
    with pytest.raises(AssayConfigError, match="low < 1 < high"):
        parse_assay("assay: {id: x, name: y}\nanalytes: [{name: A}]\nrules: {recovery: [1.1, 1.3]}\n")


def test_duplicate_names_and_aliases_refused() -> None:
    with pytest.raises(AssayConfigError, match="used twice"):
        parse_assay("assay: {id: x, name: y}\nanalytes: [{name: A}, {name: B, aliases: [a]}]\n")


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AssayConfigError, match="not valid YAML"):
        parse_assay("assay: [unclosed\n", "bad.yaml")
    with pytest.raises(AssayConfigError, match="cannot read"):
        load_assay(tmp_path / "missing.yaml")
    with pytest.raises(AssayConfigError, match="mapping"):
        parse_assay("- just a list\n")
