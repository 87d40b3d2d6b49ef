"""backend=verl: GRPO on Ray across GPUs and nodes, with the same env, scenarios and rewards.

`python -m trainers.grpo env=refund_agent backend=verl model=PATH trainer.n_gpus_per_node=8
trainer.nnodes=2` (or `python -m trainers.backends.verl ...`).

Contract
--------
* **Its own Python.** verl 0.9.1 caps transformers below 5.11 while TRL wants newer, so verl
  lives in its own venv (docs/verl.md). Run from a Python without verl, the launcher re-runs
  itself with `$TOOLGYM_VERL_PYTHON` or `<repo>/.venv-verl/bin/python`; with neither it
  stops with exit 2 and says how to install it.
* **Overrides.** Keys of `configs/verl.yaml` are ours; `MAPPING` (and `derived_overrides`)
  turn them into verl keys. Every other `key=value` goes to verl's `ppo_trainer` Hydra
  config unchanged, and wins over a mapped value (the run prints which). A key neither side
  knows is a `ConfigError` naming it (exit 2, nothing started).
* **Data.** `<out>/data/{train,eval}.parquet` (`trainers.verl_data`): one row per scenario;
  `actor_rollout_ref.rollout.n` episodes of each row form a GRPO group. The prompt budget
  is the longest opening of the env's scenarios, rendered with the env's tools by the
  model's tokenizer, unless `max_prompt_length` is set.
* **Before launch**: the resolved verl config is printed and written to
  `<out>/verl_config.yaml`, validated by verl's own checks (`trainers.verl_agent_loop.validate`),
  and sized by `trainers.plan` (bf16 policy + Adam, the reference model when `beta > 0`, no
  reward model: the env scores episodes; FSDP shards over every GPU). A plan that does not
  fit is refused with its numbers (`plan.check=false` skips that, `plan.gpu_mem_gb` sets
  the GPU). `dry_run=true` stops there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from configs import ConfigError
from trainers import plan as capacity
from trainers.sft import RoleSettings
from trainers.verl_data import AGENT_NAME as AGENT_LOOP

EXIT_OK, EXIT_CONFIG = 0, 2
REPO = Path(__file__).resolve().parents[2]
ENGINES = ("vllm", "sglang")
REEXEC_FLAG = "TOOLGYM_VERL_REEXEC"
LOSS_AGG = {
    "dapo": "token-mean",
    "grpo": "seq-mean-token-mean",
    "dr_grpo": "seq-mean-token-sum-norm",
}
# our key -> verl's key, value unchanged
MAPPING = {
    "trainer.max_steps": "trainer.total_training_steps",
    "trainer.num_generations": "actor_rollout_ref.rollout.n",
    "trainer.learning_rate": "actor_rollout_ref.actor.optim.lr",
    "trainer.lr_scheduler": "actor_rollout_ref.actor.optim.lr_scheduler_type",
    "trainer.warmup_steps": "actor_rollout_ref.actor.optim.lr_warmup_steps",
    "trainer.max_grad_norm": "actor_rollout_ref.actor.grad_clip",
    "trainer.temperature": "actor_rollout_ref.rollout.temperature",
    "trainer.top_p": "actor_rollout_ref.rollout.top_p",
    "trainer.max_episode_tokens": "actor_rollout_ref.rollout.response_length",
    "trainer.save_steps": "trainer.save_freq",
    "trainer.save_total_limit": "trainer.max_actor_ckpt_to_keep",
    "trainer.gradient_checkpointing": "actor_rollout_ref.model.enable_gradient_checkpointing",
    "trainer.micro_batch_per_gpu": "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu",
    "rollout": "actor_rollout_ref.rollout.name",
    "seed": "data.seed",
}


class VerlTrainerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    num_generations: int = Field(ge=1)
    learning_rate: float = Field(gt=0)
    lr_scheduler: str
    warmup_steps: int = Field(ge=0)
    max_grad_norm: float = Field(gt=0)
    beta: float = Field(ge=0)
    loss_type: str
    scale_rewards: str
    temperature: float = Field(gt=0)
    top_p: float = Field(gt=0, le=1)
    top_k: int = Field(ge=0)
    max_turn_tokens: int = Field(ge=1)
    max_episode_tokens: int = Field(ge=1)
    save_steps: int = Field(ge=1)
    save_total_limit: int = Field(ge=1)
    gradient_checkpointing: bool
    micro_batch_per_gpu: int = Field(ge=1)


class PlanSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    check: bool = True
    gpu_mem_gb: float = Field(gt=0)
    usable: float = Field(gt=0, le=1)


class VerlRunConfig(RoleSettings):
    env: str
    backend: str = "verl"
    model: str | None
    sft_out: str | None = None
    out: str | None = None
    seed: int = Field(ge=0)
    max_turns: int | None = Field(default=None, ge=1)
    rollout: str
    max_prompt_length: int | None = Field(default=None, ge=1)
    dry_run: bool = False
    trainer: VerlTrainerSpec
    plan: PlanSpec


# ---- our overrides and verl's ---------------------------------------------------------------
def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(ours, verl's): a key of configs/verl.yaml is ours, anything else is verl's."""
    ours_keys = set(_flat(_our_defaults()))
    ours, theirs = [], []
    for item in argv:
        key = item.partition("=")[0].lstrip("+~")
        (ours if key in ours_keys else theirs).append(item)
    return ours, theirs


def _our_defaults() -> dict[str, Any]:
    import yaml

    from configs import CONFIG_DIR

    return yaml.safe_load((CONFIG_DIR / "verl.yaml").read_text(encoding="utf-8"))


def load_run_config(argv: Sequence[str]) -> VerlRunConfig:
    from trainers.sft import load_config

    cfg = load_config("verl", argv, VerlRunConfig)
    t = cfg.trainer
    if cfg.backend != "verl":
        raise ConfigError(f"backend: this launcher is backend=verl (got '{cfg.backend}')")
    if cfg.model is None:
        raise ConfigError("model: required for backend=verl (a model folder or hub id)")
    if cfg.rollout not in ENGINES:
        raise ConfigError(f"rollout: '{cfg.rollout}'; allowed: {', '.join(ENGINES)}")
    if t.loss_type not in LOSS_AGG:
        raise ConfigError(f"trainer.loss_type: '{t.loss_type}'; allowed: {', '.join(LOSS_AGG)}")
    if t.scale_rewards not in ("group", "none"):
        raise ConfigError(f"trainer.scale_rewards: '{t.scale_rewards}'; allowed: group, none")
    if t.batch_size % t.num_generations:
        raise ConfigError(
            f"trainer.batch_size: {t.batch_size} is not a multiple of "
            f"trainer.num_generations={t.num_generations}"
        )
    if t.max_turn_tokens > t.max_episode_tokens:
        raise ConfigError("trainer.max_turn_tokens: larger than trainer.max_episode_tokens")
    return cfg


def derived_overrides(
    cfg: VerlRunConfig, model: str, data: dict[str, Path], prompt_len: int
) -> list[str]:
    """Our config as verl overrides (the mapped keys, then the ones computed from several)."""
    values = {**_flat(cfg.model_dump()), "rollout": cfg.rollout}
    out = [f"{verl_key}={values[ours]}" for ours, verl_key in MAPPING.items()]
    t = cfg.trainer
    prompts_per_step = t.batch_size // t.num_generations
    run_dir = run_folder(cfg)
    out += [
        "algorithm.adv_estimator=grpo",
        f"algorithm.norm_adv_by_std_in_grpo={t.scale_rewards == 'group'}",
        f"actor_rollout_ref.model.path={model}",
        f"actor_rollout_ref.actor.loss_agg_mode={LOSS_AGG[t.loss_type]}",
        f"actor_rollout_ref.actor.use_kl_loss={t.beta > 0}",
        f"actor_rollout_ref.actor.kl_loss_coef={t.beta}",
        f"actor_rollout_ref.actor.ppo_mini_batch_size={prompts_per_step}",
        f"actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu={t.micro_batch_per_gpu}",
        f"actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu={t.micro_batch_per_gpu}",
        f"actor_rollout_ref.rollout.top_k={t.top_k if t.top_k > 0 else -1}",
        f"actor_rollout_ref.rollout.prompt_length={prompt_len}",
        "actor_rollout_ref.rollout.mode=async",
        "actor_rollout_ref.rollout.multi_turn.enable=true",
        f"actor_rollout_ref.rollout.agent.default_agent_loop={AGENT_LOOP}",
        f"data.train_files={data['train']}",
        f"data.val_files={data['eval']}",
        f"data.train_batch_size={prompts_per_step}",
        f"data.max_prompt_length={prompt_len}",
        f"data.max_response_length={t.max_episode_tokens}",
        "data.return_raw_chat=true",
        "data.filter_overlong_prompts=false",  # the prompt budget is measured above
        f"trainer.default_local_dir={run_dir / 'checkpoints'}",
        "trainer.project_name=toolgym",
        f"trainer.experiment_name={run_dir.name}",
        "trainer.logger=[console,tensorboard]",
    ]
    if cfg.max_turns:
        out.append(f"actor_rollout_ref.rollout.multi_turn.max_assistant_turns={cfg.max_turns}")
    return out


def merge_overrides(ours: list[str], theirs: list[str]) -> tuple[list[str], list[str]]:
    """Ours with each key the user gave verl directly replaced: (merged, replaced keys)."""
    given = {item.partition("=")[0].lstrip("+~") for item in theirs}
    kept = [item for item in ours if item.partition("=")[0] not in given]
    replaced = sorted({item.partition("=")[0] for item in ours} & given)
    return [*kept, *theirs], replaced


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def run_folder(cfg: VerlRunConfig) -> Path:
    from trainers.sft import model_tag

    tag = model_tag(cfg.model or "model")
    return Path(cfg.out or f"runs/verl/{cfg.env}{cfg.role_tag}-{tag}").resolve()


# ---- model, prompt budget, capacity -----------------------------------------------------------
def resolve_model(cfg: VerlRunConfig) -> str:
    """A folder or hub id; `sft` is this env's SFT checkpoint, `tiny` the project's tiny model."""
    from trainers import sft

    assert cfg.model is not None
    if cfg.model == "sft":
        final = sft.sft_folder(cfg, cfg.env, cfg.sft_out) / "final"
        if not (final / "config.json").is_file():
            raise ConfigError(f"model: sft: no SFT checkpoint at {final} (run trainers.sft first)")
        return str(final.resolve())
    if cfg.model == "tiny":
        return sft.resolve_model("tiny", cfg.env, sft.default_tiny(cfg.env), cfg.seed)[0]
    path = Path(cfg.model).expanduser()
    return str(path.resolve()) if path.is_dir() else cfg.model


def load_tokenizer_and_config(model: str) -> tuple[Any, dict[str, Any]]:
    from transformers import AutoConfig, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
        hf_config = AutoConfig.from_pretrained(model).to_dict()
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model: cannot load '{model}': {exc}") from None
    return tokenizer, hf_config.get("text_config") or hf_config


def longest_prompt(rows: list[dict[str, Any]], tools: list[dict[str, Any]], tokenizer: Any) -> int:
    """Tokens of the longest opening, rendered as the agent loop renders it (tools included)."""

    def length(messages: list[dict[str, Any]]) -> int:
        text = tokenizer.apply_chat_template(
            messages, tools=tools or None, tokenize=False, add_generation_prompt=True
        )
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return max(length(row["prompt"]) for row in rows)


def plan_for(cfg: VerlRunConfig, verl_config: Any, hf_config: dict[str, Any]) -> capacity.TrainPlan:
    """The capacity plan of this run on `trainer.n_gpus_per_node x trainer.nnodes` GPUs."""
    rollout, actor = verl_config.actor_rollout_ref.rollout, verl_config.actor_rollout_ref.actor
    gpus = int(verl_config.trainer.n_gpus_per_node) * int(verl_config.trainer.nnodes)
    spec = capacity.TrainSpec(
        shape=capacity.shape_from_hf_config(hf_config),
        method="grpo",
        precision="bf16",
        group_size=int(rollout.n),
        seq_len=int(rollout.prompt_length) + int(rollout.response_length),
        micro_batch=int(actor.ppo_micro_batch_size_per_gpu) * gpus,
        rollout_sequences=int(verl_config.data.train_batch_size) * int(rollout.n),
        reference=bool(actor.use_kl_loss),
        reward_model=0.0,
        dp=max(gpus, 1),
        gpu_mem_gb=cfg.plan.gpu_mem_gb,
        usable=cfg.plan.usable,
    )
    return capacity.train_plan(spec)


def refusal(result: capacity.TrainPlan, gpus: int) -> str:
    s = result.spec
    return (
        f"plan: this run needs {result.total_gb:.1f} GB at its peak, {result.per_gpu_gb:.1f} GB "
        f"on each of {gpus} GPU(s), above {s.gpu_mem_gb * s.usable:.0f} GB usable "
        f"({s.gpu_mem_gb:g} GB x {s.usable:g}); it needs at least {result.gpus_needed} GPUs. "
        "Raise trainer.n_gpus_per_node / trainer.nnodes, set plan.gpu_mem_gb to your GPU's "
        "memory, shrink trainer.max_episode_tokens or trainer.micro_batch_per_gpu, "
        "or pass plan.check=false"
    )


# ---- the launch ---------------------------------------------------------------------------------
def prepare(argv: Sequence[str]) -> tuple[VerlRunConfig, Any, Path]:
    """Everything before launch: config, data, verl config (validated, printed), plan."""
    import envs
    from trainers import verl_agent_loop as adapter
    from trainers.sft import check_env
    from trainers.verl_data import split_rows, write_splits

    ours, theirs = split_overrides(argv)
    cfg = load_run_config(ours)
    env_kwargs = ({"max_turns": cfg.max_turns} if cfg.max_turns else {}) | cfg.role_kwargs()
    check_env(cfg.env, env_kwargs)
    model = resolve_model(cfg)
    tokenizer, hf_config = load_tokenizer_and_config(model)
    rows = split_rows(cfg.env, "train", cfg.seed, env_kwargs)
    tools = envs.make_raw(cfg.env, split="train", **env_kwargs).begin(rows[0]["scenario_id"]).tools
    prompt_len = cfg.max_prompt_length or longest_prompt(rows, tools, tokenizer)
    out = run_folder(cfg)
    data = {split: out / "data" / f"{split}.parquet" for split in ("train", "eval")}
    overrides, replaced = merge_overrides(derived_overrides(cfg, model, data, prompt_len), theirs)
    toolgym = {"max_turn_tokens": cfg.trainer.max_turn_tokens, "env_kwargs": env_kwargs}
    try:
        verl_config = adapter.compose(overrides, extra={"toolgym": toolgym})
        adapter.validate(verl_config)
    except Exception as exc:  # Hydra's and verl's errors name the key
        raise ConfigError(f"verl config: {type(exc).__name__}: {exc}") from None
    text = adapter.to_yaml(verl_config)
    print(text)
    if replaced:
        print(f"[verl] passed through, replacing our mapping: {', '.join(replaced)}")
    gpus = int(verl_config.trainer.n_gpus_per_node) * int(verl_config.trainer.nnodes)
    result = plan_for(cfg, verl_config, hf_config)
    print(capacity.format_train(result))
    if cfg.plan.check and not result.fits:
        raise ConfigError(refusal(result, gpus))
    out.mkdir(parents=True, exist_ok=True)
    (out / "verl_config.yaml").write_text(text, encoding="utf-8")
    write_splits(cfg.env, out / "data", cfg.seed, ("train", "eval"), env_kwargs)
    summary = {
        "model": model,
        "prompt_length": prompt_len,
        "gpus": gpus,
        "plan_gb": result.total_gb,
    }
    (out / "launch.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return cfg, verl_config, out


def verl_python() -> str | None:
    """A Python with verl installed: `$TOOLGYM_VERL_PYTHON`, else the repo's `.venv-verl`."""
    candidate = os.environ.get("TOOLGYM_VERL_PYTHON") or str(REPO / ".venv-verl" / "bin" / "python")
    return candidate if Path(candidate).is_file() else None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if importlib.util.find_spec("verl") is None:
        python = verl_python()
        if python is None or os.environ.get(REEXEC_FLAG):  # the flag: no exec loop
            print(
                f"trainers.grpo: bad config: backend=verl: verl is not installed in "
                f"{sys.executable}; install it in its own venv (docs/verl.md): "
                "python3 -m venv .venv-verl && .venv-verl/bin/pip install torch==2.13.0 && "
                ".venv-verl/bin/pip install -e '.[verl]'",
                file=sys.stderr,
            )
            return EXIT_CONFIG
        print(f"[verl] verl is not in this Python: running in {python}", flush=True)
        os.environ[REEXEC_FLAG] = "1"
        os.execv(python, [python, "-m", "trainers.backends.verl", *argv])
    try:
        cfg, verl_config, out = prepare(argv)
    except ConfigError as exc:
        print(f"trainers.grpo: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if cfg.dry_run:
        print(f"[verl] dry run: config, data and plan in {out}; not launched")
        return EXIT_OK
    from trainers import verl_agent_loop as adapter

    adapter.launch(verl_config)
    print(f"[verl] done: checkpoints in {out / 'checkpoints'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
