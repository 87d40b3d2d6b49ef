"""Who plays the roles a multi-agent env's learner does not: `Partners`.

A partner is named in config (env kwargs `partners={role: spec}`), one spec per role:
* a name of the env's declared scripted policies (its `policies` mapping; default
  `expert`), imported on first use;
* `"hf:<model folder>"`: a frozen local model (`policies.hf.HFPolicy`, greedy; torch is
  imported only then);
* `"self"`: self-play, the policy given to `bind(policy)` (the rollout loop binds its own
  policy, so the learner's policy plays these roles too; their turns are not trained on);
* a `Policy` object (Python callers).
Bad specs are a `ValueError` naming the role, the spec and what is allowed, at construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from core.policy import Policy
from envs.card import import_object

SELF_PLAY = "self"
FROZEN_MODEL = "hf:"


class Partners:
    def __init__(
        self,
        owner: str,
        roles: Sequence[str],
        learner: str,
        specs: Mapping[str, Any],
        policies: Mapping[str, str],
        default: str = "expert",
    ) -> None:
        unknown = sorted(set(specs) - set(roles))
        if unknown:
            raise ValueError(f"{owner}: partners names unknown role(s) {unknown}")
        if learner in specs:
            raise ValueError(f"{owner}: partners[{learner!r}]: that role is the learner")
        for role, spec in specs.items():
            named = isinstance(spec, str) and spec != SELF_PLAY
            if named and not spec.startswith(FROZEN_MODEL) and spec not in policies:
                raise ValueError(
                    f"{owner}: partners[{role!r}] = {spec!r}: not a policy of this env "
                    f"(known: {sorted(policies)}), 'self' or 'hf:<model folder>'"
                )
        self.specs = {r: specs.get(r, default) for r in roles if r != learner}
        self.policies = dict(policies)
        self._made: dict[str, Policy] = {}
        self._bound: Policy | None = None

    def bind(self, policy: Policy) -> None:
        """The policy that plays the roles configured as `"self"`."""
        self._bound = policy

    def get(self, role: str) -> Policy:
        spec = self.specs[role]
        if spec == SELF_PLAY:
            if self._bound is None:
                raise RuntimeError(f"partners[{role!r}] = 'self' needs bind_policy(policy) first")
            return self._bound
        if role not in self._made:
            if not isinstance(spec, str):
                self._made[role] = spec
            elif spec.startswith(FROZEN_MODEL):
                from policies.hf import HFPolicy  # torch only when a frozen model partners

                self._made[role] = HFPolicy(spec[len(FROZEN_MODEL) :], temperature=0.0)
            else:
                self._made[role] = import_object(self.policies[spec])()
        return self._made[role]
