"""``PredictionService`` without HTTP: a real registered model (UCI Adult), a list as the
prediction log, the service's own metrics."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

import forgeml as fm
from forgeml.registry import load
from forgeml.serve import Rows, ServeOptions
from forgeml.serve._routing import Route
from forgeml.serve._runners import runner_for
from forgeml.serve._service import PredictionService
from forgeml.serve._types import RequestError
from forgeml.store import PredictionRecord

from .conftest import TARGET, records


class ListLog:
    def __init__(self) -> None:
        self.records: list[PredictionRecord] = []

    def submit(self, record: PredictionRecord) -> bool:
        self.records.append(record)
        return True

    def stats(self) -> dict[str, Any]:
        return {"depth": 0}


def columns(rows: list[dict[str, Any]]) -> Rows:
    return Rows(columns={k: [r[k] for r in rows] for k in rows[0]}, n=len(rows))


def run_service(ws, route: Route, body, **options: Any) -> tuple[Any, PredictionService, ListLog]:
    """Install ``route`` of adult-lgbm in a fresh service, run ``body(service)``, stop."""
    service = PredictionService(ServeOptions(models=("adult-lgbm@production",), **options))
    log = ListLog()
    service.log = log

    async def main() -> Any:
        fresh = {}
        for version in route.versions:
            model = load(f"adult-lgbm@{version}", workspace=ws, for_serving=True)
            fresh[version] = (model, runner_for(model))
        await service.install("adult-lgbm", route, fresh)
        try:
            return await body(service)
        finally:
            await service.stop()

    return asyncio.run(main()), service, log


def sample(service: PredictionService, name: str, labels: dict[str, str]) -> float | None:
    return service.metrics.registry.get_sample_value(name, labels)


def test_predictions_are_the_models_and_are_logged(serve_ws, adult) -> None:
    rows = records(adult, 25, start=40)

    async def body(service: PredictionService) -> Any:
        return await service.predict(
            "adult-lgbm",
            columns(rows),
            protocol="native",
            request_id="r-1",
            started=time.perf_counter(),
        )

    outputs, service, log = run_service(serve_ws, Route(split=((2, 1.0),)), body)
    model = fm.load("adult-lgbm@2", workspace=serve_ws)
    frame = adult.drop(columns=[TARGET]).iloc[40:65]
    assert outputs.predictions == model.predict(frame).tolist()
    np.testing.assert_allclose(outputs.probabilities, model.predict_proba(frame), atol=1e-12)
    assert (outputs.version, outputs.request_id) == (2, "r-1")
    [record] = log.records
    assert (record.request_id, record.version, record.role, record.n_rows) == (
        "r-1",
        2,
        "primary",
        25,
    )
    assert record.outputs["predictions"] == outputs.predictions
    labels = {"model": "adult-lgbm", "version": "2", "protocol": "native", "status": "200"}
    assert sample(service, "forgeml_requests_total", labels) == 1.0
    rows_labels = {"model": "adult-lgbm", "version": "2"}
    assert sample(service, "forgeml_predicted_rows_total", rows_labels) == 25.0


def test_the_shadow_is_logged_never_returned(serve_ws, adult) -> None:
    rows = records(adult, 3)

    async def body(service: PredictionService) -> list[int]:
        answered = []
        for i in range(4):
            out = await service.predict(
                "adult-lgbm",
                columns(rows),
                protocol="v2",
                request_id=f"r-{i}",
                started=time.perf_counter(),
            )
            answered.append(out.version)
        return answered

    route = Route(split=((1, 1.0),), shadow=3, shadow_fraction=1.0)
    answered, _, log = run_service(serve_ws, route, body)
    assert answered == [1, 1, 1, 1]
    roles = sorted((r.request_id, r.role, r.version) for r in log.records)
    assert roles == sorted(
        [(f"r-{i}", "primary", 1) for i in range(4)] + [(f"r-{i}", "shadow", 3) for i in range(4)]
    )


@pytest.mark.parametrize("policy", ["pass", "error"])
def test_unseen_categories_are_counted_per_column(serve_ws, adult, policy) -> None:
    rows = records(adult, 4, start=10)
    rows[0]["workclass"] = "Astronaut"
    rows[2]["workclass"] = "Pirate"
    rows[3]["native_country"] = "Atlantis"

    async def body(service: PredictionService) -> Any:
        try:
            return await service.predict(
                "adult-lgbm",
                columns(rows),
                protocol="native",
                request_id="u",
                started=time.perf_counter(),
            )
        except RequestError as e:
            return e

    answer, service, log = run_service(
        serve_ws, Route(split=((1, 1.0),)), body, unknown_categories=policy
    )
    labels = {"model": "adult-lgbm", "version": "1"}
    workclass = sample(
        service, "forgeml_unseen_categories_total", {**labels, "column": "workclass"}
    )
    country = sample(
        service, "forgeml_unseen_categories_total", {**labels, "column": "native_country"}
    )
    if policy == "pass":
        assert answer.predictions and len(answer.predictions) == 4
        assert (workclass, country) == (2.0, 1.0)
        assert len(log.records) == 1
    else:  # refused at the first unseen value, which is counted; nothing logged
        assert isinstance(answer, RequestError) and answer.status == 422
        assert answer.field == "workclass" and "Astronaut" in answer.message
        assert (workclass, country) == (1.0, None)
        assert log.records == []


def test_an_unknown_or_loading_model_is_refused(serve_ws) -> None:
    service = PredictionService(ServeOptions(models=("adult-lgbm@production",)))
    with pytest.raises(RequestError) as loading:
        service.entry("adult-lgbm")
    assert loading.value.status == 503 and loading.value.headers["Retry-After"] == "1"
    with pytest.raises(RequestError) as unknown:
        service.entry("nope")
    assert unknown.value.status == 404 and unknown.value.field == "model"
    assert service.waiting() == {"adult-lgbm": "loading"}
