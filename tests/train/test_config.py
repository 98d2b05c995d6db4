"""``TrainConfig``: a validated, serialisable value that fm.train builds from keywords."""

from __future__ import annotations

import pytest

from forgeml.errors import InputError
from forgeml.train import TrainConfig


def test_round_trips_through_json_and_dict() -> None:
    config = TrainConfig(
        target="y", time_budget=30, models="lgbm,xgb", drop="duration", seed=3, split="s1"
    )
    assert config.models == ("lgbm", "xgb")
    assert config.drop == ("duration",)
    assert TrainConfig.from_json(config.to_json()) == config
    assert TrainConfig.from_dict(config.to_dict()) == config
    assert config.replace(seed=4).seed == 4
    assert config.seed == 3  # frozen: replace gives a copy
    with pytest.raises(Exception, match="frozen"):
        config.seed = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"time_budget": 0}, r"TrainConfig\.time_budget: time_budget must be a positive number"),
        ({"time_budget": True}, r"TrainConfig\.time_budget: must be a number, not True"),
        ({"time_budget": "soon"}, r"TrainConfig\.time_budget: .*got 'soon'"),
        ({"models": []}, r"TrainConfig\.models: models must name at least one"),
        ({"models": ["lgbm", "cat"]}, r"Unknown model family 'cat'"),
        ({"test_size": 0.9}, r"TrainConfig\.test_size: test_size must be above 0"),
        ({"task": "ranking"}, r"TrainConfig\.task: task must be one of"),
        ({"n_jobs": 0}, r"TrainConfig\.n_jobs"),
        ({"seed": -1}, r"TrainConfig\.seed"),
        ({"memory_limit": "lots"}, r"TrainConfig\.memory_limit: memory_limit is a size such as"),
        (
            {"memory_limit": "10MB"},
            r"TrainConfig\.memory_limit: memory_limit must be at least 64MB",
        ),
        ({"parallel_trials": 0}, r"TrainConfig\.parallel_trials: parallel_trials must be at "),
        ({"split": " "}, r"TrainConfig\.split: must not be empty"),
        ({"validation": "kfold"}, r"TrainConfig\.validation: validation must be auto, cv or "),
        ({"colour": "red"}, r"TrainConfig has no field 'colour'; its fields are target, "),
    ],
)
def test_bad_values_name_the_field(values: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=message):
        TrainConfig.build(values)
    with pytest.raises(InputError, match=message):
        TrainConfig(**values)


def test_from_json_refuses_what_is_not_json() -> None:
    with pytest.raises(InputError, match="not JSON"):
        TrainConfig.from_json("{target: y")
    with pytest.raises(InputError, match="built from a mapping; got list"):
        TrainConfig.from_json("[1, 2]")


def test_train_refuses_an_unknown_keyword(tmp_path) -> None:
    import pandas as pd

    from forgeml.train import train

    frame = pd.DataFrame({"x": range(40), "y": [0, 1] * 20})
    with pytest.raises(InputError, match="TrainConfig has no field 'targte'"):
        train(frame, targte="y")
    with pytest.raises(InputError, match="config is a TrainConfig or a mapping"):
        train(frame, 3)  # type: ignore[arg-type]


def test_a_bad_keyword_of_train_names_its_field_once() -> None:
    import pandas as pd

    from forgeml.train import train

    frame = pd.DataFrame({"x": range(40), "y": [0, 1] * 20})
    with pytest.raises(InputError) as caught:
        train(frame, target="y", max_trials=-1)
    assert str(caught.value) == "TrainConfig.max_trials: max_trials must be at least 1; got -1"
