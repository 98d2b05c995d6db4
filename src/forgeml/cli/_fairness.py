"""``forgeml fairness audit``: audit a table of predictions for each sensitive column."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from forgeml.cli._common import console, print_json, styled, table
from forgeml.errors import InputError

app = typer.Typer(no_args_is_help=True, help="Audit predictions for disparities between groups.")


def _read_table(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise InputError(f"--predictions: no file at {path}")
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, low_memory=False)
    except (ValueError, OSError) as e:
        raise InputError(f"--predictions: cannot read {path} as a table ({e})") from None


def _cell(value: float, lower: float, upper: float, percent: bool = True) -> str:
    if not math.isfinite(value):
        return "-"
    if percent:
        text = f"{value * 100:.2f}%"
        bounds = f"[{lower * 100:.1f}, {upper * 100:.1f}]"
    else:
        text = f"{value:.3f}"
        bounds = f"[{lower:.3f}, {upper:.3f}]"
    if math.isfinite(lower) and math.isfinite(upper):
        text += " " + bounds
    return text


@app.command("audit")
def audit(
    predictions: Annotated[
        Path, typer.Option("--predictions", help="CSV (or Parquet) file, one row per decision.")
    ],
    label: Annotated[str, typer.Option("--label", help="Column of true labels.")],
    sensitive: Annotated[
        list[str], typer.Option("--sensitive", help="Sensitive column (repeatable).")
    ],
    score: Annotated[
        str | None, typer.Option("--score", help="Numeric score column (with --threshold).")
    ] = None,
    prediction: Annotated[
        str | None, typer.Option("--prediction", help="Column of predicted labels.")
    ] = None,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Positive decision when score >= this.")
    ] = 0.5,
    positive: Annotated[
        str | None,
        typer.Option("--positive", help="The positive label (default 1, or the larger label)."),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap replicates for the intervals.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per-group selection rate, accuracy, TPR, FPR, FNR and the disparities between groups."""
    from forgeml.evaluate import audit_predictions

    if (score is None) == (prediction is None):
        raise InputError("Give exactly one of --score and --prediction")
    if bootstrap < 0:
        raise InputError(f"--bootstrap must be at least 0; got {bootstrap}")
    frame = _read_table(predictions)
    report = audit_predictions(
        frame,
        label=label,
        sensitive=sensitive,
        score=score,
        prediction=prediction,
        threshold=threshold,
        positive_label=positive,
        n_bootstrap=bootstrap,
        seed=seed,
    )
    if json:
        print_json(report.to_dict())
        return
    level = f"{report.confidence:.0%}"
    for a in report.audits:
        t = table(
            "group",
            "n",
            "selection rate",
            "accuracy",
            "TPR",
            "FPR",
            "FNR",
            title=f"{a.column} (positive label {report.positive_label!r}; {level} intervals)",
        )
        for g in (*a.groups, None):
            values = a.overall if g is None else g.values
            size = report.n_rows if g is None else g.size
            name = styled("all rows", "bold") if g is None else g.group
            t.add_row(name, str(size), *(_cell(v.value, v.lower, v.upper) for v in values))
        console.print(t)
        d = table("disparity", "value", "threshold", "flagged")
        for v in a.disparities:
            limit = getattr(report.thresholds, v.name)
            flagged = any(f.metric == v.name and f.group is None for f in a.findings)
            d.add_row(
                v.name,
                _cell(v.value, v.lower, v.upper, percent=False),
                f"{limit:g}",
                styled("yes", "red") if flagged else "no",
            )
        console.print(d)
        for f in a.findings:
            console.print("  ", styled("finding", "yellow"), f" {f.message}", sep="")
        console.print()
