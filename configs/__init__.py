"""Hydra-composed configuration for the command-line entry points.

Each entry point has one YAML file here (`eval.yaml`, `gate.yaml`, `grpo.yaml`, `sft.yaml`)
and takes Hydra `key=value` overrides (`env=[refund_agent,math_tools]`, `trainer.max_steps=2`).
`compose(name, overrides)` returns a plain dict; a bad override is a one-line
`ConfigError`: an unknown key is named with the closest known key and the keys that exist,
an override that does not parse is quoted with the parser's reason.
`load(name, overrides, Model)` composes and validates into the entry point's pydantic
model, naming the key of the first problem (a required key left unset, a key added with
`+` that the model does not know).
The YAML is the one source of defaults: each model's own defaults equal its YAML's
(a test checks every pair), so building a model in code gives what the CLI gives.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)

CONFIG_DIR = Path(__file__).resolve().parent


class ConfigError(ValueError):
    """A user's configuration or override is invalid (names the key and the reason)."""


def compose(name: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Compose `configs/<name>.yaml` with Hydra overrides into a plain dict."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name=name, overrides=list(overrides))
    except HydraException as exc:
        raise ConfigError(_override_problem(name, overrides, exc)) from exc
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def load(name: str, overrides: Sequence[str], model: type[ModelT]) -> ModelT:
    """Compose `configs/<name>.yaml` with overrides and validate it (errors name the key)."""
    raw = compose(name, overrides)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        key = ".".join(str(part) for part in first["loc"])
        if first["type"] == "missing":  # the input is the whole config: not worth printing
            raise ConfigError(f"{key}: required, but not set") from None
        if first["type"] == "extra_forbidden":  # added with `+key=...`
            raise ConfigError(_unknown_key(key, _data(name))) from None
        raise ConfigError(f"{key}: {first['msg']} (got {first.get('input')!r})") from None


def _override_problem(name: str, overrides: Sequence[str], exc: Exception) -> str:
    """One line for a failed composition: the override that does not parse, or the key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for text in overrides:
        try:
            parser.parse_overrides([text])
        except HydraException as parse_exc:
            lines = [line.strip() for line in str(parse_exc).splitlines()]
            reason = [line for line in lines if line and not line.startswith(("See ", "^"))]
            if len(reason) > 1 and reason[0].startswith("Error parsing override"):
                reason = reason[1:]
            return (
                f"override '{text}' does not parse: {'; '.join(reason) or 'invalid syntax'} "
                "(write key=value; lists as key=[a,b])"
            )
    message = " ".join(str(exc).split())
    unknown = re.search(r"Could not override '([^']+)'", message) or re.search(
        r"Key '([^']+)' is not in struct", message
    )
    if unknown is None:
        return f"bad override: {message}"
    key = unknown.group(1)
    data = _data(name)
    parent, _, _ = key.rpartition(".")
    table = _lookup(data, parent) if parent else None
    if isinstance(table, dict) and table and all(isinstance(v, list) for v in table.values()):
        # a table of named entries (leaderboard suites): a new name is an addition
        override = next((o for o in overrides if o.split("=", 1)[0] == key), f"{key}=...")
        return f"unknown key '{key}': to add an entry to '{parent}', write +{override}"
    return _unknown_key(key, data)


def _unknown_key(key: str, data: dict[str, Any]) -> str:
    known = sorted(_flatten(data))
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key '{key}'{hint}; known keys: {', '.join(known)}"


def _data(name: str) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()) or {}


def _lookup(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _flatten(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(_flatten(value, full + "."))
        else:
            keys.append(full)
    return keys
