"""Hydra-composed configuration for the command-line entry points.

Each entry point has one YAML file here (`eval.yaml`, `gate.yaml`, `grpo.yaml`, `sft.yaml`)
and takes Hydra `key=value` overrides (`env=[refund_agent,math_tools]`, `trainer.max_steps=2`).
`compose(name, overrides)` returns a plain dict; a bad override is a `ConfigError` that
names the key and the keys that exist. `load(name, overrides, Model)` composes and
validates into the entry point's pydantic model, naming the key of the first problem.
The YAML is the one source of defaults: each model's own defaults equal its YAML's
(a test checks every pair), so building a model in code gives what the CLI gives.
"""

from __future__ import annotations

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
        known = _known_keys(name)
        raise ConfigError(
            f"bad override for '{name}': {exc}\nknown keys: {', '.join(known)}"
        ) from exc
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def load(name: str, overrides: Sequence[str], model: type[ModelT]) -> ModelT:
    """Compose `configs/<name>.yaml` with overrides and validate it (errors name the key)."""
    raw = compose(name, overrides)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        key = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{key}: {first['msg']} (got {first.get('input')!r})") from None


def _known_keys(name: str) -> list[str]:
    import yaml

    data = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text()) or {}
    return sorted(_flatten(data))


def _flatten(data: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            keys.extend(_flatten(value, full + "."))
        else:
            keys.append(full)
    return keys
