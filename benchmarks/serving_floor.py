"""The serving benchmark's floor: a bare server for one registered model.

Parse the body with orjson, encode the record, call the model's native predictor; no
validation, no metrics, no logging. Loading goes through forgeml's registry (startup only).

    python benchmarks/serving_floor.py HOME NAME@ALIAS lgbm|xgb|auto PORT
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import forgeml as fm
from forgeml.config import Settings
from forgeml.store import Workspace

NAN = float("nan")


def main() -> None:
    home, ref, kind, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    with Workspace(Settings(home=home)) as ws:
        loaded = fm.load(ref, workspace=ws)
    signature = loaded.signature
    names = list(signature.names)

    def features(categories: dict[str, list[Any]]) -> list[tuple[str, dict[Any, float] | None]]:
        """(name, value -> code or None) per feature, in the model's order."""
        return [
            (n, {v: float(i) for i, v in enumerate(categories[n])} if n in categories else None)
            for n in names
        ]

    if kind == "lgbm":  # Booster.predict on the encoded row
        booster = loaded.model
        categorical = [c.name for c in signature.inputs if c.dtype == "category"]
        encoding = features(dict(zip(categorical, booster.pandas_categorical, strict=True)))

        def call(row: np.ndarray) -> Any:
            return booster.predict(row, num_threads=1)

    elif kind == "xgb":  # inplace_predict on the encoded row, one thread
        xgb_booster = loaded.model.get_booster()
        xgb_booster.set_param({"nthread": 1})
        stored = xgb_booster.get_categories(export_to_arrow=True).to_arrow()
        encoding = features({n: a.to_pylist() for n, a in stored if a is not None})

        def call(row: np.ndarray) -> Any:
            return xgb_booster.inplace_predict(row)

    else:  # forgeml's TrainedModel, compiled to array lookups and native predictors
        compiled = loaded.model.compile_for_serving()
        encoding = []

        def call(row: np.ndarray) -> Any:
            raise AssertionError("not used")

    def encode(record: dict[str, Any]) -> np.ndarray:
        row = np.empty((1, len(encoding)))
        for j, (name, code) in enumerate(encoding):
            value = record.get(name)
            if value is None:
                row[0, j] = NAN
            elif code is not None:
                row[0, j] = code.get(value, NAN)
            else:
                row[0, j] = value
        return row

    async def predict(request: Request) -> Response:
        record = orjson.loads(await request.body())["records"][0]
        if kind == "auto":
            _, proba = compiled.predict_both({n: [record.get(n)] for n in names}, 1)
            out = np.asarray(proba).tolist()
        else:
            out = np.asarray(call(encode(record))).tolist()
        return Response(orjson.dumps({"predictions": out}), media_type="application/json")

    async def ready(request: Request) -> Response:
        return Response(b"ready")

    app = Starlette(
        routes=[
            Route("/v1/models/{name}/predict", predict, methods=["POST"]),
            Route("/health/ready", ready),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
