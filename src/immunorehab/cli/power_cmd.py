"""``power``: sample size and power for the next trial (issue 6).

``power t-test`` and ``power ancova`` are the analytic calculations (R's ``power.t.test``; ANCOVA
with a baseline correlated ``rho``); ``power simulate`` fits an ANCOVA to a study's outcome
dataset (as ``immunorehab analyse`` writes it to ``datasets/<outcome>.csv``), simulates whole
trials from it, optionally with a smaller effect (e.g. in non-hospitalised patients), and
analyses each one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from immunorehab.cli.common import console
from immunorehab.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from immunorehab.analysis.results import PowerResult

__all__ = ["power_app", "register"]

power_app = typer.Typer(
    help="Sample size and power for the next trial: analytic (t test, ANCOVA) or simulated from a study.",
    no_args_is_help=True,
)

NOpt = Annotated[float | None, typer.Option("--n", help="Participants per arm (leave out to solve for it).")]
DeltaOpt = Annotated[
    float | None, typer.Option("--delta", help="Difference to detect (leave out to solve for it).")
]
SdOpt = Annotated[float, typer.Option("--sd", help="Standard deviation of the outcome.")]
PowerOpt = Annotated[
    float | None, typer.Option("--power", help="Power, e.g. 0.9 (leave out to solve for it).")
]
SigOpt = Annotated[float, typer.Option("--sig-level", help="Significance level.")]
OneSidedOpt = Annotated[bool, typer.Option("--one-sided", help="One-sided test (default two-sided).")]


def _one_unknown(n: float | None, delta: float | None, power: float | None) -> None:
    given = {"--n": n, "--delta": delta, "--power": power}
    missing = [k for k, v in given.items() if v is None]
    if len(missing) != 1:
        left = ", ".join(missing) if missing else "none"
        message = "give exactly two of --n, --delta and --power (the third is solved)"
        raise ConfigError(f"{message}; left out: {left}")


def _print_analytic(title: str, result: PowerResult) -> None:
    row = {str(k): v for k, v in result.table.iloc[0].items()}
    solved = result.solved_for
    console.print(title)
    table = Table(show_header=False)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key in ("n", "delta", "sd", "rho", "sd_residual", "sig_level", "power", "alternative"):
        if key not in row:
            continue
        value = row[key]
        text = f"{value:.7g}" if isinstance(value, float) else str(value)
        table.add_row(key + (" (solved)" if key == solved else ""), text)
    console.print(table)
    if solved == "n":
        per_arm = math.ceil(float(str(row["n"])))
        console.print(f"NOTE: n is the number in *each* group; recruit {per_arm} per arm.")


@power_app.command("t-test")
def t_test_command(
    n: NOpt = None,
    delta: DeltaOpt = None,
    sd: SdOpt = 1.0,
    power: PowerOpt = None,
    sig_level: SigOpt = 0.05,
    one_sided: OneSidedOpt = False,
) -> None:
    """Two-sample t test: power, or the n per arm / difference needed (R's power.t.test)."""
    from immunorehab.analysis.power import Alternative, power_t_test

    _one_unknown(n, delta, power)
    sided: Alternative = "one.sided" if one_sided else "two.sided"
    result = power_t_test(n=n, delta=delta, sd=sd, power=power, sig_level=sig_level, alternative=sided)
    _print_analytic("Two-sample t test power calculation", result)


@power_app.command("ancova")
def ancova_command(
    n: NOpt = None,
    delta: DeltaOpt = None,
    sd: SdOpt = 1.0,
    rho: Annotated[
        float, typer.Option("--rho", help="Correlation of baseline and follow-up values (-1 < rho < 1).")
    ] = 0.5,
    power: PowerOpt = None,
    sig_level: SigOpt = 0.05,
    one_sided: OneSidedOpt = False,
) -> None:
    """Two-arm ANCOVA adjusted for baseline: residual SD sd*sqrt(1-rho^2), one df more spent."""
    from immunorehab.analysis.power import Alternative, power_ancova

    _one_unknown(n, delta, power)
    sided: Alternative = "one.sided" if one_sided else "two.sided"
    result = power_ancova(
        n=n, delta=delta, sd=sd, rho=rho, power=power, sig_level=sig_level, alternative=sided
    )
    _print_analytic("ANCOVA (baseline-adjusted) power calculation", result)


@power_app.command("simulate")
def simulate_command(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="One row per participant: arm, baseline, follow-up (analyse's datasets/<outcome>.csv)."
        ),
    ],
    reference: Annotated[str, typer.Option("--reference", help="Comparator arm, e.g. usual_care.")],
    n_per_arm: Annotated[
        list[int], typer.Option("--n", min=3, help="Participants per arm to evaluate (repeatable).")
    ],
    arm: Annotated[
        str | None, typer.Option("--arm", help="Intervention arm (default: the only other arm).")
    ] = None,
    log: Annotated[
        bool, typer.Option("--log", help="Analyse on the log scale (geometric-mean ratio).")
    ] = False,
    effect: Annotated[
        float | None,
        typer.Option("--effect", help="Assumed difference (or ratio with --log) instead of the fitted one."),
    ] = None,
    n_sim: Annotated[int, typer.Option("--n-sim", min=10, help="Trials simulated per sample size.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (the plan is reproducible).")] = 1,
    sig_level: SigOpt = 0.05,
    baseline_col: Annotated[str, typer.Option("--baseline-column", help="Baseline.")] = "baseline_value",
    outcome_col: Annotated[str, typer.Option("--outcome-column", help="Follow-up.")] = "followup_value",
    arm_col: Annotated[str, typer.Option("--arm-column", help="Arm column.")] = "arm",
    out: Annotated[Path | None, typer.Option("--out", help="Write power.csv and power.png here.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace files already in --out.")] = False,
) -> None:
    """Power by simulating whole two-arm trials from a fitted study, each analysed by ANCOVA."""
    import numpy as np
    import pandas as pd  # noqa: F811

    from immunorehab.analysis import ancova
    from immunorehab.analysis.plots import power_curve
    from immunorehab.analysis.power import planning_model, simulated_power
    from immunorehab.study.export import write_frame

    data = _read_dataset(dataset, (arm_col, baseline_col, outcome_col))
    arms = sorted(str(a) for a in data[arm_col].dropna().unique())
    if reference not in arms:
        raise ConfigError(f"{dataset}: no arm {reference!r} in column {arm_col!r} (arms: {', '.join(arms)})")
    others = [a for a in arms if a != reference]
    if arm is None and len(others) != 1:
        raise ConfigError(f"{dataset}: arms {', '.join(others)} besides the reference: pass --arm")
    chosen = arm if arm is not None else others[0]
    if chosen not in others:
        raise ConfigError(f"{dataset}: no arm {chosen!r} in column {arm_col!r} (arms: {', '.join(arms)})")
    if effect is not None and log and effect <= 0:
        raise ConfigError(f"--effect with --log is a ratio and must be > 0, got {effect}")
    pair = data[data[arm_col].astype(str).isin([reference, chosen])].copy()
    pair[arm_col] = pair[arm_col].astype(str)
    fit = ancova(pair, outcome=outcome_col, baseline=baseline_col, arm=arm_col, reference=reference, log=log)
    model = planning_model(fit, pair)
    assumed = None if effect is None else (math.log(effect) if log else effect)
    rng = np.random.default_rng(seed)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("Simulating trials", total=len(n_per_arm))
        result = simulated_power(
            model,
            n_per_arm=n_per_arm,
            rng=rng,
            n_sim=n_sim,
            alpha=sig_level,
            effect=assumed,
            on_progress=lambda _t, done, total: progress.update(task, completed=done, total=total),
        )
    shown = math.exp(result.effect) if log else result.effect
    est, low, high = (float(fit.table[c].iloc[0]) for c in ("estimate", "ci_low", "ci_high"))
    scale = "ratio" if log else "difference"
    console.print(
        f"Fitted on {fit.n} participants of {dataset.name}: {chosen} vs {reference} {scale} "
        f"{est:.4g} (95% CI {low:.4g} to {high:.4g}); "
        f"baseline slope {model.slope:.3g}, residual SD {model.residual_sd:.3g}"
        + (" (log scale)" if log else "")
    )
    console.print(
        f"Simulated {n_sim} trials per size with {scale} {shown:.4g}"
        + (" (assumed)" if effect is not None else " (as fitted)")
        + f", two-sided alpha {sig_level:g}, seed {seed}"
    )
    table = Table(title="Simulated power", title_justify="left")
    for column in ("n per arm", "power", "95% CI", f"mean {scale}", "CI coverage"):
        table.add_column(column, justify="right")
    for rec in result.table.to_dict(orient="records"):
        mean = float(rec["mean_estimate"])
        table.add_row(
            str(rec["n_per_arm"]),
            f"{rec['power']:.3f}",
            f"{rec['power_ci_low']:.3f} to {rec['power_ci_high']:.3f}",
            f"{math.exp(mean) if log else mean:.4g}",
            f"{rec['coverage']:.3f}",
        )
    console.print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        frame = result.table.assign(
            effect=shown,
            scale=scale,
            residual_sd=model.residual_sd,
            baseline_slope=model.slope,
            alpha=sig_level,
            seed=seed,
            arm=chosen,
            reference=reference,
        )
        written = [write_frame(pd.DataFrame(frame), out / "power.csv", overwrite=overwrite)]
        title = f"{dataset.stem}: {chosen} vs {reference}, {scale} {shown:.3g}"
        written.append(power_curve(result.table, out / "power.png", title=title, overwrite=overwrite))
        console.print("Wrote " + ", ".join(str(p) for p in written))


def _read_dataset(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    import pandas as pd

    from immunorehab.errors import AnalysisDataError

    try:
        data = pd.read_csv(path)
    except FileNotFoundError:
        raise ConfigError(f"dataset {path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise AnalysisDataError(f"{path}: cannot be read as CSV: {exc}") from None
    missing = [c for c in columns if c not in data.columns]
    if missing:
        raise AnalysisDataError(
            f"{path}: column(s) {', '.join(missing)} missing; columns are {', '.join(map(str, data.columns))}"
        )
    return data


def register(app: typer.Typer) -> None:
    app.add_typer(power_app, name="power")
