"""`python -m envs.check env=NAME`: does an env keep the env contract? (ships in the wheel)

The checks the test suite runs over every registered env (`tests/test_conformance.py`),
for an env author who installed toolgym from its wheel and has no checkout:

* `gymnasium`: Gymnasium's `check_env` passes;
* `card`: the declarations agree: the expert and failure modes are policies, success
  components and default weights name reward components, every scenario's slices are
  declared, train and eval share no scenario (content hash), the promotion rules parse;
* `expert`: the declared expert succeeds and reaches the maximum total (each component
  peaks at 1.0, so the maximum is the sum of the positive default weights) on every eval
  scenario played;
* `do_nothing`: an agent that only apologises never succeeds and scores at most half the
  maximum;
* `determinism`: the expert's episodes, played twice with the same seeds, are the same
  bytes;
* `schemas`: every tool schema is a plain-JSON OpenAI function with a valid name and no
  dangling `$ref`.

`played=N` eval scenarios (spread over the split; default 12) are played per check. Prints
one line per check (`ok` or `FAIL` with the reason); exit 0 when all pass, 1 when one
fails, 2 on a usage error (an unknown env or key).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.records import Trajectory
from envs.registry import ENVS, EnvRegistry
from policies.base import ScriptedPolicy

PLAYED = 12
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ConformanceError(AssertionError):
    """A check that failed, with what it found."""


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    detail: str = ""


class DoNothing(ScriptedPolicy):
    name = "do_nothing"

    def decide(self, messages: list[dict[str, Any]]) -> str:
        return "Sorry, I can't help with that."


def maximum_total(registry: EnvRegistry, env: str) -> float:
    """The contract's maximum under the declared weights (`Rubric.max_total`)."""
    return registry.make_raw(env, split="eval").rubric.max_total


def expert_policy(registry: EnvRegistry, env: str) -> Any:
    from envs.card import import_object

    card = registry.card(env)
    return import_object(card.policies[str(card.expert)])()


def play(
    registry: EnvRegistry, env: str, policy: Any, played: int = PLAYED, split: str = "eval"
) -> list[Trajectory]:
    """The policy on `played` scenarios spread over the split, seeds 0, 1, ..."""
    from envs.rollout import EpisodeJob, rollout

    built = registry.make_raw(env, split=split)
    scenarios = built.scenarios[:: max(1, len(built.scenarios) // played)][:played]
    jobs = [EpisodeJob(s, seed=i) for i, s in enumerate(scenarios)]
    return list(rollout(lambda: registry.make_raw(env, split=split), policy, jobs))


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConformanceError(message)


def check_gymnasium(registry: EnvRegistry, env: str, played: int) -> None:
    from gymnasium.utils.env_checker import check_env

    check_env(registry.make_raw(env, split="eval"), skip_render_check=True)


def check_card(registry: EnvRegistry, env: str, played: int) -> None:
    from envs.card import resource
    from evals.rules import load_rules

    card = registry.card(env)
    _require(card.expert is not None and card.expert in card.policies, "no expert policy")
    unknown = sorted(set(card.failure_modes) - set(card.policies))
    _require(not unknown, f"failure modes that are not policies: {unknown}")
    components = set(card.reward_components)
    _require(bool(card.success_components), "no success components")
    unknown = sorted(set(card.success_components) - components)
    _require(not unknown, f"success components that are not rewards: {unknown}")
    unknown = sorted(set(card.default_weights) - components)
    _require(not unknown, f"default weights for unknown components: {unknown}")
    _require(card.promotion_rules is not None, "no promotion rules")
    rules = load_rules(Path(str(resource(str(card.promotion_rules)))))
    _require(bool(rules.statements), f"promotion rules {card.promotion_rules} are empty")
    train = registry.make_raw(env, split=card.train_split).scenarios
    frozen = registry.make_raw(env, split=card.eval_split).scenarios
    shared = {s.content_hash for s in train} & {s.content_hash for s in frozen}
    _require(not shared, f"{len(shared)} scenario(s) in both train and eval")
    undeclared = {n for s in [*train, *frozen] for n in s.slices} - set(card.slices)
    _require(not undeclared, f"slices not declared: {sorted(undeclared)}")


def check_expert(registry: EnvRegistry, env: str, played: int) -> None:
    maximum = maximum_total(registry, env)
    episodes = play(registry, env, expert_policy(registry, env), played)
    short = [
        f"{t.scenario_id}: reward {t.reward:g}, success {t.success}"
        for t in episodes
        if not t.success or t.reward < maximum - 1e-9
    ]
    _require(not short, f"the expert misses the maximum {maximum:g}: {'; '.join(short[:3])}")


def check_do_nothing(registry: EnvRegistry, env: str, played: int) -> None:
    maximum = maximum_total(registry, env)
    episodes = play(registry, env, DoNothing(), played)
    succeeded = [t.scenario_id for t in episodes if t.success]
    _require(not succeeded, f"doing nothing succeeds on {succeeded[:3]}")
    best = max(t.reward for t in episodes)
    _require(best <= maximum / 2, f"doing nothing scores {best:g}, above half of {maximum:g}")


def check_determinism(registry: EnvRegistry, env: str, played: int) -> None:
    first = [t.to_json() for t in play(registry, env, expert_policy(registry, env), played)]
    again = [t.to_json() for t in play(registry, env, expert_policy(registry, env), played)]
    differ = [i for i, (a, b) in enumerate(zip(first, again, strict=True)) if a != b]
    _require(not differ, f"same seeds, different bytes in episode(s) {differ[:5]}")


def check_schemas(registry: EnvRegistry, env: str, played: int) -> None:
    for schema in registry.make_raw(env, split="eval").toolbox.schemas:
        _require(schema.get("type") == "function", f"not a function schema: {schema}")
        function = schema["function"]
        name = function.get("name")
        _require(bool(NAME_PATTERN.match(str(name))), f"tool name {name!r} is not valid")
        _require(function["parameters"].get("type") == "object", f"{name}: parameters")
        text = json.dumps(schema)
        _require(json.loads(text) == schema, f"{name}: not plain JSON")
        refs = re.findall(r'"\$ref": "#/\$defs/([^"]+)"', text)
        defs = function["parameters"].get("$defs", {})
        dangling = [ref for ref in refs if ref not in defs]
        _require(not dangling, f"{name}: dangling $ref to {dangling}")


CHECKS: dict[str, Callable[[EnvRegistry, str, int], None]] = {
    "gymnasium": check_gymnasium,
    "card": check_card,
    "expert": check_expert,
    "do_nothing": check_do_nothing,
    "determinism": check_determinism,
    "schemas": check_schemas,
}


def run_check(registry: EnvRegistry, env: str, check: str, played: int = PLAYED) -> CheckResult:
    """One check; a failure or any error is a failed result naming what went wrong."""
    try:
        CHECKS[check](registry, env, played)
    except ConformanceError as exc:
        return CheckResult(check, False, str(exc))
    except Exception as exc:  # the env itself broke: that is the finding
        return CheckResult(check, False, f"{type(exc).__name__}: {exc}")
    return CheckResult(check, True)


def main(argv: Sequence[str] | None = None, registry: EnvRegistry = ENVS) -> int:
    args = dict(a.partition("=")[::2] for a in (sys.argv[1:] if argv is None else argv))
    unknown = sorted(set(args) - {"env", "played", "checks"})
    if unknown or "env" not in args:
        got = f"unknown keys {unknown}" if unknown else "no env"
        print(f"envs.check: usage: env=NAME [played=N] [checks=a,b]; {got}", file=sys.stderr)
        return 2
    env = args["env"]
    if env not in registry.names():
        known = ", ".join(registry.names())
        print(f"envs.check: env: unknown env '{env}'; known: {known}", file=sys.stderr)
        return 2
    wanted = args.get("checks", ",".join(CHECKS)).split(",")
    if bad := [c for c in wanted if c not in CHECKS]:
        print(f"envs.check: checks: unknown {bad}; known: {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    played_text = args.get("played", str(PLAYED))
    if not played_text.isdecimal() or int(played_text) < 1:
        print(f"envs.check: played: a whole number >= 1, got {played_text!r}", file=sys.stderr)
        return 2
    played = int(played_text)
    results = [run_check(registry, env, check, played) for check in wanted]
    for result in results:
        print(f"{'ok' if result.passed else 'FAIL':4} {result.check:<12} {result.detail}".rstrip())
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
