"""One small adapter per flavor: how a model is saved into a bundle, loaded back and run.

=========  ========================  ===========================================================
flavor     file                      format
=========  ========================  ===========================================================
lightgbm   ``model.txt``             LightGBM's own text model (a bare LightGBM sklearn wrapper)
xgboost    ``model.ubj``             XGBoost's UBJSON model (a bare XGBoost sklearn wrapper)
sklearn    ``model.skops``           ``skops.io``: no pickle; loading is restricted to the types
                                     recorded (and verified) in the manifest at save time
sklearn    ``model.joblib``          pickle, the last resort when skops cannot hold the model;
                                     flagged ``unsafe_format`` in the manifest
=========  ========================  ===========================================================

Adapters never read a file whose digest has not been checked: ``load`` is only called by the
bundle reader after verification.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from forgeml.errors import InputError

__all__ = ["FLAVORS", "Flavor", "flavor_for", "is_classifier", "task_of", "typed_labels"]


class Flavor(ABC):
    """Saves, loads and runs models of one kind."""

    name: ClassVar[str]

    @abstractmethod
    def save(self, model: Any, folder: Path, *, check: pd.DataFrame | None) -> dict[str, Any]:
        """Write the model into ``folder``; return the manifest's ``model`` section
        (``file``, ``format`` and whatever ``load`` needs)."""

    @abstractmethod
    def load(self, path: Path, spec: dict[str, Any]) -> Any:
        """Load a verified model file described by the manifest's ``model`` section."""

    def predict(self, model: Any, X: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
        """Predictions (labels for classifiers)."""
        return np.asarray(model.predict(X))

    def predict_proba(self, model: Any, X: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
        """Class probabilities, one column per class in the model's order."""
        if not hasattr(model, "predict_proba"):
            raise InputError("This model gives no probabilities (it is not a classifier)")
        return np.asarray(model.predict_proba(X))

    def predict_both(
        self, model: Any, X: pd.DataFrame, spec: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Predictions and class probabilities of a classifier (one pass where the flavor
        can give both at once)."""
        return self.predict(model, X, spec), self.predict_proba(model, X, spec)

    def explainable(self, model: Any, spec: dict[str, Any]) -> Any:
        """The object ``forgeml.evaluate.explain`` takes for this model."""
        return model


def _qualname(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


class LightGBMFlavor(Flavor):
    """A bare ``LGBMClassifier`` / ``LGBMRegressor`` (or a ``Booster``), stored as LightGBM's
    text model."""

    name = "lightgbm"

    def save(self, model: Any, folder: Path, *, check: pd.DataFrame | None) -> dict[str, Any]:
        getattr(model, "booster_", model).save_model(str(folder / "model.txt"))
        spec: dict[str, Any] = {
            "file": "model.txt",
            "format": "lightgbm-text",
            "estimator": _qualname(model),
            "classifier": is_classifier(model),
        }
        if spec["classifier"]:
            spec["classes"] = [
                c.item() if isinstance(c, np.generic) else c for c in classes_of(model)
            ]
        return spec

    def load(self, path: Path, spec: dict[str, Any]) -> Any:
        import lightgbm as lgb

        return lgb.Booster(model_file=str(path))

    def _probabilities(self, booster: Any, X: pd.DataFrame) -> np.ndarray:
        # What LGBMClassifier.predict_proba computes from its booster.
        raw = np.asarray(booster.predict(X))
        if raw.ndim == 1:
            return np.vstack((1.0 - raw, raw)).T
        return raw

    def _labels(self, proba: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
        classes = np.asarray(spec["classes"], dtype=object)
        return typed_labels(classes[np.argmax(proba, axis=1)], spec["classes"])

    def predict(self, model: Any, X: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
        if not spec.get("classifier"):
            return np.asarray(model.predict(X))
        return self._labels(self._probabilities(model, X), spec)

    def predict_both(
        self, model: Any, X: pd.DataFrame, spec: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        # The labels are the classes at the argmax of the probabilities: one booster call.
        proba = self.predict_proba(model, X, spec)
        return self._labels(proba, spec), proba

    def predict_proba(self, model: Any, X: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
        if not spec.get("classifier"):
            raise InputError("This model gives no probabilities (it is not a classifier)")
        return self._probabilities(model, X)

    def explainable(self, model: Any, spec: dict[str, Any]) -> Any:
        # The explainer takes the booster (exact TreeSHAP through ``pred_contrib``); the
        # class labels tell it the booster is a classifier.
        if spec.get("classifier") and not hasattr(model, "classes_"):
            model.classes_ = np.asarray(spec["classes"], dtype=object)
        return model


class XGBoostFlavor(Flavor):
    """A bare XGBoost sklearn wrapper, stored as XGBoost's UBJSON model."""

    name = "xgboost"
    _CLASSES: ClassVar[tuple[str, ...]] = (
        "XGBClassifier",
        "XGBRegressor",
        "XGBRFClassifier",
        "XGBRFRegressor",
        "XGBRanker",
    )

    def save(self, model: Any, folder: Path, *, check: pd.DataFrame | None) -> dict[str, Any]:
        # The booster's own writer: the wrapper's save_model only adds its estimator type,
        # which recent scikit-learn no longer exposes; load_model restores the rest.
        model.get_booster().save_model(str(folder / "model.ubj"))
        return {
            "file": "model.ubj",
            "format": "xgboost-ubj",
            "estimator": _qualname(model),
            "classifier": is_classifier(model),
        }

    def load(self, path: Path, spec: dict[str, Any]) -> Any:
        import xgboost as xgb

        class_name = str(spec["estimator"]).rsplit(".", 1)[-1]
        if class_name not in self._CLASSES:
            raise InputError(f"Unknown XGBoost estimator {spec['estimator']!r} in the manifest")
        model = getattr(xgb, class_name)()
        model.load_model(str(path))
        return model


class SklearnFlavor(Flavor):
    """Any fitted scikit-learn estimator or pipeline: skops, joblib as the last resort."""

    name = "sklearn"

    def predict_both(
        self, model: Any, X: pd.DataFrame, spec: dict[str, Any]
    ) -> tuple[np.ndarray, np.ndarray]:
        both = getattr(model, "predict_with_proba", None)
        if both is None:
            return super().predict_both(model, X, spec)
        labels, proba = both(X)  # a forgeml TrainedModel: one pass over its members
        return np.asarray(labels), np.asarray(proba)

    def explainable(self, model: Any, spec: dict[str, Any]) -> Any:
        # a forgeml model names the part its explainer handles exactly
        return getattr(model, "explainable_model", model)

    def save(self, model: Any, folder: Path, *, check: pd.DataFrame | None) -> dict[str, Any]:
        base = {"estimator": _qualname(model), "classifier": is_classifier(model)}
        failure = self._save_skops(model, folder, check)
        if failure is None:
            untrusted = self._untrusted(folder / "model.skops")
            return {**base, "file": "model.skops", "format": "skops", "trusted_types": untrusted}
        import joblib

        (folder / "model.skops").unlink(missing_ok=True)
        warnings.warn(
            f"skops cannot hold this model ({failure}); it is stored with joblib (pickle), "
            "which runs code when loaded. Only its verified digest protects it",
            UserWarning,
            stacklevel=4,
        )
        joblib.dump(model, folder / "model.joblib")
        return {**base, "file": "model.joblib", "format": "joblib", "unsafe_format": True}

    @staticmethod
    def _untrusted(path: Path) -> list[str]:
        import skops.io as sio

        return sorted(sio.get_untrusted_types(file=path))

    def _save_skops(self, model: Any, folder: Path, check: pd.DataFrame | None) -> str | None:
        """Save with skops and prove the round trip; the reason it failed, or ``None``."""
        import skops.io as sio

        path = folder / "model.skops"
        try:
            sio.dump(model, path)
            loaded = sio.load(path, trusted=self._untrusted(path))
        except Exception as e:  # skops raises many kinds for types it cannot hold
            return f"{type(e).__name__}: {str(e)[:200]}"
        if check is not None and len(check):
            try:
                same = np.array_equal(
                    np.asarray(model.predict(check)), np.asarray(loaded.predict(check))
                )
            except Exception as e:
                return f"the reloaded model fails to predict: {type(e).__name__}"
            if not same:
                return "the reloaded model predicts differently"
        return None

    def load(self, path: Path, spec: dict[str, Any]) -> Any:
        if spec["format"] == "skops":
            import skops.io as sio

            return sio.load(path, trusted=list(spec.get("trusted_types", [])))
        if spec["format"] == "joblib":
            import joblib

            return joblib.load(path)  # the bytes were verified against the registry first
        raise InputError(f"Unknown model format {spec['format']!r} in the manifest")


FLAVORS: dict[str, Flavor] = {
    f.name: f for f in (LightGBMFlavor(), XGBoostFlavor(), SklearnFlavor())
}


def flavor_for(model: Any) -> Flavor:
    """The flavor that stores ``model``: native formats for bare boosters, else scikit-learn.

    Raises:
        InputError: ``model`` is not a fitted estimator.
    """
    if not hasattr(model, "predict"):
        raise InputError(
            f"Register a fitted estimator, pipeline or training result; got {type(model).__name__}"
        )
    _check_fitted(model)
    module = type(model).__module__
    if module.startswith("lightgbm"):
        import lightgbm as lgb

        if isinstance(model, lgb.LGBMClassifier | lgb.LGBMRegressor | lgb.Booster):
            return FLAVORS["lightgbm"]
    if module.startswith("xgboost"):
        import xgboost as xgb

        if isinstance(model, xgb.XGBModel):
            return FLAVORS["xgboost"]
    return FLAVORS["sklearn"]


def _check_fitted(model: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise InputError(f"The {type(model).__name__} is not fitted; fit it first") from None
    except TypeError:  # not a scikit-learn estimator: trust that it is usable
        pass


def _booster_classes(model: Any) -> list[int] | None:
    """Class labels of a bare LightGBM ``Booster`` (``None``: not a classifier)."""
    if type(model).__module__.startswith("lightgbm") and type(model).__name__ == "Booster":
        objective = str(model.dump_model(num_iteration=0).get("objective", ""))
        if objective.startswith(("binary", "cross_entropy")):
            return [0, 1]
        if objective.startswith("multiclass"):
            return list(range(int(model.dump_model(num_iteration=0)["num_class"])))
    return None


def classes_of(model: Any) -> list[Any]:
    """The class labels of a classifier, in its output order."""
    found = _booster_classes(model)
    return found if found is not None else list(model.classes_)


def is_classifier(model: Any) -> bool:
    """Whether ``model`` is a classifier (it has ``classes_`` or says so)."""
    from sklearn.base import is_classifier as sk_is_classifier

    if _booster_classes(model) is not None:
        return True
    try:
        if sk_is_classifier(model):
            return True
    except Exception:  # objects without sklearn tags
        pass
    return hasattr(model, "classes_") and hasattr(model, "predict_proba")


def task_of(model: Any) -> str:
    """``binary``, ``multiclass`` or ``regression`` from the fitted model."""
    if is_classifier(model):
        return "binary" if len(classes_of(model)) == 2 else "multiclass"
    return "regression"


def typed_labels(labels: np.ndarray, classes: list[Any]) -> np.ndarray:
    """Labels as the dtype the fitted model returned them in."""
    if all(isinstance(c, bool) for c in classes):
        return labels.astype(bool)
    if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
        return labels.astype(np.int64)
    if all(isinstance(c, int | float) for c in classes):
        return labels.astype(np.float64)
    return labels
