"""Continuous training (workflows layer): triggers, retraining, champion/challenger, gates,
rollout and rollback of a registered model, each step a use case called with the loop's own
principal and recorded in the store before it starts and after it ends.
"""

from __future__ import annotations

from forgeml.loop._policy import LoopPolicy, load_policy

__all__ = ["LoopPolicy", "load_policy"]
