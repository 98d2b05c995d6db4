"""``LoadedModel``: a verified model version, ready to predict.

It has the estimator surface scikit-learn's tools expect (``classes_``, ``predict``,
``predict_proba``, ``feature_names_in_``, estimator tags), so a registered model of any flavor
is evaluated, plotted or calibrated like a fitted estimator, with every input checked against
its signature first.

A binary classifier's decision threshold lives in the bundle's manifest (``decision``): labels
are the positive class where its probability is at least the threshold, for every flavor and
every caller (``predict``, batch scoring, each server protocol, evaluation). A bundle never
changes; a new threshold is a new version (``forgeml models threshold``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.metaestimators import available_if

from forgeml.errors import InputError
from forgeml.registry._bundle import CARD, PROFILE, REFERENCE, VerifiedBundle
from forgeml.registry._flavors import FLAVORS, typed_labels
from forgeml.registry._signature import Signature
from forgeml.security import PiiKey
from forgeml.store import ModelVersionRecord

__all__ = ["LoadedModel"]


class LoadedModel:
    """A registered model version loaded from its verified bundle.

    Every call checks its input rows against the signature first (see
    ``forgeml.registry.Signature.check``). Safe to call from several threads for the
    LightGBM, XGBoost and scikit-learn flavors (prediction does not mutate the model).

    Attributes:
        name: the model's name.
        version: the version number.
        record: the registry's record of the version at load time.
        signature: what the model takes and gives.
        metadata: the bundle's manifest (a copy).
        unknown_categories: ``"error"`` (default) refuses categories never seen in training;
            ``"pass"`` gives them to the model with a warning.
    """

    def __init__(
        self,
        record: ModelVersionRecord,
        bundle: VerifiedBundle,
        model: Any,
        *,
        unknown_categories: str = "error",
        pii_key: PiiKey | None = None,
    ) -> None:
        from forgeml.security import PiiPolicy

        self.record = record
        self.unknown_categories = unknown_categories
        self.name = record.name
        self.version = record.version
        self._bundle = bundle
        self._manifest = bundle.manifest
        self._model = model
        self._flavor = FLAVORS[bundle.manifest["flavor"]]
        self.signature = Signature.from_dict(bundle.manifest["signature"])
        self.pii = PiiPolicy.from_dict(bundle.manifest.get("pii"))
        # the input columns whose values the model saw hashed or masked (its training data
        # was stored under the policy): raw values given to it are transformed the same way
        self._pii_inputs = [c for c in self.pii.changed if c in set(self.signature.names)]
        self._pii_key = pii_key
        decision = bundle.manifest.get("decision") or {}
        threshold = decision.get("threshold")
        binary = self.signature.classes is not None and len(self.signature.classes) == 2
        self._threshold: float | None = (
            float(threshold) if binary and threshold is not None else None
        )

    @property
    def metadata(self) -> dict[str, Any]:
        """The bundle's manifest: flavor, task, signature, metrics, lineage, requirements..."""
        import copy

        return copy.deepcopy(self._manifest)

    @property
    def task(self) -> str | None:
        """``binary``, ``multiclass``, ``regression``..."""
        return self.signature.task

    @property
    def classes(self) -> tuple[Any, ...] | None:
        """The class labels in the order of ``predict_proba``'s columns."""
        return self.signature.classes

    @property
    def threshold(self) -> float | None:
        """The decision threshold on the positive class's probability (binary classifiers
        whose bundle records one), else ``None``: the most probable class."""
        return self._threshold

    @property
    def classes_(self) -> np.ndarray:
        """The class labels, in ``predict_proba``'s column order (classifiers only)."""
        if self.classes is None:
            raise AttributeError("classes_: this model is not a classifier")
        return np.asarray(list(self.classes))

    @property
    def feature_names_in_(self) -> np.ndarray:
        """The input columns the model takes."""
        return np.asarray(list(self.signature.names), dtype=object)

    @property
    def n_features_in_(self) -> int:
        """How many input columns the model takes."""
        return len(self.signature.inputs)

    @property
    def _estimator_type(self) -> str:
        return "classifier" if self.classes is not None else "regressor"

    def __sklearn_is_fitted__(self) -> bool:
        return True

    def fit(self, X: Any, y: Any = None) -> LoadedModel:
        """Refused: a registered version is fitted once and never changes (train and register
        a new version instead). Present because scikit-learn recognises estimators by it.

        Raises:
            InputError: always.
        """
        raise InputError(
            f"{self.name}@{self.version} is a registered, fitted model and cannot be refit; "
            "train and register a new version instead"
        )

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        classifier = self.classes is not None
        return Tags(
            estimator_type=self._estimator_type,
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags() if classifier else None,
            regressor_tags=None if classifier else RegressorTags(),
        )

    def apply_pii(self, rows: Any) -> Any:
        """``rows`` with the model's PII policy applied to its input columns (raw values
        hashed or masked as its training data was); other rows are returned as they are.

        Raises:
            InputError: the model hashes inputs and the workspace's PII key is missing or
                is not the one its hashes were made with.
        """
        if not self._pii_inputs:
            return rows
        import pandas as pd

        if isinstance(rows, pd.DataFrame):
            return self.pii.apply_frame(rows, self._pii_key)
        if isinstance(rows, dict):
            return self.pii.apply_columns(rows, self._pii_key)
        return rows

    def _check(self, rows: Any) -> pd.DataFrame:
        return self.signature.check(
            self.apply_pii(rows), unknown_categories=self.unknown_categories
        )

    def prepare(self, rows: Any) -> pd.DataFrame:
        """``rows`` checked against the signature, as the underlying model takes them (the
        PII policy's input columns hashed or masked first).

        Raises:
            SchemaMismatchError: the rows do not fit the signature.
        """
        return self._check(rows)

    @property
    def explainable_model(self) -> Any:
        """The object ``forgeml.evaluate``'s explainer takes for this model (it reads the
        rows ``prepare`` gives)."""
        return self._flavor.explainable(self._model, self._spec())

    @property
    def model(self) -> Any:
        """The underlying model object (a scikit-learn pipeline, XGBoost wrapper or LightGBM
        booster)."""
        return self._model

    def predict(self, rows: Any) -> np.ndarray:
        """Predictions for ``rows`` (class labels for classifiers).

        Raises:
            SchemaMismatchError: the rows do not fit the signature.
        """
        X = self._check(rows)
        spec = self._spec()
        if self._threshold is not None:
            return self._labels(self._flavor.predict_proba(self._model, X, spec))
        return self._flavor.predict(self._model, X, spec)

    @available_if(lambda self: self.classes is not None)
    def predict_proba(self, rows: Any) -> np.ndarray:
        """Class probabilities, one column per class of ``classes``.

        Raises:
            SchemaMismatchError: the rows do not fit the signature.
            InputError: the model is not a classifier.
        """
        if self.classes is None:
            raise InputError("This model gives no probabilities (it is not a classifier)")
        X = self._check(rows)
        return self._flavor.predict_proba(self._model, X, self._spec())

    def predict_both(
        self, rows: Any, *, probabilities: bool = True, check: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and (for classifiers, when asked) class probabilities, with one check
        of ``rows`` against the signature.

        Args:
            rows: the input rows.
            probabilities: also compute class probabilities (classifiers).
            check: check ``rows`` against the signature first; ``False`` is for a caller that
                already did (a DataFrame with exactly the signature's columns and types).

        Raises:
            SchemaMismatchError: the rows do not fit the signature.
        """
        X = self._check(rows) if check else rows
        spec = self._spec()
        if self._threshold is not None:
            proba = self._flavor.predict_proba(self._model, X, spec)
            return self._labels(proba), proba if probabilities else None
        if not probabilities or self.classes is None:
            return self._flavor.predict(self._model, X, spec), None
        return self._flavor.predict_both(self._model, X, spec)

    def _labels(self, proba: np.ndarray) -> np.ndarray:
        """The labels at the decision threshold (positive: probability >= threshold)."""
        assert self.classes is not None and self._threshold is not None
        classes = list(self.classes)
        codes = (np.asarray(proba)[:, 1] >= self._threshold).astype(np.int64)
        return typed_labels(np.asarray(classes, dtype=object)[codes], classes)

    def explain(self, rows: Any) -> Any:
        """Per-row contributions of each input column (``forgeml.evaluate``'s explanation).

        Raises:
            SchemaMismatchError: the rows do not fit the signature.
            InputError: explanations are not available for this model.
        """
        X = self._check(rows)
        try:
            from forgeml.evaluate import explain  # type: ignore[attr-defined]
        except ImportError:
            raise InputError("Explanations need forgeml.evaluate.explain, not available") from None
        return explain(self._flavor.explainable(self._model, self._spec()), X)

    def reference(self) -> pd.DataFrame | None:
        """The training-data sample stored as the drift baseline (``None`` if absent)."""
        if not self._bundle.has(REFERENCE):
            return None
        import io

        return pd.read_parquet(io.BytesIO(self._bundle.read_bytes(REFERENCE)))

    def profile(self) -> dict[str, Any] | None:
        """The training data's profile document (``None`` if absent)."""
        if not self._bundle.has(PROFILE):
            return None
        import orjson

        return dict(orjson.loads(self._bundle.read_bytes(PROFILE)))

    def card(self) -> str:
        """The model card (Markdown)."""
        return self._bundle.read_bytes(CARD).decode("utf-8")

    def _spec(self) -> dict[str, Any]:
        return dict(self._manifest["model"])

    def __repr__(self) -> str:
        return (
            f"LoadedModel({self.name}@{self.version}, flavor={self._manifest['flavor']!r}, "
            f"task={self.task!r}, inputs={len(self.signature.inputs)})"
        )
