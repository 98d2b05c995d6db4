"""Training reports its progress as events (german credit, a short budget)."""

from __future__ import annotations

import logging

import forgeml as fm
from forgeml.train import TrainingProgress


def test_a_progress_callable_gets_every_trial_then_the_refit_phase(german, ws, caplog):
    events: list[TrainingProgress] = []
    result = fm.train(
        german,
        target="class",
        time_budget=10,
        max_trials=3,
        seed=0,
        workspace=ws,
        progress=events.append,
    )
    assert events and all(isinstance(e, TrainingProgress) for e in events)
    phases = [e.phase for e in events]
    assert phases[-1] == "ensembling and refitting" and set(phases[:-1]) == {"searching"}
    counts = [len(e.trials) for e in events[:-1]]
    assert counts == list(range(1, len(counts) + 1))  # one event per trial, in order
    assert len(events[-1].trials) == sum(result.n_trials.values())
    assert events[0].metric == "roc_auc" and events[0].greater_is_better
    assert all(e.budget == 10 for e in events)
    elapsed = [e.elapsed for e in events]
    assert elapsed == sorted(elapsed) and elapsed[-1] < 10
    assert events[-1].complete == sum(r.state == "complete" for r in events[-1].trials)

    with caplog.at_level(logging.INFO, logger="forgeml.train"):
        fm.train(german, target="class", time_budget=5, max_trials=1, workspace=ws, progress=True)
    lines = [r.getMessage() for r in caplog.records if r.name == "forgeml.train"]
    assert lines and lines[-1].startswith("ensembling and refitting: ") and "trials" in lines[-1]
