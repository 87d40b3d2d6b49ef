"""`python -m trainers.sft env=refund_agent`: the cold start, SFT on demonstrations.

Contract
--------
* **Config**: `configs/sft.yaml` + Hydra overrides, validated into `SFTRunConfig`. A bad
  config (unknown env, a model folder that does not exist, a bad value) stops before any
  work with exit code 2 and a message naming the key and the allowed values.
* **Model**: `model=tiny` (default) builds the project's own model and tokenizer
  (`trainers.tiny_model`, tokenizer trained on `trainers.data.default_corpus`: train
  split only) into a cache keyed by its build parameters, including `tiny.copy_steps` of
  synthetic copy pretraining (`trainers.copy_pretrain`: without it the model never learns
  to copy ids from its context, so its tool calls run on wrong ids); any folder or Hugging
  Face id works instead (`model=Qwen/Qwen2.5-0.5B-Instruct`).
* **Data** (train split only): `trainers.data.demonstrations`: the env's declared
  expert's episodes, with a share of them (`data.failure_modes`: mode → share; default
  the env's declared `demo_mix`) replaced by its failure modes (refund_agent: the seed's
  `name_instead_of_id`, `quitter`): realistic logs of a buggy agent, so that SFT teaches
  the format and RL has behaviour left to fix. Written to `<out>/data/sft.jsonl`
  (hashed in the manifest).
* **Training**: TRL `SFTTrainer` with `assistant_only_loss=True`: labels are -100 on
  every system, user and tool token; only the assistant's turns (as the model writes them,
  `<|im_end|>` included) are learned.
* **Run folder** (`runs/sft/<env>-<model tag>` by default): `manifest.json`
  (`trainers.manifest`), `metrics.jsonl`, `tb/` (TensorBoard), `checkpoints/`, `final/`
  (model + tokenizer). `resume=true` continues from the newest checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from configs import ConfigError, load
from core.files import FolderError

EXIT_OK, EXIT_CONFIG = 0, 2
Cfg = TypeVar("Cfg", bound=BaseModel)


class TinySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cache_dir: str | None = None
    corpus_trajectories: int = Field(default=240, ge=1)
    vocab_size: int = Field(default=2048, ge=256)
    hidden_size: int = Field(default=128, ge=8)
    num_layers: int = Field(default=2, ge=1)
    num_heads: int = Field(default=4, ge=1)
    num_kv_heads: int = Field(default=2, ge=1)
    max_position_embeddings: int = Field(default=2048, ge=128)
    line_tokens: int = Field(default=64, ge=0)
    copy_steps: int = Field(default=300, ge=0)

    def build_params(self) -> dict[str, int]:
        return self.model_dump(exclude={"cache_dir", "corpus_trajectories"})


class DataSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    demonstrations: int | None = Field(default=960, ge=1)
    failure_modes: dict[str, float] | None = None  # mode -> share; None: the env's demo_mix

    @field_validator("failure_modes")
    @classmethod
    def _shares(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return value
        if any(v < 0 for v in value.values()) or sum(value.values()) > 1.0 + 1e-9:
            raise ValueError(f"shares must be >= 0 and sum to <= 1, got {value}")
        return value


class SFTTrainerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    lr_scheduler: str = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    max_length: int = Field(default=2048, ge=16)
    save_steps: int = Field(default=50, ge=1)
    save_total_limit: int = Field(default=2, ge=1)
    logging_steps: int = Field(default=5, ge=1)


class RoleSettings(BaseModel):
    """Multi-agent envs (`envs.multi_agent`): the role trained and who plays the others."""

    model_config = ConfigDict(extra="forbid")
    role: str | None = None  # null: the env's default learner
    partners: dict[str, str] | None = None  # {role: policy}; null: the env's expert

    @property
    def role_tag(self) -> str:
        """`-<role>` in default run-folder names ("" for the env's learner)."""
        return f"-{self.role}" if self.role else ""

    def role_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"role": self.role} if self.role is not None else {}
        return kwargs | ({"partners": dict(self.partners)} if self.partners else {})


class SFTRunConfig(RoleSettings):
    env: str
    model: str = "tiny"
    out: str | None = None
    seed: int = Field(default=0, ge=0)
    resume: bool = False
    cpu_threads: int | None = Field(default=1, ge=1)
    tiny: TinySpec = Field(default_factory=TinySpec)
    data: DataSpec = Field(default_factory=DataSpec)
    trainer: SFTTrainerSpec


@dataclass
class SFTResult:
    final_dir: Path
    metrics_path: Path
    steps: int
    wall_s: float
    losses: list[float]


# ---- configuration (shared with trainers.grpo) --------------------------------------------
def load_config(name: str, argv: Sequence[str], model: type[Cfg]) -> Cfg:
    """`configs.load`: compose and validate (kept under this name for the trainers)."""
    return load(name, argv, model)


def setup_process(cpu_threads: int | None) -> None:
    """Torch CPU threads (None: torch's default) and quiet library warnings for the CLI.

    On a shared or busy CPU, more than one thread per process can make a tiny model's
    steps 10x slower (threads spin waiting for each other), hence the knob."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*experimental.*")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the run's own bars only (no load/save bars)
    if cpu_threads is not None:
        import torch

        if not torch.cuda.is_available():
            torch.set_num_threads(cpu_threads)


def check_env(name: str, settings: dict[str, Any] | None = None) -> None:
    """A registered env that accepts `settings` (e.g. a multi-agent env's `role`)."""
    import envs

    try:
        envs.ENVS.entry(name)
    except KeyError:
        allowed = ", ".join(envs.ENVS.names())
        raise ConfigError(f"env: unknown env '{name}'; allowed: {allowed}") from None
    if problem := envs.card(name).settings_problem(settings or {}):
        raise ConfigError(problem)
    if settings:
        try:
            envs.make_raw(name, split="train", **settings)
        except (TypeError, ValueError) as exc:  # e.g. role= for an env without roles
            raise ConfigError(f"env {name!r} rejects {settings}: {exc}") from None


def check_model(model: str, *, extra: Sequence[str] = ()) -> None:
    """A model is `tiny` (or one of `extra`), an existing folder, or a cached hub id."""
    if model in ("tiny", *extra) or Path(model).expanduser().is_dir():
        return
    allowed = ", ".join(["tiny", *extra, "a model folder", "a Hugging Face model id"])
    looks_like_path = model.startswith(("/", ".", "~")) or model.count("/") != 1
    if looks_like_path:
        raise ConfigError(f"model: no model folder at '{model}'; allowed: {allowed}")
    if os.environ.get("HF_HUB_OFFLINE") == "1" and not _in_hub_cache(model):
        raise ConfigError(
            f"model: '{model}' is not in the Hugging Face cache and HF_HUB_OFFLINE=1; "
            f"allowed: {allowed}"
        )


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def default_tiny(env: str) -> TinySpec:
    """The tiny model's build as `configs/sft.yaml` sets it (what `model=tiny` means)."""
    return load_config("sft", [f"env={env}"], SFTRunConfig).tiny


def model_tag(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model).name or model)[:64]


def cache_root(tiny: TinySpec) -> Path:
    root = tiny.cache_dir or os.environ.get("TOOLGYM_CACHE") or "~/.cache/toolgym"
    return Path(root).expanduser()


def resolve_model(model: str, env: str, tiny: TinySpec, seed: int = 0) -> tuple[str, str]:
    """(what `from_pretrained` loads, where it came from); builds the tiny model if needed."""
    if model != "tiny":
        path = Path(model).expanduser()
        return (str(path), str(path)) if path.is_dir() else (model, f"hf:{model}")
    from trainers.data import default_corpus
    from trainers.tiny_model import ensure_tiny_model

    params = {**tiny.build_params(), "seed": seed}
    key = json.dumps({**params, "corpus": tiny.corpus_trajectories, "env": env}, sort_keys=True)
    tag = hashlib.sha256(key.encode()).hexdigest()[:10]
    folder = cache_root(tiny) / "tiny" / f"{env}-{tag}"
    print(f"[tiny] model and tokenizer for {env} in {folder} (built on first use, no download)")
    ensure_tiny_model(folder, lambda: default_corpus(env, tiny.corpus_trajectories), **params)
    return str(folder), f"tiny:{tag}"


# ---- the recipe -------------------------------------------------------------------------
def run_dir(cfg: SFTRunConfig) -> Path:
    return Path(cfg.out or f"runs/sft/{cfg.env}{cfg.role_tag}-{model_tag(cfg.model)}")


def sft_folder(cfg: RoleSettings, env: str, sft_out: str | None) -> Path:
    """Where the trainers' `model=sft` finds its run: `sft_out`, else this module's default
    folder for the tiny model."""
    return Path(sft_out or f"runs/sft/{env}{cfg.role_tag}-tiny")


def build_data(cfg: SFTRunConfig, out: Path) -> tuple[list[dict[str, Any]], Path]:
    """Demonstrations (train split) as chat rows, written to `<out>/data/sft.jsonl`."""
    from trainers.data import demonstrations, sft_rows

    trajectories = demonstrations(
        cfg.env,
        cfg.data.demonstrations,
        mix=cfg.data.failure_modes,
        seed=cfg.seed,
        env_kwargs=cfg.role_kwargs(),
    )
    rows = sft_rows(trajectories)
    path = out / "data" / "sft.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows, path


def sft_args(cfg: SFTRunConfig, out: Path) -> Any:
    import torch
    from trl import SFTConfig

    t, cuda = cfg.trainer, torch.cuda.is_available()
    return SFTConfig(
        output_dir=str(out / "checkpoints"),
        use_cpu=not cuda,
        bf16=bool(cuda and torch.cuda.is_bf16_supported()),
        gradient_checkpointing=False,
        per_device_train_batch_size=t.batch_size,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        assistant_only_loss=True,
        max_length=t.max_length,
        logging_steps=t.logging_steps,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        report_to="none",  # TensorBoard is added with the run's own folder
        seed=cfg.seed,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def make_trainer(cfg: SFTRunConfig, model: str, rows: list[dict[str, Any]], out: Path) -> Any:
    """The TRL `SFTTrainer` of a run (also what the tests inspect)."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset, disable_progress_bars
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from trainers.backends.trl import quiet, run_callbacks

    disable_progress_bars()
    dataset = Dataset.from_list([{"messages": r["messages"], "tools": r["tools"]} for r in rows])
    tokenizer = AutoTokenizer.from_pretrained(model)
    fresh = not (cfg.resume and _last_checkpoint(out))
    return quiet(
        SFTTrainer(
            model=model,
            args=sft_args(cfg, out),
            train_dataset=dataset,
            processing_class=tokenizer,
            callbacks=run_callbacks(out, cfg.trainer.max_steps, "loss", fresh=fresh),
        )
    )


def _last_checkpoint(out: Path) -> Path | None:
    from trainers.backends.trl import last_checkpoint

    return last_checkpoint(out / "checkpoints")


def run_sft(cfg: SFTRunConfig) -> SFTResult:
    """Build the model if needed, export the data, train, save `final/` (one writer per
    run folder: a second live run into the same `out` is refused, naming the holder)."""
    from core.files import RunLock

    out = run_dir(cfg)
    with RunLock(out):
        return _train(cfg, out)


def _train(cfg: SFTRunConfig, out: Path) -> SFTResult:
    import envs
    from trainers import manifest as tm

    model, base = resolve_model(cfg.model, cfg.env, cfg.tiny, cfg.seed)
    env = envs.make_raw(cfg.env, split="train")
    rows, data_path = build_data(cfg, out)
    policies = sorted({r["policy"] for r in rows})
    print(f"[sft] {len(rows)} demonstrations ({', '.join(policies)}) -> {data_path}")
    manifest = tm.build_manifest(
        kind="sft",
        backend="trl",
        env=env,
        scenarios=env.scenarios,
        model=base,
        folder=Path(model) if Path(model).is_dir() else None,
        sampling={},
        config=cfg.model_dump(mode="json"),
        extra_data={"sft.jsonl": tm.file_sha(data_path)},
    )
    _check_resume(cfg, out, manifest)
    tm.write_manifest(out, manifest)
    trainer = make_trainer(cfg, model, rows, out)
    resume = _last_checkpoint(out) if cfg.resume else None
    start = time.perf_counter()
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.perf_counter() - start
    final = out / "final"
    trainer.save_model(str(final))
    trainer.processing_class.save_pretrained(final)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    manifest.result = {
        "final_sha": tm.model_identity(str(final), final)[0],
        "steps": trainer.state.global_step,
        "wall_s": round(wall, 3),
        "resumed_from": str(resume) if resume else None,
        "loss_first_last": [losses[0], losses[-1]] if losses else [],
    }
    tm.write_manifest(out, manifest)
    return SFTResult(final, out / "metrics.jsonl", trainer.state.global_step, wall, losses)


def _check_resume(cfg: SFTRunConfig, out: Path, manifest: Any) -> None:
    from trainers import manifest as tm

    old = tm.read_manifest(out) if cfg.resume else None
    if old is not None:
        tm.check_resumable(old, manifest)


TRAIN_MODULES = ("torch", "transformers", "trl", "datasets", "accelerate")


def check_train_extra() -> None:
    """The trainers' frameworks are installed (toolgym's `train` extra)."""
    import importlib.util

    missing = [name for name in TRAIN_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"the trainers need toolgym's train extra, missing {', '.join(missing)}: "
            "pip install 'toolgym[train]' (torch first, the build for your machine)"
        )


def validate(cfg: SFTRunConfig) -> None:
    """Everything that can be checked before any work."""
    check_train_extra()
    check_env(cfg.env, cfg.role_kwargs())
    check_model(cfg.model)
    import envs

    card = envs.card(cfg.env)
    if card.expert is None:
        raise ConfigError(f"env: '{cfg.env}' declares no expert policy to demonstrate")
    unknown = [m for m in cfg.data.failure_modes or {} if m not in card.policies]
    if unknown:
        allowed = ", ".join(card.failure_modes) or "none"
        raise ConfigError(
            f"data.failure_modes: unknown {unknown} for env '{cfg.env}'; allowed: {allowed}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = load_config("sft", argv, SFTRunConfig)
        validate(cfg)
    except ConfigError as exc:
        print(f"trainers.sft: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_process(cfg.cpu_threads)
    try:
        result = run_sft(cfg)
    except FolderError as exc:  # another live run holds the folder, or it cannot be written
        print(f"trainers.sft: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    loss = f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}" if result.losses else ""
    print(f"[sft] {result.steps} steps in {result.wall_s:.1f}s, {loss}; model: {result.final_dir}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
