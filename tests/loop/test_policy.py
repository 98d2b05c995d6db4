"""Loop policies: defaults, YAML files, and errors that name the field."""

from __future__ import annotations

import pytest

from forgeml.errors import InputError
from forgeml.loop import LoopPolicy, load_policy


def test_defaults_and_a_round_trip_through_json():
    policy = LoopPolicy(model="elec2")
    assert policy.champion == "production"
    assert policy.triggers.performance is not None and policy.triggers.drift is None
    assert policy.rollout.mode == "canary" and policy.rollout.share == 10
    again = LoopPolicy.build(policy.to_dict())
    assert again == policy and again.to_json() == policy.to_json()


def test_a_yaml_file(tmp_path):
    path = tmp_path / "elec2.yaml"
    path.write_text(
        "model: elec2\n"
        "triggers:\n"
        "  performance: {drop: 0.03, window_rows: 300}\n"
        "  schedule: '0 3 * * 0'\n"
        "  new_labels: 5000\n"
        "recipe:\n"
        "  window: {kind: last_rows, rows: 2000}\n"
        "rollout: {mode: shadow, share: 25}\n"
    )
    policy = load_policy(path)
    assert policy.triggers.performance.drop == 0.03
    assert policy.triggers.schedule == "0 3 * * 0"
    assert policy.recipe.window.kind == "last_rows" and policy.recipe.window.rows == 2000
    assert policy.rollout.mode == "shadow" and policy.rollout.share == 25


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ({"model": "m", "triggers": {"drift": {"share": 2}}}, ["LoopPolicy.triggers.drift.share"]),
        ({"model": "m", "trigers": {}}, ["LoopPolicy has no field 'trigers'", "triggers"]),
        (
            {"model": "m", "triggers": {"drift": {"shar": 0.2}}},
            ["LoopPolicy.triggers.drift has no field 'shar'", "share"],
        ),
        (
            {"model": "m", "recipe": {"window": {"kind": "last_days"}}},
            ["LoopPolicy.recipe.window", "needs 'days'"],
        ),
        ({"model": "m", "schedule": "every day"}, ["LoopPolicy.schedule", "cron"]),
        ({"model": "m", "triggers": {"schedule": "61 * * * *"}}, ["LoopPolicy.triggers.schedule"]),
        ({"model": "m", "rollout": {"mode": "blue"}}, ["LoopPolicy.rollout.mode", "'blue'"]),
        ({"model": "m", "rollout": {"share": 100}}, ["LoopPolicy.rollout.share", "below 100"]),
        (
            {"model": "m", "triggers": {"performance": None, "new_labels": None}},
            ["at least one trigger"],
        ),
        ({"model": "m", "gates": {"metric": {"tolerance": -0.1}}}, ["gates.metric.tolerance"]),
        (
            {"model": "m", "rollout": {"rollback": {"min_latency_increase_ms": -1}}},
            ["LoopPolicy.rollout.rollback.min_latency_increase_ms", "zero or more"],
        ),
        ({"model": "m", "budget": {"time_budget": "abc"}}, ["LoopPolicy.budget.time_budget"]),
        ({"model": "m", "gates": {"metric": {"confidence": 1.5}}}, ["gates.metric.confidence"]),
        ({"model": "m", "champion": "candidate"}, ["LoopPolicy.champion"]),
        ({"champion": "production"}, ["LoopPolicy.model", "required"]),
        ({"model": "m", "seed": -1}, ["LoopPolicy.seed"]),
    ],
)
def test_bad_policies_name_the_field(values, words):
    with pytest.raises(InputError) as caught:
        LoopPolicy.build(values)
    for word in words:
        assert word in caught.value.message


def test_bad_files_name_the_file(tmp_path):
    with pytest.raises(InputError, match="No loop policy file"):
        load_policy(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [unclosed\n")
    with pytest.raises(InputError, match=r"broken\.yaml: not valid YAML"):
        load_policy(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- model\n")
    with pytest.raises(InputError, match=r"list\.yaml: a loop policy is a mapping"):
        load_policy(listed)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("model: m\nbudget: {max_trials: 0}\n")
    with pytest.raises(InputError, match=r"wrong.yaml: LoopPolicy.budget.max_trials"):
        load_policy(wrong)
