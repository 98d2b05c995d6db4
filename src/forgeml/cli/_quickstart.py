"""``forgeml quickstart``: the main job, end to end, on the embedded default workspace."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from forgeml.cli._common import console, open_workspace, print_json
from forgeml.cli._live import training_view

# ``fnlwgt`` is a census sampling weight, not a property of the person.
_DROP = ("fnlwgt", "split")


def quickstart(
    ctx: typer.Context,
    time_budget: Annotated[
        float, typer.Option("--time-budget", help="Seconds of AutoML search.")
    ] = 30.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random step.")] = 0,
    json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Walk the lifecycle on the shipped UCI Adult census data.

    Adds the data as a versioned, profiled dataset; searches models within the time budget
    (one tracked run); evaluates the best on held-out rows with intervals and a fairness
    audit by sex and race; registers it as a verified bundle; promotes it to ``production``;
    loads it back and predicts new rows.
    """
    import forgeml as fm
    from forgeml.errors import InputError
    from forgeml.examples import load_adult

    if time_budget <= 0:
        raise InputError(f"--time-budget must be more than zero; got {time_budget}")
    started = time.perf_counter()
    steps: dict[str, float] = {}
    workspace = open_workspace(ctx)

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        steps[name] = round(now - since, 2)
        if not json:
            console.print(f"[green]✓[/] {name} ({steps[name]:.1f}s)")
        return now

    mark = time.perf_counter()
    frame = load_adult()
    version = fm.data.add(
        frame,
        name="adult",
        target="income",
        sensitive=["sex", "race"],
        workspace=workspace,
    )
    errors = version.quality.of("error") if version.quality is not None else ()
    mark = step(f"data: adult@{version.version}, {version.n_rows:,} rows, profiled", mark)

    view = training_view(ctx, not json and console.is_terminal)
    result = fm.train.train(
        f"adult@{version.version}",
        time_budget=time_budget,
        seed=seed,
        experiment="quickstart",
        workspace=workspace,
        progress=view or False,
        evaluate=True,
        drop=_DROP,
    )
    if view is not None:
        view.close()
    mark = step(
        f"train: {sum(result.n_trials.values())} trials, best {result.best.get('model')}", mark
    )

    model_version = fm.register(result, name="adult-income", workspace=workspace)
    fm.registry.promote(
        "adult-income",
        model_version.version,
        alias="production",
        reason="quickstart: best model of the search",
        workspace=workspace,
    )
    mark = step(f"register: adult-income@{model_version.version} -> production", mark)

    model = fm.load("adult-income@production", workspace=workspace)
    rows = frame.drop(columns=["income", *_DROP]).sample(5, random_state=seed)
    proba = model.predict_proba(rows)[:, list(model.signature.classes or []).index(">50K")]
    mark = step("load and predict 5 rows", mark)

    served = _serve_and_ask(workspace, rows, frame.loc[rows.index, "income"].tolist())
    step(
        f"serve: {served['url']} answered in {served['ms']:.1f} ms (version "
        f"{served['version']}), prediction logged, label attached",
        mark,
    )

    summary: dict[str, Any] = {
        "workspace": str(workspace.settings.home.resolve()),
        "dataset": {
            "ref": f"adult@{version.version}",
            "rows": version.n_rows,
            "digest": version.digest,
            "quality_errors": len(errors),
        },
        "run_id": result.run_id,
        "best_model": result.best,
        "test_metrics": result.test_metrics,
        "evaluation": _evaluation(result.evaluation),
        "model": f"adult-income@{model_version.version}",
        "predictions": [round(float(p), 4) for p in proba],
        "served": served,
        "seconds": round(time.perf_counter() - started, 2),
        "steps": steps,
    }
    if json:
        print_json(summary)
        return
    auc = summary["evaluation"].get("roc_auc")
    console.print(
        f"\n[bold]Quickstart done[/] in {summary['seconds']}s, workspace {summary['workspace']}"
    )
    if auc:
        console.print(
            f"  test ROC AUC {auc['value']:.4f} (95% interval "
            f"{auc['lower']:.4f} .. {auc['upper']:.4f}), "
            f"{summary['evaluation']['fairness_findings']} fairness finding(s)"
        )
    console.print(f"  P(income > 50K) for 5 census rows: {summary['predictions']}")
    console.print("Next:")
    console.print(f"  forgeml runs show {result.run_id[:8]}")
    console.print("  forgeml models show adult-income@production")
    console.print(
        "  forgeml serve adult-income@production   # then open http://127.0.0.1:8000/docs"
    )
    console.print(f"  forgeml data report adult@{version.version} --html adult.html")


def _evaluation(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    found: dict[str, Any] = {
        v.name: {"value": v.value, "lower": v.lower, "upper": v.upper}
        for v in report.metrics.values
    }
    found["fairness_findings"] = len(report.fairness.findings) if report.fairness else 0
    return found


def _serve_and_ask(workspace: Any, rows: Any, labels: list[Any]) -> dict[str, Any]:
    """Start the prediction server on a free port, ask it for ``rows`` over HTTP, send the
    true labels as feedback, stop it (which writes the prediction log)."""
    import socket
    import threading
    import urllib.request

    import uvicorn

    from forgeml._json import dumps, loads
    from forgeml.errors import ForgeMLError
    from forgeml.serve import ServeOptions, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    options = ServeOptions(models=("adult-income@production",), port=port, access_log=False)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(options, workspace=workspace),
            host="127.0.0.1",
            port=port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, name="forgeml-quickstart-server", daemon=True)
    thread.start()

    def post(path: str, body: Any) -> dict[str, Any]:
        request = urllib.request.Request(
            url + path,
            data=dumps(body),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(loads(response.read()))

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ForgeMLError("The prediction server did not become ready in 60 s")
            time.sleep(0.05)
        records = rows.astype(object).where(rows.notna(), None).to_dict(orient="records")
        started = time.perf_counter()
        answer = post("/v1/models/adult-income/predict", {"records": records})
        ms = (time.perf_counter() - started) * 1000
        post("/v1/feedback", {"request_id": answer["request_id"], "labels": labels})
    finally:
        server.should_exit = True
        thread.join(timeout=60)
    return {
        "url": url,
        "request_id": answer["request_id"],
        "version": answer["version"],
        "predictions": answer["predictions"],
        "ms": round(ms, 2),
    }
