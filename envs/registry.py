"""One way in: every env is registered with Gymnasium and by short name.

* `gymnasium.make("toolgym/RefundAgent-v0")` and `envs.make("refund_agent")` build the
  same env.
* User code registers with `register_env("my_env", entry_point=...)` or the
  `@register_env("my_env")` class decorator.
* A separately installed package adds envs through the entry-point group
  `toolgym.envs` (in its pyproject: `[project.entry-points."toolgym.envs"]`
  `my_env = "my_pkg.envs:MyEnv"`). `import envs` registers every such entry point with
  Gymnasium under `toolgym/<CamelName>-v0` without importing the package (Gymnasium
  imports it on `gymnasium.make`); the class is loaded the first time its short name, card
  or a custom `gym_id` is asked for. The value may also name a module whose import
  registers its envs.
* `card(name)` is what the env declares (`envs.card.EnvCard`), read from its class.

Registries are objects (`EnvRegistry`); `ENVS` is the default one, and tests may build
their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import gymnasium as gym

from envs.card import EnvCard, card_of, import_object

NAMESPACE = "toolgym"
ENTRY_POINT_GROUP = "toolgym.envs"


@dataclass(frozen=True)
class EnvEntry:
    name: str
    gym_id: str
    entry_point: str | Callable[..., gym.Env]
    kwargs: dict[str, Any] = field(default_factory=dict)
    version: str | None = None  # the version of the distribution that ships it

    def factory(self) -> Callable[..., gym.Env]:
        if isinstance(self.entry_point, str):
            return import_object(self.entry_point)
        return self.entry_point


def default_gym_id(name: str, version: int = 0) -> str:
    camel = "".join(part.capitalize() for part in re.split(r"[_\-\s]+", name) if part)
    return f"{NAMESPACE}/{camel}-v{version}"


class EnvRegistry:
    def __init__(self, group: str = ENTRY_POINT_GROUP) -> None:
        self.group = group
        self._entries: dict[str, EnvEntry] = {}
        self._by_gym_id: dict[str, str] = {}

    def register(
        self,
        name: str,
        entry_point: str | Callable[..., gym.Env],
        *,
        gym_id: str | None = None,
        version: str | None = None,
        **kwargs: Any,
    ) -> EnvEntry:
        gym_id = gym_id or default_gym_id(name)
        entry = EnvEntry(name, gym_id, entry_point, kwargs, version)
        self._entries[name] = entry
        self._by_gym_id[gym_id] = name
        if gym_id not in gym.registry:
            gym.register(id=gym_id, entry_point=entry_point, kwargs=kwargs)
        return entry

    def card(self, name: str) -> EnvCard:
        """What the env declares (tools, rewards, splits, policies, rules, metrics)."""
        entry = self.entry(name)
        return card_of(entry.factory(), entry.name, entry.gym_id, entry.version)

    def announce_entry_points(self) -> None:
        """Make plugin envs known to Gymnasium by their default ids, importing nothing."""
        for ep in entry_points(group=self.group):
            gym_id = default_gym_id(ep.name)
            if ":" in ep.value and gym_id not in gym.registry:
                gym.register(id=gym_id, entry_point=ep.value)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._entries)

    def entry(self, name: str) -> EnvEntry:
        if name in self._by_gym_id:
            name = self._by_gym_id[name]
        if name not in self._entries:
            self._load_entry_points()
        if name not in self._entries:
            raise KeyError(
                f"unknown env '{name}'; registered envs: {', '.join(self.names()) or 'none'}"
            )
        return self._entries[name]

    def make(self, name: str, **kwargs: Any) -> gym.Env:
        """Build an env by short name or Gymnasium id, with Gymnasium's env checker off."""
        entry = self.entry(name)
        return gym.make(entry.gym_id, disable_env_checker=True, **kwargs)

    def make_raw(self, name: str, **kwargs: Any) -> gym.Env:
        """Build the env itself (no Gymnasium wrappers): what the rollout loop drives."""
        entry = self.entry(name)
        return entry.factory()(**{**entry.kwargs, **kwargs})

    def _load_entry_points(self) -> None:
        for ep in entry_points(group=self.group):
            if ep.name in self._entries:
                continue
            target = ep.load()
            if ep.name in self._entries:  # importing a module registered it
                continue
            if callable(target):
                gym_id = getattr(target, "gym_id", None) or default_gym_id(ep.name)
                version = ep.dist.version if ep.dist is not None else None
                if gym_id in gym.registry:  # announced before the class was loaded
                    self._entries[ep.name] = EnvEntry(ep.name, gym_id, target, {}, version)
                    self._by_gym_id[gym_id] = ep.name
                else:
                    self.register(ep.name, target, gym_id=gym_id, version=version)


ENVS = EnvRegistry()


def register_env(
    name: str,
    entry_point: str | Callable[..., gym.Env] | None = None,
    *,
    gym_id: str | None = None,
    registry: EnvRegistry | None = None,
    **kwargs: Any,
) -> Any:
    """Register an env; without `entry_point`, use as a class decorator."""
    target = registry or ENVS
    if entry_point is not None:
        return target.register(name, entry_point, gym_id=gym_id, **kwargs)

    def decorate(cls: Callable[..., gym.Env]) -> Callable[..., gym.Env]:
        target.register(name, cls, gym_id=gym_id or getattr(cls, "gym_id", None), **kwargs)
        return cls

    return decorate


def make(name: str, **kwargs: Any) -> gym.Env:
    return ENVS.make(name, **kwargs)


def card(name: str) -> EnvCard:
    return ENVS.card(name)


def make_raw(name: str, **kwargs: Any) -> gym.Env:
    return ENVS.make_raw(name, **kwargs)
