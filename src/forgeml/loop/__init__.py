"""Continuous training (workflows layer): triggers, retraining, champion/challenger, gates,
rollout and rollback of a registered model, each step a use case called with the loop's own
principal and recorded in the store before it starts and after it ends.

    from forgeml.loop import LOOP_PRINCIPAL, LoopRunner, load_policy
    from forgeml.workflows import Context

    runner = LoopRunner(Context(workspace, LOOP_PRINCIPAL), load_policy("elec2.yaml"))
    report = runner.run_pass()      # one pass: check the triggers, act
"""

from __future__ import annotations

from forgeml.loop._policy import LoopPolicy, load_policy
from forgeml.loop._runner import LOOP_PRINCIPAL, LoopRunner, PassReport, loop_principal
from forgeml.loop._scoring import Lead, paired_lead
from forgeml.loop._triggers import TriggerResult
from forgeml.loop._watch import next_pass_at, watch

__all__ = [
    "LOOP_PRINCIPAL",
    "Lead",
    "LoopPolicy",
    "LoopRunner",
    "PassReport",
    "TriggerResult",
    "load_policy",
    "loop_principal",
    "next_pass_at",
    "paired_lead",
    "watch",
]
