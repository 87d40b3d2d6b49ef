"""Policies by name: `make_policy("expert", env="refund_agent")`.

A policy name is looked up, in order:

1. in the env's declared `policies` (its card: `{"expert": "my_pkg.policies:Expert"}`),
   so every env has its own `expert` and failure modes under short names;
2. among policies registered in this process (`register_policy("mine", factory)` or the
   `@register_policy("mine")` class decorator);
3. in the entry-point group `toolgym.policies` of installed packages
   (`[project.entry-points."toolgym.policies"]` `mine = "my_pkg.policies:Mine"`).

A factory is called with no arguments (scripted policies) or with keyword arguments a
caller passes on. Unknown names are a `KeyError` listing what the env and the registry
know. Registries are objects (`PolicyRegistry`); `POLICIES` is the default one.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from core.policy import Policy
from envs.card import import_object

POLICY_GROUP = "toolgym.policies"
PolicyFactory = Callable[..., Policy]


class PolicyRegistry:
    def __init__(self, group: str = POLICY_GROUP) -> None:
        self.group = group
        self._factories: dict[str, PolicyFactory | str] = {}

    def register(self, name: str, factory: PolicyFactory | str) -> None:
        self._factories[name] = factory

    def names(self, env: str | None = None) -> list[str]:
        """Every policy name usable with `env` (its own first), then the global ones."""
        own = list(_env_policies(env)) if env else []
        found = set(self._factories) | {ep.name for ep in entry_points(group=self.group)}
        return own + sorted(found - set(own))

    def resolve(self, name: str, env: str | None = None) -> PolicyFactory:
        declared = _env_policies(env) if env else {}
        if name in declared:
            return import_object(declared[name])
        if name in self._factories:
            factory = self._factories[name]
            return import_object(factory) if isinstance(factory, str) else factory
        for ep in entry_points(group=self.group, name=name):
            return ep.load()
        where = f" for env '{env}'" if env else ""
        raise KeyError(
            f"unknown policy '{name}'{where}; known: {', '.join(self.names(env)) or 'none'}"
        )

    def make(self, name: str, env: str | None = None, **kwargs: Any) -> Policy:
        return self.resolve(name, env)(**kwargs)


def _env_policies(env: str) -> dict[str, str]:
    import envs

    return dict(envs.card(env).policies)


POLICIES = PolicyRegistry()


def register_policy(
    name: str, factory: PolicyFactory | str | None = None, *, registry: PolicyRegistry | None = None
) -> Any:
    """Register a policy factory; without `factory`, use as a class decorator."""
    target = registry or POLICIES
    if factory is not None:
        target.register(name, factory)
        return factory

    def decorate(cls: PolicyFactory) -> PolicyFactory:
        target.register(name, cls)
        return cls

    return decorate


def make_policy(name: str, env: str | None = None, **kwargs: Any) -> Policy:
    return POLICIES.make(name, env, **kwargs)
