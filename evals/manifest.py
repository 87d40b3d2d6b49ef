"""The run manifest: everything that fixes a run's numbers (the seed's M5-L08 config).

Contract
--------
`RunManifest` is written as `manifest.json` beside a run's episodes. Its fields follow the
seed's reproducible-configuration example, one immutable identifier per component:

* `llm_sha`        the model: `sha256:<hex>` over a local model folder's weight files (names
                   and bytes, sorted); `scripted:<name>@<sha of its classes' source files>`;
                   `openai:<model>@<base_url>[#<hash>]` for a remote endpoint, the hash
                   over what its `GET /models` says of the model (vLLM: weights path,
                   context length), when it says anything.
* `tokenizer_sha`  sha256 over the tokenizer files (None when the policy has none).
* `adapters`       `<folder>@<sha>` per PEFT adapter found (empty list when none).
* `sampling`       `core.sampling.Sampling`: temperature, top_p, top_k, token budgets, seed.
* `input_sha`      one hash over every env's scenario-set hash (`scenario_sets`).
* `reward_spec`    env → component → weight; `verifiers`: component → sha of its source.
* `tools`          env → tool → version (`Toolbox.versions`).
* `fixtures`       env → data file → sha256 (the env's declared `data_files`, as package data);
                   `env_versions` env → version of the distribution that ships it.
* `code`           `{"commit": ..., "dirty": ...}` from git, or None outside a checkout.
* `versions`       python and the packages that change results.
* `config`         the composed run config.

`RESULT_KEYS` lists the config keys that change what an episode does; `result_mismatch`
names the first one in which two manifests differ (a resumed run must match its folder).
Helpers hash folders and read git without raising: a missing tool is `None`, not an error.
"""

from __future__ import annotations

import hashlib
import inspect
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

REPO_ROOT = Path(__file__).resolve().parent.parent  # a checkout's root (git provenance only)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "chat_template.jinja",
    "chat_template.json",
)
VERSIONED_PACKAGES = (
    "toolgym",
    "pydantic",
    "numpy",
    "scipy",
    "statsmodels",
    "gymnasium",
    "torch",
    "transformers",
    "tokenizers",
    "httpx",
)
# Config keys that change what an episode does. `limit`, `epochs`, `batch_size`, `out`,
# `confidence` and `cost` only change which episodes exist or how they are summarised.
RESULT_KEYS = (
    "env", "policy", "model", "base_url", "split", "seed", "sampling", "max_turns", "role",
    "partners", "endpoint.tool_format",
)  # fmt: skip


class RunManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    llm_sha: str
    tokenizer_sha: str | None = None
    adapters: list[str] = Field(default_factory=list)
    sampling: dict[str, Any] = Field(default_factory=dict)
    input_sha: str
    scenario_sets: dict[str, str]
    reward_spec: dict[str, dict[str, float]]
    verifiers: dict[str, str] = Field(default_factory=dict)
    tools: dict[str, dict[str, str]]
    fixtures: dict[str, dict[str, str]]
    env_versions: dict[str, str | None] = Field(default_factory=dict)
    code: dict[str, Any] | None = None
    versions: dict[str, str]
    config: dict[str, Any]


def sha256_files(paths: Iterable[Path], root: Path) -> str | None:
    """sha256 over (relative name, bytes) of each file, sorted by name; None if no file."""
    files = sorted(paths, key=lambda p: p.relative_to(root).as_posix())
    if not files:
        return None
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def model_sha(folder: Path) -> str | None:
    """`sha256:<hex>` over the weight files of a local model folder (adapters excluded)."""
    folder = Path(folder)
    weights = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in WEIGHT_SUFFIXES and not p.name.startswith("adapter_")
    ]
    digest = sha256_files(weights, folder)
    return f"sha256:{digest}" if digest else None


def tokenizer_sha(folder: Path) -> str | None:
    folder = Path(folder)
    files = [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()]
    digest = sha256_files(files, folder)
    return f"sha256:{digest}" if digest else None


def adapters(folder: Path) -> list[str]:
    """PEFT adapters in the model folder or its sub-folders, as `<name>@<sha12>`."""
    folder = Path(folder)
    found = []
    for config in sorted(folder.rglob("adapter_config.json")):
        root = config.parent
        files = [p for p in root.iterdir() if p.is_file() and p.name.startswith("adapter_")]
        name = root.relative_to(folder).as_posix() if root != folder else folder.name
        found.append(f"{name}@{(sha256_files(files, root) or '')[:12]}")
    return found


def source_sha(obj: Any) -> str:
    """sha256 (12 hex) of the source files defining `obj`'s class and its bases."""
    cls = obj if inspect.isclass(obj) else type(obj)
    paths = set()
    for klass in cls.__mro__:
        try:
            path = inspect.getsourcefile(klass)
        except TypeError:  # builtins have no source file
            continue
        if path is not None:
            paths.add(path)
    if not paths:
        return "unknown"
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:12]


def function_sha(fn: Any) -> str:
    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:12]
    except (OSError, TypeError):
        return "unknown"


def env_fixtures(env_name: str) -> dict[str, str]:
    """sha256 of each data file the env declares (`data_files`), read as package data."""
    import envs
    from envs.card import fixture_hashes

    return fixture_hashes(envs.card(env_name))


def env_version(env_name: str) -> str | None:
    """The version of the distribution that ships the env (None: unknown)."""
    import envs

    card = envs.card(env_name)
    if card.version is not None:
        return card.version
    try:
        return metadata.version("toolgym")
    except metadata.PackageNotFoundError:
        return None


def code_commit(root: Path = REPO_ROOT) -> dict[str, Any] | None:
    """`{"commit": sha, "dirty": bool}` of the checkout, or None without git.

    Only a toolgym checkout counts: an installed wheel inside someone else's repository
    must not report that repository's commit (its version is in `versions`)."""
    if not (root / ".git").exists() or not (root / "envs" / "base.py").is_file():
        return None
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


TRAIN_PACKAGES = ("trl", "datasets", "accelerate", "tensorboard")


def package_versions(extra: Iterable[str] = ()) -> dict[str, str]:
    """The one package-version lookup: python, the packages that change results, `extra`."""
    found = {"python": sys.version.split()[0]}
    for name in (*VERSIONED_PACKAGES, *extra):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def combined_hash(parts: Mapping[str, str]) -> str:
    blob = ",".join(f"{key}={value}" for key, value in sorted(parts.items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def result_mismatch(old: RunManifest, new: RunManifest) -> str | None:
    """The first key in which two runs' results could differ, or None when none does."""
    for key in RESULT_KEYS:
        before, after = _nested(old.config, key), _nested(new.config, key)
        if before != after:
            return f"config.{key}: {before!r} -> {after!r}"
    for field in ("llm_sha", "tokenizer_sha", "adapters", "reward_spec", "tools"):
        if getattr(old, field) != getattr(new, field):
            return f"{field}: {getattr(old, field)!r} -> {getattr(new, field)!r}"
    for env, digest in new.scenario_sets.items():
        if old.scenario_sets.get(env) != digest:
            return f"scenario_sets.{env}: {old.scenario_sets.get(env)!r} -> {digest!r}"
    return None


def _nested(config: Mapping[str, Any], dotted: str) -> Any:
    """`config["a"]["b"]` for "a.b" (None where a level is missing)."""
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value
