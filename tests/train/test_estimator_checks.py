"""scikit-learn's estimator checks on forgeml's own estimators, and the rule that a fitted
model does not change when it predicts."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from forgeml.train._preprocess import TabularEncoder

# Not applicable: the array API check feeds CuPy/PyTorch-style arrays; the encoder reads pandas
# frames (and NumPy arrays as frames), whose mixed column types no array namespace holds.
_NOT_APPLICABLE = {"check_array_api_input"}


def _applicable(mark):
    names, cases = mark.args
    kept = [c for c in cases if getattr(c[1], "func", c[1]).__name__ not in _NOT_APPLICABLE]
    assert len(kept) < len(cases)  # the exclusion names a check that exists
    return pytest.mark.parametrize(names, kept, **mark.kwargs)


@_applicable(
    parametrize_with_checks(
        [TabularEncoder(kinds={}, output=output) for output in ("native", "ordinal", "dense")]
    )
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_a_trained_model_does_not_change_when_it_predicts(german, ws):
    from forgeml.train import train

    result = train(german, target="class", time_budget=4, models=["lgbm"], workspace=ws)
    model = result.model
    rows = german.drop(columns=["class"]).head(50).copy()
    rows.loc[rows.index[:5], "purpose"] = "space travel"  # categories never seen in training
    model.predict_proba(rows.head(1))  # anything built lazily is built by now
    before = joblib.hash(model)
    model.predict(rows)
    model.predict_proba(rows)
    assert model.unseen_categories(rows) == {"purpose": 5}
    assert joblib.hash(model) == before


def test_an_encoder_restored_from_its_state_encodes_the_same():
    frame = pd.DataFrame({"c": list("abcab") * 20, "n": np.arange(100.0)})
    encoder = TabularEncoder(kinds={"c": "categorical", "n": "numeric"}).fit(frame)
    state = encoder.__getstate__()
    assert "_code_dtypes" not in state and "_lookups" not in state  # caches are not saved
    restored = TabularEncoder.__new__(TabularEncoder)
    restored.__setstate__(state)
    pd.testing.assert_frame_equal(restored.transform(frame), encoder.transform(frame))
