"""Use case: the quickstart, the whole lifecycle end to end on the shipped census data."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from forgeml.errors import InputError
from forgeml.workflows._context import Context, use_case

if TYPE_CHECKING:
    from forgeml.train._progress import ProgressHandler

__all__ = ["quickstart"]

# ``fnlwgt`` is a census sampling weight, not a property of the person.
_DROP = ("fnlwgt", "split")


@use_case("quickstart")
def quickstart(
    ctx: Context,
    *,
    time_budget: float = 30.0,
    seed: int = 0,
    progress: bool | ProgressHandler = False,
    on_step: Callable[[str, float], None] | None = None,
) -> dict[str, Any]:
    """Walk the lifecycle on the shipped UCI Adult census data.

    Adds the data as a versioned, profiled dataset; searches models within the time budget
    (one tracked run, its hold-out recorded with the data); evaluates the best on those rows
    with intervals and a fairness audit by sex and race; registers it as a verified bundle;
    promotes it to ``production``; loads it back and predicts new rows; serves it over HTTP
    on a free local port, asks it for predictions and sends the true labels as feedback.

    Args:
        ctx: where and who (recorded on every step).
        time_budget: seconds of AutoML search.
        seed: seed of every random step.
        progress: a callable given each ``TrainingProgress`` event of the search (an
            interface draws them), or ``True`` for log lines.
        on_step: called with each finished step's description and seconds.

    Returns:
        A JSON-ready summary: dataset, run, scores, model, predictions, served answer, timings.

    Raises:
        InputError: a budget that is not positive.
    """
    from forgeml import registry
    from forgeml.examples import load_adult
    from forgeml.train import TrainConfig
    from forgeml.workflows._data import add_data
    from forgeml.workflows._models import promote
    from forgeml.workflows._train import train_model

    if time_budget <= 0:
        raise InputError(f"--time-budget must be more than zero; got {time_budget}")
    started = time.perf_counter()
    steps: dict[str, float] = {}
    workspace = ctx.workspace

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        steps[name] = round(now - since, 2)
        if on_step is not None:
            on_step(name, steps[name])
        return now

    mark = time.perf_counter()
    frame = load_adult()
    version = add_data(ctx, frame, name="adult", target="income", sensitive=["sex", "race"]).version
    errors = version.quality.of("error") if version.quality is not None else ()
    mark = step(f"data: adult@{version.version}, {version.n_rows:,} rows, profiled", mark)

    outcome = train_model(
        ctx,
        version.ref,
        TrainConfig(
            time_budget=time_budget,
            seed=seed,
            experiment="quickstart",
            evaluate=True,
            drop=_DROP,
        ),
        register=False,
        progress=progress,
    )
    result = outcome.result
    mark = step(
        f"train: {sum(result.n_trials.values())} trials, best {result.best.get('model')}", mark
    )

    model_version = registry.register(
        result, name="adult-income", workspace=workspace, actor=ctx.principal
    )
    promote(
        ctx,
        "adult-income",
        model_version.version,
        alias="production",
        reason="quickstart: best model of the search",
    )
    mark = step(f"register: adult-income@{model_version.version} -> production", mark)

    model = registry.load("adult-income@production", workspace=workspace)
    rows = frame.drop(columns=["income", *_DROP]).sample(5, random_state=seed)
    proba = model.predict_proba(rows)[:, list(model.signature.classes or []).index(">50K")]
    mark = step("load and predict 5 rows", mark)

    served = _serve_and_ask(ctx, rows, frame.loc[rows.index, "income"].tolist())
    step(
        f"serve: {served['url']} answered in {served['ms']:.1f} ms (version "
        f"{served['version']}), prediction logged, label attached",
        mark,
    )
    return {
        "workspace": str(workspace.settings.home.resolve()),
        "dataset": {
            "ref": f"adult@{version.version}",
            "rows": version.n_rows,
            "digest": version.digest,
            "quality_errors": len(errors),
        },
        "run_id": result.run_id,
        "split": result.split,
        "best_model": result.best,
        "test_metrics": result.test_metrics,
        "evaluation": _evaluation(result.evaluation),
        "model": f"adult-income@{model_version.version}",
        "predictions": [round(float(p), 4) for p in proba],
        "served": served,
        "seconds": round(time.perf_counter() - started, 2),
        "steps": steps,
    }


def _evaluation(report: Any) -> dict[str, Any]:
    if report is None:
        return {}
    found: dict[str, Any] = {
        v.name: {"value": v.value, "lower": v.lower, "upper": v.upper}
        for v in report.metrics.values
    }
    found["fairness_findings"] = len(report.fairness.findings) if report.fairness else 0
    return found


class _ActingAs:
    """Pure ASGI middleware: every request acts as the quickstart's principal.

    The quickstart's server listens on 127.0.0.1 for its own two requests only, made by the
    process that was authorized to run the quickstart; its feedback is recorded (and audited)
    as that principal."""

    def __init__(self, app: Any, principal: Any) -> None:
        self.app, self.principal = app, principal

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from forgeml.serve import PRINCIPAL_SCOPE_KEY

        if scope["type"] == "http":
            scope = {**scope, PRINCIPAL_SCOPE_KEY: self.principal}
        await self.app(scope, receive, send)


def _serve_and_ask(ctx: Context, rows: Any, labels: list[Any]) -> dict[str, Any]:
    """Start the prediction server on a free port, ask it for ``rows`` over HTTP, send the
    true labels as feedback (as ``ctx.principal``), stop it (which writes the prediction
    log)."""
    import socket
    import threading
    import urllib.request

    import uvicorn
    from starlette.middleware import Middleware

    from forgeml._json import dumps, loads
    from forgeml.errors import ForgeMLError
    from forgeml.serve import ServeOptions, create_app

    workspace = ctx.workspace

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    url = f"http://127.0.0.1:{port}"
    options = ServeOptions(models=("adult-income@production",), port=port, access_log=False)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(
                options,
                workspace=workspace,
                middleware=[Middleware(_ActingAs, principal=ctx.principal)],  # type: ignore[arg-type]
            ),
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
