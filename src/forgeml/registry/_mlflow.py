"""Import a model saved by MLflow (``mlflow.<flavor>.save_model``) into the registry.

The ``MLmodel`` file is read as YAML; MLflow itself is not needed. Supported flavors:

=========  =====================================================================================
flavor     model file
=========  =====================================================================================
lightgbm   ``model.lgb`` (a Booster, LightGBM's text model), or a scikit-learn wrapper
           (``model.skops`` / ``model.pkl``)
xgboost    ``model.ubj`` / ``model.json`` / ``model.xgb`` of an XGBoost scikit-learn wrapper
sklearn    ``model.skops`` or ``model.pkl`` (pickle / cloudpickle)
=========  =====================================================================================

An MLflow directory carries no digests, so its pickles and any skops types it does not declare
trusted run code from that directory. They are refused unless the caller passes
``trust=True`` (the directory is theirs). Once imported, the model is stored in forgeml's own
safe format and verified like any other version.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from forgeml.errors import InputError
from forgeml.registry._signature import InputColumn, Signature, infer_signature
from forgeml.security import Principal
from forgeml.store import ModelVersionRecord, Workspace

__all__ = ["import_mlflow"]

SUPPORTED = ("sklearn", "lightgbm", "xgboost")
_XGB_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRFClassifier", "XGBRFRegressor")
_MLFLOW_TYPES = {
    "double": ("numeric", "float64"),
    "float": ("numeric", "float32"),
    "long": ("integer", "int64"),
    "integer": ("integer", "int32"),
    "boolean": ("boolean", "bool"),
    "string": ("text", "object"),
    "datetime": ("datetime", "datetime64[ns]"),
}


def _read_mlmodel(folder: Path) -> dict[str, Any]:
    import yaml

    path = folder / "MLmodel"
    if not path.is_file():
        raise InputError(f"{folder} is not an MLflow model directory (no MLmodel file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise InputError(f"The MLmodel file of {folder} is not valid YAML: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("flavors"), dict):
        raise InputError(f"The MLmodel file of {folder} has no 'flavors' section")
    return data


def _inside(folder: Path, relative: Any) -> Path:
    if not isinstance(relative, str) or not relative:
        raise InputError(f"The MLmodel file of {folder} names no model file")
    path = (folder / relative).resolve()
    if folder.resolve() not in path.parents or not path.is_file():
        raise InputError(f"The MLmodel file names {relative!r}, not a file inside {folder}")
    return path


def _load_serialized(path: Path, conf: dict[str, Any], trust: bool) -> Any:
    fmt = conf.get("serialization_format") or ("skops" if path.suffix == ".skops" else "pickle")
    if fmt == "skops":
        import skops.io as sio

        declared = list(conf.get("skops_trusted_types") or [])
        extra = sorted(set(sio.get_untrusted_types(file=path)) - set(declared))
        if extra and not trust:
            raise InputError(
                f"{path.name} holds types its MLmodel does not declare trusted "
                f"({', '.join(extra[:5])}); import it with trust=True (--trust) only if you "
                "made this directory"
            )
        return sio.load(path, trusted=declared + extra)
    if not trust:
        raise InputError(
            f"{path.name} is a {fmt} file: loading it runs code from the directory. Import it "
            "with trust=True (--trust) only if you made this directory"
        )
    if fmt == "cloudpickle":
        import cloudpickle

        with open(path, "rb") as f:
            return cloudpickle.load(f)
    import pickle

    with open(path, "rb") as f:
        return pickle.load(f)  # the caller vouched for the directory (trust=True)


def _load(folder: Path, flavors: dict[str, Any], trust: bool) -> tuple[str, Any]:
    for name in SUPPORTED:
        conf = flavors.get(name)
        if not isinstance(conf, dict):
            continue
        if name == "sklearn":
            return name, _load_serialized(_inside(folder, conf.get("pickled_model")), conf, trust)
        path = _inside(folder, conf.get("data"))
        model_class = str(conf.get("model_class", ""))
        if name == "lightgbm":
            if model_class in ("", "lightgbm.basic.Booster"):
                import lightgbm as lgb

                return name, lgb.Booster(model_file=str(path))
            return name, _load_serialized(path, conf, trust)
        class_name = model_class.rsplit(".", 1)[-1]
        if not model_class.startswith("xgboost.") or class_name not in _XGB_CLASSES:
            raise InputError(
                f"Only XGBoost's scikit-learn wrappers ({', '.join(_XGB_CLASSES)}) can be "
                f"imported; the MLmodel names {model_class or 'a raw Booster'}"
            )
        import xgboost as xgb

        model = getattr(xgb, class_name)()
        model.load_model(str(path))
        return name, model
    found = ", ".join(sorted(k for k in flavors if k != "python_function")) or "python_function"
    raise InputError(
        f"The MLflow model has the flavor {found}; forgeml imports {', '.join(SUPPORTED)}"
    )


def _signature(data: dict[str, Any]) -> list[InputColumn] | None:
    inputs = (data.get("signature") or {}).get("inputs")
    if not inputs:
        return None
    specs = orjson.loads(inputs) if isinstance(inputs, str) else inputs
    columns = []
    for spec in specs:
        if spec.get("type") not in _MLFLOW_TYPES or "name" not in spec:
            return None  # tensors or unnamed columns: not a table signature
        kind, dtype = _MLFLOW_TYPES[spec["type"]]
        columns.append(InputColumn(str(spec["name"]), kind, dtype, True))
    return columns


def _open(column: InputColumn) -> InputColumn:
    return replace(column, nullable=True, categories=None, min=None, max=None)


def _input_example(folder: Path, data: dict[str, Any]) -> pd.DataFrame | None:
    info = data.get("saved_input_example_info") or {}
    relative = info.get("artifact_path")
    if not relative or info.get("type") not in (None, "dataframe"):
        return None
    path = _inside(folder, relative)
    example = orjson.loads(path.read_bytes())
    if isinstance(example, dict) and "columns" in example and "data" in example:
        return pd.DataFrame(example["data"], columns=example["columns"])
    if isinstance(example, dict) and "dataframe_split" in example:
        split = example["dataframe_split"]
        return pd.DataFrame(split["data"], columns=split["columns"])
    return None


def import_mlflow(
    path: str | Path,
    *,
    name: str,
    sample: pd.DataFrame | None = None,
    trust: bool = False,
    description: str | None = None,
    workspace: Workspace | None = None,
    actor: Principal | str | None = None,
) -> ModelVersionRecord:
    """Register the model of an MLflow model directory as the next version of ``name``.

    Args:
        path: a directory written by ``mlflow.sklearn|lightgbm|xgboost.save_model``.
        name: the model's name in the registry.
        sample: training rows (for the signature and drift baseline); default: the column
            types of the directory's input example or MLflow signature (categories and
            ranges left open), else the model's feature names.
        trust: allow pickles and undeclared skops types from this directory (they run code
            when loaded): only for a directory you made.
        description: what the model is for.
        workspace: where to register.
        actor: who imports it (default: the local user of the workspace's settings).

    Raises:
        InputError: not an MLflow model directory, an unsupported flavor, or an untrusted
            pickle.
    """
    from forgeml.registry._api import register

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"No MLflow model directory at {folder}")
    data = _read_mlmodel(folder)
    _flavor, model = _load(folder, data["flavors"], trust)
    signature = None
    if sample is None:
        # An input example is a handful of rows: it tells the columns and their types, not
        # which categories or ranges are valid, so those are left open.
        example = _input_example(folder, data)
        columns = (
            [_open(c) for c in infer_signature(example).inputs]
            if example is not None and len(example.columns)
            else _signature(data)
        )
        if columns:
            signature = Signature(tuple(columns), source="mlflow")
    return register(
        model,
        name=name,
        sample=sample,
        description=description or f"Imported from the MLflow model at {folder.resolve()}",
        signature=signature,
        workspace=workspace,
        actor=actor,
    )
