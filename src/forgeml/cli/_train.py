"""``forgeml train DATASET[@V] | PATH``: AutoML training, evaluation and registration."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

import typer

from forgeml.cli._common import console, fmt_value, open_context, print_json, table
from forgeml.cli._live import training_view
from forgeml.errors import InputError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``2m``, ``1.5h`` or ``500ms``.

    Raises:
        InputError: the text is not a positive duration.
    """
    match = _DURATION.match(text)
    if not match:
        raise InputError(f"--time-budget takes a duration such as 60s, 2m or 90; got {text!r}")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise InputError(f"--time-budget must be more than zero; got {text!r}")
    return seconds


def parse_latency(text: str) -> float | None:
    """Milliseconds from ``5``, ``2.5`` or ``5ms``; ``none`` for no bound.

    Raises:
        InputError: the text is neither a positive number of milliseconds nor ``none``.
    """
    cleaned = text.strip().lower().removesuffix("ms").strip()
    if cleaned in ("none", "off"):
        return None
    try:
        value = float(cleaned)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise InputError(
            "--max-latency-ms takes a positive number of milliseconds (e.g. 5) or none; "
            f"got {text!r}"
        )
    return value


def _data_options(bins: list[str] | None, pii: list[str] | None) -> dict[str, Any] | None:
    from forgeml.security import parse_pii_options

    options: dict[str, Any] = {}
    if bins:
        options["bins"] = parse_bins(bins)
    if pii:
        options["pii"] = parse_pii_options(pii)
    return options or None


def parse_bins(values: list[str] | None) -> dict[str, list[float]]:
    """``{"age": [25, 40, 65]}`` from ``["age=25,40,65"]``.

    Raises:
        InputError: an item is not COLUMN=NUMBER,NUMBER...
    """
    out: dict[str, list[float]] = {}
    for item in values or []:
        column, sep, edges = item.partition("=")
        try:
            out[column.strip()] = [float(e) for e in edges.split(",")]
        except ValueError:
            sep = ""
        if not sep or not column.strip():
            raise InputError(f"--bins takes COLUMN=EDGE,EDGE,... (e.g. age=25,40,65); got {item!r}")
    return out


def train(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="A dataset of the workspace (NAME, NAME@V) or a CSV/Parquet file, which is "
            "added as a dataset first."
        ),
    ],
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", help="The column to predict (default: the dataset's)."),
    ] = None,
    task: Annotated[
        str, typer.Option("--task", help="auto, binary, multiclass or regression.")
    ] = "auto",
    metric: Annotated[
        str | None,
        typer.Option("--metric", help="Metric to optimise (default: roc_auc, log_loss, rmse)."),
    ] = None,
    time_budget: Annotated[
        str, typer.Option("--time-budget", help="Wall-clock budget: 60s, 2m, 90 (seconds).")
    ] = "60s",
    models: Annotated[
        str | None,
        typer.Option("--models", help="Families to search, e.g. lgbm,xgb (default: all)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds splits, search and models.")] = 0,
    target_transform: Annotated[
        str,
        typer.Option(
            "--target-transform",
            help="Regression: auto (log1p for a skewed non-negative target when validation "
            "prefers it), none or log1p.",
        ),
    ] = "auto",
    validation: Annotated[
        str,
        typer.Option(
            "--validation",
            help="How trials are scored: cv (k folds), holdout (one split) or auto (holdout "
            "for regression tables large for the budget).",
        ),
    ] = "auto",
    bagging: Annotated[
        bool,
        typer.Option(
            "--bagging/--no-bagging",
            help="Bagged members (fold models averaged, scored out of fold) and a second "
            "stacking level when the time allows; --no-bagging refits members on all rows.",
        ),
    ] = True,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Threads per model (-1: all).")] = -1,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            "--memory-limit",
            help="Memory the training may hold, e.g. 2GB: configurations predicted to "
            "exceed it are shrunk or skipped.",
        ),
    ] = None,
    parallel_trials: Annotated[
        int | None,
        typer.Option(
            "--parallel-trials",
            help="Trials run at once, sharing the --jobs threads (default: by the table's "
            "size; 1: one at a time).",
        ),
    ] = None,
    time_column: Annotated[
        str | None,
        typer.Option("--time-column", help="Order rows by this column (time-ordered folds)."),
    ] = None,
    sensitive: Annotated[
        list[str] | None,
        typer.Option("--sensitive", help="Sensitive column for a file source (repeatable)."),
    ] = None,
    trials: Annotated[
        int | None,
        typer.Option("--trials", help="Run exactly this many trials (deterministic mode)."),
    ] = None,
    portfolio: Annotated[
        int,
        typer.Option(
            "--portfolio",
            help="Configurations of the zero-shot portfolio tried before the Bayesian search "
            "(0: off).",
        ),
    ] = 8,
    experiment: Annotated[
        str | None, typer.Option("--experiment", "-e", help="Experiment (default: train).")
    ] = None,
    use_sensitive: Annotated[
        bool,
        typer.Option("--use-sensitive", help="Let sensitive columns be model inputs."),
    ] = False,
    allow_leaks: Annotated[
        bool,
        typer.Option("--allow-leaks", help="Train although the leak check found leaks."),
    ] = False,
    bins: Annotated[
        list[str] | None,
        typer.Option("--bins", help="Ranges of a numeric sensitive column: age=25,40,65."),
    ] = None,
    pii: Annotated[
        list[str] | None,
        typer.Option(
            "--pii",
            help="PII policy of a column of a file source: COLUMN=hash|mask|keep (repeatable).",
        ),
    ] = None,
    run_name: Annotated[
        str | None,
        typer.Option("--run-name", help="The run's name (default: what ran, e.g. 'train bank y')."),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="Train on the train part of this split recorded with the dataset (forgeml "
            "data split) and test on its test part, instead of drawing a hold-out.",
        ),
    ] = None,
    drop: Annotated[
        str | None, typer.Option("--drop", help="Columns to leave out, comma-separated.")
    ] = None,
    register: Annotated[
        str | None,
        typer.Option("--register", help="Model name to register (default: the dataset's name)."),
    ] = None,
    no_register: Annotated[
        bool, typer.Option("--no-register", help="Do not register the model.")
    ] = False,
    no_evaluate: Annotated[
        bool,
        typer.Option(
            "--no-evaluate",
            help="Skip the evaluation on the held-out rows (it runs after the time budget).",
        ),
    ] = False,
    max_latency_ms: Annotated[
        str | None,
        typer.Option(
            "--max-latency-ms",
            help="The returned model answers one row (predict_proba on a one-row DataFrame, "
            "median of 10 calls) within this many ms; slower members are dropped or a faster "
            "model chosen, and the cost in score is noted. Default 10; none: no bound.",
        ),
    ] = None,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Find the best model within the time budget, evaluate it on held-out rows, register it.

    The rows held out are recorded as a split of the dataset version (``holdout-...``), so
    ``forgeml evaluate MODEL --data DATASET`` later scores exactly those rows.
    """
    from forgeml.train import TrainConfig
    from forgeml.workflows import train_model

    bound = {} if max_latency_ms is None else {"max_latency_ms": parse_latency(max_latency_ms)}
    config = TrainConfig.build(
        {
            **bound,
            "target": target,
            "task": task,
            "metric": metric,
            "time_budget": parse_duration(time_budget),
            "models": models,
            "seed": seed,
            "target_transform": target_transform,
            "bagging": bagging,
            "validation": validation,
            "n_jobs": jobs,
            "parallel_trials": parallel_trials,
            "memory_limit": memory_limit,
            "time_column": time_column,
            "max_trials": trials,
            "portfolio": portfolio,
            "experiment": experiment,
            "drop": drop or (),
            "split": split,
            "run_name": run_name,
            "evaluate": not no_evaluate,
            "use_sensitive": use_sensitive,
            "allow_leaks": allow_leaks,
        }
    )
    outcome = train_model(
        open_context(ctx),
        source,
        config,
        sensitive=sensitive or (),
        register=not no_register,
        model_name=register,
        progress=training_view(ctx, not json and console.is_terminal) or False,
        data_options=_data_options(bins, pii),
    )
    result, registered = outcome.result, outcome.registered
    register_s = outcome.seconds.get("registration", 0.0)
    if json:
        summary = result.summary()
        summary["registered"] = (
            None if registered is None else f"{registered.name}@{registered.version}"
        )
        print_json(summary)
        return
    board = result.leaderboard
    shown = table(
        "rank",
        "model",
        "trial",
        f"{'holdout' if result.validation == 'holdout' else 'cv'} {result.metric}",
        "± folds",
        "fit s",
        "1 row ms",
        "params",
        title=f"Leaderboard ({result.task}, {result.metric})",
    )
    params = shown.columns[-1]
    params.no_wrap, params.overflow, params.max_width = True, "ellipsis", 60
    for row in board.head(15).itertuples(index=False):
        values = row._asdict()
        shown.add_row(
            str(values["rank"]),
            str(values["model"]),
            fmt_value(values["trial"]) if values["trial"] == values["trial"] else "-",
            fmt_value(values[result.metric]),
            fmt_value(values["cv_std"]) if values["cv_std"] == values["cv_std"] else "-",
            fmt_value(values["fit_s"]),
            fmt_value(values["one_row_ms"])
            if values["one_row_ms"] == values["one_row_ms"]
            else "-",
            str(values["params"]),
            style="bold" if values["chosen"] else None,
        )
    console.print(shown)
    if len(board) > 15:
        console.print(f"({len(board) - 15} more rows in the run's leaderboard.csv)")
    tests = "  ".join(f"{k} {fmt_value(v)}" for k, v in result.test_metrics.items())
    base = fmt_value(result.baseline_metrics.get(result.metric))
    where = f"split {result.split}, part test" if result.split else "held-out rows"
    console.print(
        f"test ({where}, {result.n_test_rows:,} rows; trained on {result.n_train_rows:,}): "
        f"{tests}   (trivial baseline {result.metric} {base})",
        markup=False,
    )
    if result.latency:
        console.print(_latency_line(result), markup=False)
    trials_text = ", ".join(f"{n} {state}" for state, n in sorted(result.n_trials.items()))
    console.print(
        f"{trials_text}; {result.elapsed:.1f}s of {result.time_budget:g}s; run {result.run_id}",
        markup=False,
    )
    for note in result.notes:
        console.print(f"note: {note}", markup=False)
    if result.evaluation is not None:
        _print_evaluation(result.evaluation)
    evaluation_s = result.evaluation.timings.get("total", 0.0) if result.evaluation else 0.0
    console.print(
        f"time: training {result.elapsed:.1f}s (budget {result.time_budget:g}s), "
        f"evaluation {evaluation_s:.1f}s, registration {register_s:.1f}s",
        markup=False,
    )
    if registered is not None:
        console.print(
            f"registered {registered.name}@{registered.version} "
            f"(promote: forgeml models promote {registered.name} {registered.version} "
            "--alias production --reason ...)",
            markup=False,
        )


def _print_evaluation(report: Any) -> None:
    lines = []
    for value in report.metrics.values[:4]:
        if value.lower is not None and value.upper is not None:
            lines.append(f"{value.name} {value.value:.4g} [{value.lower:.4g}, {value.upper:.4g}]")
    if lines:
        console.print("evaluation (95% intervals): " + "  ".join(lines), markup=False)
    if report.fairness is not None:
        flagged = report.fairness.findings
        console.print(f"fairness: {len(flagged)} finding(s) over the thresholds", markup=False)
        for finding in flagged[:5]:
            console.print(f"  - {finding.message}", markup=False)
    console.print("report: the run's evaluation/report.html artifact", markup=False)


def _latency_line(result: Any) -> str:
    """The returned model's measured prediction times, in one line: only the parts measured
    before the deadline (``TrainResult.latency``; the run's notes say what was not), and an
    estimate said to be one."""
    latency = result.latency
    call = "predict" if result.task == "regression" else "predict_proba"
    parts = []
    if "one_row_ms" in latency:
        parts.append(
            f"one row {latency['one_row_ms']:.2f} ms ({call} on a one-row DataFrame, median of 10)"
        )
    elif "one_row_ms_estimated" in latency:
        parts.append(
            f"one row ~{latency['one_row_ms_estimated']:.2f} ms (not measured: the sum of "
            "its members' times measured during the search)"
        )
    if "rows_1000_ms" in latency:
        parts.append(f"1,000 held-out rows {latency['rows_1000_ms']:.1f} ms")
    bound = result.config.max_latency_ms if result.config is not None else None
    return (
        "latency of the model: "
        + (", ".join(parts) or "not measured (no time left; see the notes)")
        + ("" if bound is None else f" (bound: {bound:g} ms for one row)")
    )
