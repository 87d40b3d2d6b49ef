"""What an env declares, read without building it: `envs.card("refund_agent")`.

Trainers, the eval harness, the reward audit and the leaderboard read an env's card; none
of them is wired to a particular env. A card is built from the env class's declarations
(`ToolEnv`'s class attributes, see docs/writing-an-env.md):

* tools, reward components with default weights, and which components define success;
* splits (the frozen eval split is `eval`), slice names;
* policies: scripted policies by name ("module:Class" references, imported on use), the
  honest `expert`, the known `failure_modes`, env-specific `adversaries` for the audit,
  and the SFT demonstration mix;
* promotion rules (a packaged resource), headline metrics for summaries, data files
  (fixtures hashed into run manifests).

Resource references are `"package:relative/path"`, read through `importlib.resources`,
so they work from an installed wheel as well as from a checkout.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any


@dataclass(frozen=True)
class EnvCard:
    name: str
    gym_id: str
    description: str = ""
    tools: tuple[str, ...] = ()
    reward_components: tuple[str, ...] = ()
    default_weights: Mapping[str, float] = field(default_factory=dict)
    success_components: tuple[str, ...] = ()
    splits: tuple[str, ...] = ("train", "eval")
    slices: tuple[str, ...] = ()
    policies: Mapping[str, str] = field(default_factory=dict)
    expert: str | None = None
    failure_modes: tuple[str, ...] = ()
    adversaries: tuple[str, ...] = ()
    demo_mix: Mapping[str, float] = field(default_factory=dict)
    promotion_rules: str | None = None
    headline_metrics: tuple[str, ...] = ("success@1", "reward")
    data_files: tuple[str, ...] = ()
    version: str | None = None  # the distribution version of the package shipping the env
    roles: tuple[str, ...] = ()  # a multi-agent env's roles (`role=`, `partners=`)

    @property
    def train_split(self) -> str:
        return "train"

    @property
    def eval_split(self) -> str:
        return "eval"

    def settings_problem(self, settings: Mapping[str, Any]) -> str | None:
        """Why `role=` / `partners=` in `settings` cannot go to this env, or None."""
        given = [key for key in ("role", "partners") if settings.get(key) is not None]
        if given and not self.roles:
            return (
                f"{given[0]}: env '{self.name}' has no roles (it is not a multi-agent env); "
                "leave role and partners unset"
            )
        role = settings.get("role")
        if role is not None and role not in self.roles:
            return f"role: env '{self.name}' has no role {role!r}; roles: {', '.join(self.roles)}"
        return None


def card_of(cls: Any, name: str, gym_id: str, version: str | None = None) -> EnvCard:
    """The card of an env class (a `ToolEnv` subclass, or anything with the same attributes)."""
    policies = dict(getattr(cls, "policies", {}) or {})
    expert = getattr(cls, "expert", None)
    for role, names in (
        ("expert", [expert] if expert else []),
        ("failure_modes", list(getattr(cls, "failure_modes", ()))),
        ("adversaries", list(getattr(cls, "adversaries", ()))),
    ):
        missing = [n for n in names if n not in policies]
        if missing:
            raise ValueError(f"env '{name}': {role} {missing} are not in its `policies`")
    return EnvCard(
        name=name,
        gym_id=gym_id,
        description=getattr(cls, "description", "") or (cls.__doc__ or "").strip().split("\n")[0],
        tools=tuple(t.name for t in getattr(cls, "tools", ())),
        reward_components=tuple(getattr(cls, "rewards", {}) or {}),
        default_weights=dict(getattr(cls, "default_weights", {}) or {}),
        success_components=tuple(getattr(cls, "success_components", ())),
        splits=tuple(getattr(cls, "splits", ("train", "eval"))),
        slices=tuple(getattr(cls, "slices", ())),
        policies=policies,
        expert=expert,
        failure_modes=tuple(getattr(cls, "failure_modes", ())),
        adversaries=tuple(getattr(cls, "adversaries", ())),
        demo_mix=dict(getattr(cls, "demo_mix", {}) or {}),
        promotion_rules=getattr(cls, "promotion_rules", None),
        headline_metrics=tuple(getattr(cls, "headline_metrics", ("success@1", "reward"))),
        data_files=tuple(getattr(cls, "data_files", ())),
        version=version,
        roles=tuple(role.name for role in getattr(cls, "roles", ())),
    )


def resource(ref: str) -> Traversable:
    """A packaged file or folder from a `"package:relative/path"` reference."""
    package, sep, relative = ref.partition(":")
    if not sep or not package or not relative:
        raise ValueError(f"resource reference '{ref}' must look like 'package:relative/path'")
    node = resources.files(package)
    for part in relative.split("/"):
        node = node.joinpath(part)
    if not (node.is_file() or node.is_dir()):
        raise FileNotFoundError(f"resource '{ref}' not found in package '{package}'")
    return node


def fixture_hashes(card: EnvCard) -> dict[str, str]:
    """sha256 of every data file the env declares (`data_files`), keyed by reference."""
    found: dict[str, str] = {}
    for ref in card.data_files:
        for path, node in sorted(_walk(resource(ref), ref)):
            found[path] = hashlib.sha256(node.read_bytes()).hexdigest()
    return found


def _walk(node: Traversable, path: str) -> list[tuple[str, Traversable]]:
    if node.is_file():
        return [(path, node)]
    files: list[tuple[str, Traversable]] = []
    for child in node.iterdir():
        if child.name == "__pycache__":
            continue
        files.extend(_walk(child, f"{path}/{child.name}"))
    return files


def import_object(ref: str) -> Any:
    """The object a `"module:attr"` reference names."""
    module_name, sep, attr = ref.partition(":")
    if not sep:
        raise ValueError(f"reference '{ref}' must look like 'module:attribute'")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target
