"""``evaluate`` end to end: files, run artifacts, the card, slices, bad input, the HTML report
in a real browser with no network request."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from forgeml.config import Settings
from forgeml.errors import InputError
from forgeml.evaluate import EvaluationReport, evaluate
from forgeml.store import Workspace
from forgeml.tracking import start_run

CHROMIUM = Path("/usr/bin/chromium")


def compas_model(compas: pd.DataFrame) -> tuple[Pipeline, pd.DataFrame, pd.Series]:
    """A recidivism model on columns that do not leak the label (README caveats)."""
    columns = [
        "age",
        "priors_count",
        "juv_fel_count",
        "juv_misd_count",
        "c_charge_degree",
        "sex",
        "race",
        "age_cat",
    ]
    X, y = compas[columns], compas["two_year_recid"]
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["age", "priors_count", "juv_fel_count", "juv_misd_count"]),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore"),
                ["c_charge_degree", "sex", "race", "age_cat"],
            ),
        ]
    )
    model = Pipeline([("pre", pre), ("model", LogisticRegression(max_iter=500))])
    train = np.arange(len(X)) % 3 != 0
    model.fit(X[train], y[train])
    return model, X[~train].reset_index(drop=True), y[~train].reset_index(drop=True)


@pytest.fixture(scope="module")
def evaluated(compas, tmp_path_factory):
    """(report, the run record) of one evaluation logged to a run."""
    model, X, y = compas_model(compas)
    home = tmp_path_factory.mktemp("ws")
    with Workspace(Settings(home=home)) as ws, start_run("compas", workspace=ws) as run:
        report = evaluate(
            model,
            X,
            y,
            sensitive=["race", "sex"],
            run=run,
            n_bootstrap=200,
            output_dir=tmp_path_factory.mktemp("out"),
            model_name="recidivism",
            dataset_name="compas",
            intended_use="Research on audit tooling only.",
        )
        run_id = run.run_id
    with Workspace(Settings(home=home)) as ws:
        record = ws.runs.get_run(run_id)
    return report, record


@pytest.fixture
def binary_report(evaluated) -> EvaluationReport:
    return evaluated[0]


def test_binary_evaluation_writes_every_file(binary_report: EvaluationReport):
    r = binary_report
    assert r.task == "binary"
    assert 0.65 < r.metrics["roc_auc"].value < 0.8
    names = dict(r.plots)
    for plot in (
        "confusion_matrix",
        "roc_curve",
        "pr_curve",
        "calibration",
        "threshold_curve",
        "feature_importance",
        "shap_summary",
    ):
        assert names[plot].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    assert r.report_path is not None and r.report_path.is_file()
    assert (r.output_dir / "evaluation.json").is_file()
    card = (r.output_dir / "card.md").read_text()
    assert "Research on audit tooling only." in card and "## Fairness" in card
    assert r.explanation_method == "shap.LinearExplainer"
    assert r.importance[0][0] in {"priors_count", "age", "age_cat"}
    assert {a.column for a in r.fairness.audits} == {"race", "sex"}


def test_run_gets_metrics_and_the_evaluation_folder(evaluated):
    binary_report, record = evaluated
    assert record.metrics["eval_roc_auc"] == pytest.approx(binary_report.metrics["roc_auc"].value)
    assert "eval_roc_auc_lower" in record.metrics
    assert any(a.path == "evaluation" and a.kind == "dir" for a in record.artifacts)


def test_slices_are_worst_first_with_sizes(binary_report: EvaluationReport):
    slices = binary_report.slices
    assert slices
    gaps = [s.gap for s in slices]
    assert gaps == sorted(gaps)  # accuracy: the lowest first
    assert all(s.size >= 20 for s in slices)
    numeric = [s for s in slices if s.column == "age"]
    assert numeric and all(s.value.startswith("(") for s in numeric)  # quantile bins


def test_card_is_structured_and_renders(binary_report: EvaluationReport):
    card = binary_report.card(out_of_scope="Decisions about people.")
    data = card.to_dict()
    assert data["task"] == "binary" and data["data"]["rows"] == binary_report.metrics.n_rows
    assert {m["name"] for m in data["metrics"]} >= {"roc_auc", "accuracy", "log_loss"}
    assert data["fairness"][0]["disparities"]["equalized_odds_difference"]["value"] >= 0
    assert any("fairness audit flagged" in text for text in data["limitations"])
    assert "Decisions about people." in card.to_markdown()


def test_regression_evaluation(tmp_path: Path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=400), "b": rng.choice(["x", "y"], 400)})
    y = X["a"] * 3 + (X["b"] == "x") + rng.normal(0, 0.3, 400)
    model = HistGradientBoostingRegressor(max_iter=30, categorical_features="from_dtype")
    X["b"] = X["b"].astype("category")
    model.fit(X, y)
    r = evaluate(model, X, y, output_dir=tmp_path, n_bootstrap=100)
    assert r.task == "regression" and r.fairness is None
    assert r.metrics["rmse"].value == pytest.approx(
        float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))
    )
    assert {"residuals", "predicted_vs_actual"} <= dict(r.plots).keys()
    assert any("No fairness audit" in n for n in r.notes)
    # shap cannot read native categorical columns: said in the notes, not an error
    assert any("No explanation" in n and "not numeric" in n for n in r.notes)
    assert r.importance == ()


def test_bad_input(compas, tmp_path: Path):
    model, X, y = compas_model(compas)
    with pytest.raises(InputError, match="same number of rows"):
        evaluate(model, X, y[:-5], output_dir=tmp_path, n_bootstrap=0, explain=False)
    unseen = y.copy()
    unseen.iloc[:3] = 2
    with pytest.raises(InputError, match="not trained on"):
        evaluate(model, X, unseen, output_dir=tmp_path, n_bootstrap=0, explain=False)
    with pytest.raises(InputError, match="single group"):
        evaluate(
            model,
            X.assign(county="Broward"),
            y,
            sensitive=["county"],
            output_dir=tmp_path,
            n_bootstrap=0,
            explain=False,
        )
    with pytest.raises(InputError, match="not columns"):
        evaluate(model, X, y, sensitive=["religion"], output_dir=tmp_path, n_bootstrap=0)


def test_report_opens_offline_in_chromium(binary_report: EvaluationReport):
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM}")
    sync_api = pytest.importorskip("playwright.sync_api")
    url = binary_report.report_path.resolve().as_uri()
    requests: list[str] = []
    with warnings.catch_warnings(), sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url, wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.alt, e.complete, e.naturalWidth])"
            )
            title = page.title()
        finally:
            browser.close()
    assert title == "Evaluation: recidivism"
    assert len(images) == len(binary_report.plots)
    for alt, complete, width in images:
        assert complete and width > 0, alt
    # data: URIs are not network requests; the only request is the file itself
    network = [u for u in requests if not u.startswith("data:")]
    assert network == [url]
