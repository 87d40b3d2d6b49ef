"""The training manifest: what a trained checkpoint was made from (the seed's M5-L08 config).

Contract
--------
`TrainManifest` is written as `manifest.json` in every SFT and GRPO run folder before
training starts, and rewritten at the end with the result. One immutable identifier per
component, in the seed's vocabulary (the hashing helpers are `evals.manifest`'s):

* `llm_sha`        the starting model: `sha256:<hex>` over its weight files, or
                   `hf:<name>` for a hub id that is not a local folder; `base_model`
                   says where it came from (`tiny:<build hash>`, a folder, a hub id) and
                   `init_from` the checkpoint it starts from (the SFT run for GRPO).
* `adapters`       PEFT adapters found in the model folder (`<name>@<sha12>`).
* `tokenizer_sha`  sha256 over the tokenizer files.
* `input_sha`      one hash over the training data: the train scenario set and, for SFT,
                   the demonstrations file (`data` lists each part's hash).
* `sampling`       temperature, top_p, top_k, turn and episode token budgets.
* `reward_model_sha` None (rewards are verifiers, not a model); `reward_spec` component
                   → weight; `verifiers` component → sha of its source.
* `tools`          tool → version; `fixtures` scenario data file → sha256.
* `code`           `{"commit", "dirty"}` of the checkout; `versions` python + packages.
* `config`         the composed run config; `kind` sft | grpo; `backend`.
* `result`         filled at the end: final model sha, steps, wall time, resumed from.

`MANIFEST_KEYS` lists every key; `check_resumable(old, new)` names the first key in which
a folder's manifest differs from a new run's (a resumed run must match its folder).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from configs import ConfigError
from evals import manifest as mf
from scenarios.schema import Scenario, scenario_set_hash

MANIFEST = "manifest.json"
# Config keys a resumed run may change (how long it trains, where it reports).
RESUME_FREE = ("resume", "trainer.max_steps", "eval", "cpu_threads")


class TrainManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    backend: str
    llm_sha: str
    base_model: str
    init_from: str | None = None
    adapters: list[str] = Field(default_factory=list)
    tokenizer_sha: str | None
    input_sha: str
    data: dict[str, str]
    sampling: dict[str, Any]
    reward_model_sha: str | None = None
    reward_spec: dict[str, float]
    verifiers: dict[str, str]
    tools: dict[str, str]
    fixtures: dict[str, str]
    code: dict[str, Any] | None
    versions: dict[str, str]
    config: dict[str, Any]
    result: dict[str, Any] = Field(default_factory=dict)


MANIFEST_KEYS = tuple(TrainManifest.model_fields)


def file_sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def model_identity(model: str, folder: Path | None) -> tuple[str, str | None, list[str]]:
    """(llm_sha, tokenizer_sha, adapters) of a local folder, or of a hub id."""
    if folder is None or not Path(folder).is_dir():
        return f"hf:{model}", None, []
    sha = mf.model_sha(folder) or f"path:{Path(folder).resolve()}"
    return sha, mf.tokenizer_sha(folder), mf.adapters(folder)


def build_manifest(
    *,
    kind: str,
    backend: str,
    env: Any,
    scenarios: list[Scenario],
    model: str,
    folder: Path | None,
    sampling: dict[str, Any],
    config: dict[str, Any],
    init_from: str | None = None,
    extra_data: dict[str, str] | None = None,
) -> TrainManifest:
    """The manifest of a run on `env` (a built env: its rubric, toolbox and name)."""
    llm, tokenizer, adapters = model_identity(model, folder)
    data = {f"scenarios.{env.env_name}.train": scenario_set_hash(scenarios), **(extra_data or {})}
    return TrainManifest(
        kind=kind,
        backend=backend,
        llm_sha=llm,
        base_model=model,
        init_from=init_from,
        adapters=adapters,
        tokenizer_sha=tokenizer,
        input_sha=mf.combined_hash(data),
        data=data,
        sampling=sampling,
        reward_spec=dict(env.rubric.weights),
        verifiers={name: mf.function_sha(fn) for name, fn in env.rubric.functions.items()},
        tools=dict(env.toolbox.versions),
        fixtures=mf.env_fixtures(env.env_name),
        code=mf.code_commit(),
        versions={
            **mf.package_versions(mf.TRAIN_PACKAGES),
            f"env:{env.env_name}": mf.env_version(env.env_name) or "unknown",
        },
        config=config,
    )


def write_manifest(folder: Path, manifest: TrainManifest) -> Path:
    path = Path(folder) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_manifest(folder: Path) -> TrainManifest | None:
    try:
        return TrainManifest.model_validate_json((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_resumable(old: TrainManifest, new: TrainManifest) -> None:
    """Raise `ConfigError` naming the first key a resumed run may not change."""
    for field in ("kind", "backend", "llm_sha", "tokenizer_sha", "input_sha", "reward_spec"):
        if getattr(old, field) != getattr(new, field):
            raise ConfigError(
                f"resume: {field} differs from the run folder's manifest: "
                f"{getattr(old, field)!r} -> {getattr(new, field)!r}"
            )
    before, after = _flat(old.config), _flat(new.config)
    for key in sorted(set(before) | set(after)):
        if key.startswith(RESUME_FREE):
            continue
        if before.get(key) != after.get(key):
            raise ConfigError(
                f"resume: {key} differs from the run folder's config: "
                f"{before.get(key)!r} -> {after.get(key)!r} (only "
                f"{', '.join(RESUME_FREE)} may change)"
            )
