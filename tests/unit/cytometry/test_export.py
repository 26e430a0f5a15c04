"""Exports: per-event membership (Parquet), AnnData (.h5ad), gated subsets as FCS through flowio."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunorehab.cytometry import read_fcs
from immunorehab.cytometry.export import export_gate_fcs, sample_outputs, write_h5ad, write_membership
from immunorehab.cytometry.pipeline import GateOptions, SampleAnalysis, analyse_sample
from immunorehab.errors import ConfigError, GateError
from immunorehab.simulate.fcs import simulate_panel_sample


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> SampleAnalysis:
    path, _ = simulate_panel_sample(
        15_000, rng=np.random.default_rng(31), path=tmp_path_factory.mktemp("fcs") / "tube.fcs"
    )
    return analyse_sample(read_fcs(path), GateOptions.create(mfi_markers=("CD3",)))


def test_membership_parquet_is_the_gating(analysis: SampleAnalysis, tmp_path: Path) -> None:
    path = write_membership(analysis.results, tmp_path / "m.parquet")
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["event", *analysis.results.gate_ids]
    assert frame["event"].tolist() == list(range(analysis.sample.n_events))
    for gate in analysis.results.gate_ids:
        assert np.array_equal(frame[gate].to_numpy(), analysis.results.membership(gate)), gate
    with pytest.raises(ConfigError, match="exists: pass --overwrite"):
        write_membership(analysis.results, path)


def test_h5ad_holds_events_membership_and_provenance(analysis: SampleAnalysis, tmp_path: Path) -> None:
    import anndata

    path = write_h5ad(analysis.strategy, analysis.sample, analysis.results, tmp_path / "s.h5ad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        adata = anndata.read_h5ad(path)
    sample = analysis.sample
    assert adata.shape == (sample.n_events, len(sample.channels))
    assert list(adata.var_names) == list(sample.channels)
    assert adata.var.loc["BUV395-A", "marker"] == "CD3"
    assert adata.var.loc["BUV395-A", "transform"] == "logicle"
    np.testing.assert_allclose(adata.layers["raw"], sample.scaled.astype(np.float32))
    assert np.array_equal(adata.obs["cd8_naive"].to_numpy(), analysis.results.membership("cd8_naive"))
    assert adata.uns["file_sha256"] == sample.sha256
    assert adata.uns["strategy_sha256"] == analysis.strategy.sha256
    # X is the gating scale: the CD3 column holds the values the t_cells gate was evaluated on
    cd3 = list(adata.var_names).index("BUV395-A")
    dim = analysis.strategy.get_gate("t_cells").dimensions[0]
    expected = analysis.strategy.dimension_values(sample, [dim])[:, 0]
    np.testing.assert_allclose(adata.X[:, cd3], expected, rtol=1e-6, atol=1e-6)


def test_gate_subset_fcs_reads_back(analysis: SampleAnalysis, tmp_path: Path) -> None:
    path = export_gate_fcs(analysis.sample, analysis.results, "cd4_naive", tmp_path / "naive.fcs")
    subset = read_fcs(path)
    mask = analysis.results.membership("cd4_naive")
    assert subset.n_events == int(mask.sum()) > 0
    assert subset.channels == analysis.sample.channels
    assert subset.markers == analysis.sample.markers
    np.testing.assert_array_equal(subset.raw, analysis.sample.raw[mask])
    assert subset.spillover is not None
    np.testing.assert_allclose(subset.spillover.matrix, analysis.sample.spillover.matrix)
    assert subset.metadata["immunorehab_gate"] == "cd4_naive"
    assert subset.metadata["immunorehab_source_sha256"] == analysis.sample.sha256
    # the subset gates back to itself: every event is still a naive CD4 T cell by the same strategy
    again = analysis.strategy.gate(subset)
    assert again.count("cd4_naive") >= 0.99 * subset.n_events


def test_unknown_gate_writes_nothing(analysis: SampleAnalysis, tmp_path: Path) -> None:
    with pytest.raises(GateError, match="cd4_tscm"):
        sample_outputs(analysis, tmp_path, export_gates=("cd4_tscm",))
    assert list(tmp_path.iterdir()) == []


def test_sample_outputs(analysis: SampleAnalysis, tmp_path: Path) -> None:
    written = sample_outputs(analysis, tmp_path, plot_format="svg", membership=True, export_gates=("nk",))
    names = sorted(p.name for p in written)
    assert names == ["tube.gates.svg", "tube.gating.xml", "tube.membership.parquet", "tube.nk.fcs"]
    from immunorehab.cytometry.template import load_template

    edited = load_template(tmp_path / "tube.gating.xml")  # the per-sample Gating-ML re-imports
    assert edited.sha256 == analysis.strategy.sha256
