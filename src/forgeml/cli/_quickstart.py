"""``forgeml quickstart``: the main job, end to end, on the embedded default workspace."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from forgeml.cli._common import console, open_workspace, print_json


def quickstart(
    ctx: typer.Context,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random step.")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Walk the lifecycle on the shipped UCI Adult data: ingest, train, track.

    Creates the workspace if needed, stores the dataset in the artifact store, trains a
    gradient-boosted model on the census training split while logging its parameters and
    per-iteration validation loss, scores it on the held-out test split and stores the model.
    """
    import joblib
    import numpy as np
    import pandas as pd
    from rich.progress import Progress
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

    from forgeml.examples import adult_path
    from forgeml.tracking import start_run

    started = time.perf_counter()
    workspace = open_workspace(ctx)
    source = adult_path()
    frame = pd.read_csv(source)
    dataset_digest = workspace.artifacts.put_file(source)
    features = [c for c in frame.columns if c not in ("income", "split")]
    categorical = [c for c in features if frame[c].dtype == object or frame[c].dtype == "string"]
    X = frame[features].copy()
    for column in categorical:
        X[column] = X[column].astype("category")
    y = (frame["income"] == ">50K").astype(int).to_numpy()
    train = (frame["split"] == "train").to_numpy()
    params = {
        "model": "HistGradientBoostingClassifier",
        "learning_rate": 0.1,
        "max_iter": 200,
        "max_leaf_nodes": 31,
        "early_stopping": True,
        "validation_fraction": 0.1,
        "n_iter_no_change": 10,
        "random_state": seed,
    }
    with start_run(
        experiment="quickstart", name="adult-hgb", tags={"dataset": "adult"}, workspace=workspace
    ) as run:
        run.log_params(
            {
                **params,
                "dataset_digest": dataset_digest,
                "rows": len(frame),
                "features": len(features),
            }
        )
        run.log_artifact(source, name="data/adult.csv.gz")
        model = HistGradientBoostingClassifier(
            categorical_features="from_dtype",
            **{k: v for k, v in params.items() if k != "model"},
        )
        with Progress(console=console, transient=True, disable=json) as progress:
            task = progress.add_task("Training on the census training split", total=None)
            model.fit(X[train], y[train])
            progress.update(task, completed=1, total=1)
        for step, score in enumerate(model.validation_score_):
            run.log_metric("validation_neg_log_loss", float(score), step=step)
        proba = model.predict_proba(X[~train])[:, 1]
        metrics = {
            "test_accuracy": float(accuracy_score(y[~train], proba >= 0.5)),
            "test_roc_auc": float(roc_auc_score(y[~train], proba)),
            "test_log_loss": float(log_loss(y[~train], np.clip(proba, 1e-15, 1 - 1e-15))),
            "iterations": float(model.n_iter_),
        }
        run.log_metrics(metrics)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.joblib"
            joblib.dump(model, path)
            run.log_artifact(path, name="model/model.joblib")
    summary = {
        "workspace": str(workspace.settings.home.resolve()),
        "run_id": run.run_id,
        "dataset": {"name": "adult", "rows": len(frame), "digest": dataset_digest},
        "metrics": metrics,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if json:
        print_json(summary)
        return
    console.print(
        f"[bold green]Quickstart done[/] in {summary['seconds']}s, workspace {summary['workspace']}"
    )
    console.print(f"  data     adult: {len(frame):,} rows, stored as {dataset_digest[:12]}")
    console.print(f"  run      {run.run_id} (experiment 'quickstart')")
    console.print(
        f"  test     accuracy {metrics['test_accuracy']:.4f}, ROC AUC {metrics['test_roc_auc']:.4f}"
    )
    console.print(f"Next: forgeml runs show {run.run_id[:8]}")
