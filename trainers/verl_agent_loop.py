"""The verl adapter: every verl-specific import and call of the project lives in this module.

Tested against verl 0.9.1 (`verl[verl-core]==0.9.1`, its own venv: it caps transformers
below 5.11; see docs/verl.md). Names that moved between verl releases
(`LLMServerClient`, `AgentLoopBase`, `register`, `validate_config`, `run_ppo`) are
imported here only, so an upgrade touches one file.

Contract
--------
* **Agent loop** `ToolgymAgentLoop` (registered with verl as `toolgym_env`): one verl row
  is one episode. `run(sampling_params, **row)` builds (or reuses, per process) the env
  named by `row["env"]` for `row["split"]`, and plays scenario `row["scenario_id"]` with
  reset seed `row["seed"]` through the project's one loop (`trainers.token_rollout.play`
  → `envs.rollout.rollout`), exactly as the TRL backend does. Only generation differs:
  each turn goes to verl's server client, `server_manager.generate(request_id, *,
  prompt_ids, sampling_params)`, with **one request id per episode** (sticky routing,
  prefix cache) and `max_tokens` = what the turn and episode budgets allow,
  `stop_token_ids` = `<|im_end|>`/EOS/pad. The model's tokens are kept as generated (never
  re-encoded); tool results, the simulated customer's turns and chat-template frames are
  environment tokens (`response_mask` 0). Budgets: `toolgym.max_turn_tokens` caps a turn,
  `actor_rollout_ref.rollout.response_length` caps the episode (model + env tokens),
  `actor_rollout_ref.rollout.multi_turn.max_assistant_turns` (if set) is the turn limit.
* **Output**: `reward_score` = the env's weighted total; `extra_fields["reward_extra_info"]`
  holds every reward component of the env plus `success`, `turns`, `tool_calls` and
  `infra_error`, the same keys for every sample (verl reads the keys of the first one).
  An infrastructure failure (the server raised) ends the episode with
  `Termination.POLICY_ERROR`: reward 0, `infra_error` 1 and an all-zero `response_mask`,
  so it is logged and never trained on.
* **Found in every Ray worker**: `import verl` loads the `verl.plugins` entry point
  `toolgym = "trainers.verl_agent_loop"` (pyproject), whose import runs `@register`; no
  file path is needed. `configs/verl_agent_loop.yaml` is the equivalent `_target_` entry
  for `actor_rollout_ref.rollout.agent.agent_loop_config_path`. Envs from other packages
  resolve through the `toolgym.envs` entry points, provided the package is installed in
  the workers' Python.
* **Config and launch**: `compose(overrides)` composes verl's own `ppo_trainer` Hydra config,
  `validate(config)` runs verl's `validate_config` and builds verl's config dataclasses
  (`omega_conf_to_dataclass`) for the actor, rollout and model sections, `launch(config)`
  is `verl.trainer.main_ppo`'s body. `HFGenerationServer` is a generation server with
  verl's `generate(...) -> TokenOutput` interface backed by a Hugging Face model (tests,
  and GPU checks where vLLM is absent).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.agent_loop import (
    AgentLoopBase,
    AgentLoopMetrics,
    AgentLoopOutput,
    register,
)
from verl.workers.rollout.replica import TokenOutput

from core.sampling import Sampling
from envs.base import ToolEnv
from envs.rollout import EpisodeJob
from scenarios.schema import Scenario
from trainers.token_rollout import Episode, EpisodeTokens, TokenPolicy, play
from trainers.verl_data import AGENT_NAME

VERL_VERSION = "0.9.1"
EXTRA_KEYS = ("success", "turns", "tool_calls", "infra_error")
# Episodes run the (synchronous) rollout loop in threads while the worker's event loop
# serves generation; each thread mostly waits on its server call.
_EXECUTOR = ThreadPoolExecutor(
    max_workers=int(os.environ.get("TOOLGYM_VERL_THREADS", "64")), thread_name_prefix="toolgym"
)


# ---- envs, one pool per process ----------------------------------------------------------------
@dataclass
class _Shelf:
    """The idle envs of one (name, split, kwargs), its scenarios by id, its components."""

    idle: list[ToolEnv]
    scenarios: dict[str, Scenario]
    components: list[str]


class EnvPool:
    """Envs reused across episodes in one process; an env plays one episode at a time."""

    def __init__(self) -> None:
        self._shelves: dict[tuple[str, str, str], _Shelf] = {}
        self._lock = threading.Lock()

    @contextmanager
    def borrow(
        self, name: str, split: str, kwargs: dict[str, Any]
    ) -> Iterator[tuple[ToolEnv, _Shelf]]:
        key = (name, split, repr(sorted(kwargs.items())))
        with self._lock:
            shelf = self._shelves.get(key)
            env = shelf.idle.pop() if shelf and shelf.idle else None
        if env is None:
            import envs

            env = envs.make_raw(name, split=split, **kwargs)
        if shelf is None:
            scenarios = {s.id: s for s in env.scenarios}
            shelf = _Shelf([], scenarios, list(env.rubric.weights))
            with self._lock:
                shelf = self._shelves.setdefault(key, shelf)
        try:
            yield env, shelf
        finally:
            with self._lock:
                shelf.idle.append(env)


ENV_POOL = EnvPool()


# ---- generation through verl's server client -------------------------------------------------
class ServerTokenPolicy(TokenPolicy):
    """`TokenPolicy` whose turns come from verl's server client instead of `model.generate`.

    Everything else (rendering, env frames, budgets, EOS handling) is `TokenPolicy`'s, so
    the token record is built exactly as in the TRL backend. One episode per instance.
    """

    def __init__(
        self,
        server: Any,
        tokenizer: Any,
        sampling: Sampling,
        sampling_params: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(None, tokenizer, sampling, name="verl")
        self.server = server
        self.server_params = dict(sampling_params)
        self.loop = loop
        self.request_id = uuid4().hex  # one per episode: sticky routing and prefix caching
        self.turn_logprobs: list[float] | None = None
        self.logprob_at: dict[int, float] = {}
        self.stop_reasons: list[str | None] = []

    def _generate(self, records: list[EpisodeTokens]) -> list[list[int]]:
        (rec,) = records
        t0 = time.perf_counter()
        allowed = self._allowed(rec)
        params = {**self.server_params, "max_tokens": max(allowed, 1)}
        params["stop_token_ids"] = list(self.stop_ids)
        call = self.server.generate(
            request_id=self.request_id, prompt_ids=rec.prompt_ids + rec.completion_ids,
            sampling_params=params,
        )  # fmt: skip
        output: TokenOutput = asyncio.run_coroutine_threadsafe(call, self.loop).result()
        self.timings["generate"] += time.perf_counter() - t0
        self.calls += 1
        self.stop_reasons.append(output.stop_reason)
        self.turn_logprobs = list(output.log_probs) if output.log_probs else None
        return [list(output.token_ids)[:allowed]]

    def _append_turn(self, rec: EpisodeTokens, new_ids: list[int]) -> str:
        start = len(rec.completion_ids)
        text = super()._append_turn(rec, new_ids)
        if self.turn_logprobs is not None:
            for i in range(start, len(rec.completion_ids)):
                self.logprob_at[i] = self.turn_logprobs[i - start]
        return text

    def logprobs(self, tokens: EpisodeTokens) -> list[float]:
        """One log-prob per completion token (0.0 on env tokens)."""
        return [self.logprob_at.get(i, 0.0) for i in range(len(tokens.completion_ids))]


def episode_output(
    episode: Episode,
    components: Sequence[str],
    timings: dict[str, float],
    logprobs: list[float] | None,
) -> AgentLoopOutput:
    """verl's record of one finished episode: tokens, mask, reward and its components."""
    trajectory, tokens = episode.trajectory, episode.tokens
    infra = trajectory.lost_to_infrastructure
    reward = 0.0 if infra or trajectory.reward is None else float(trajectory.reward)
    parts = trajectory.reward_components or {}
    info = {name: float(parts.get(name, 0.0)) for name in components}
    info.update(
        success=float(bool(trajectory.success) and not infra),
        turns=float(trajectory.turns),
        tool_calls=float(len(trajectory.tool_calls)),
        infra_error=float(infra),
    )
    mask = [0] * len(tokens.env_mask) if infra else list(tokens.env_mask)
    return AgentLoopOutput(
        prompt_ids=list(tokens.prompt_ids),
        response_ids=list(tokens.completion_ids),
        response_mask=mask,
        response_logprobs=logprobs,
        reward_score=reward,
        num_turns=sum(1 for m in trajectory.messages if m.role != "system"),
        metrics=AgentLoopMetrics(
            generate_sequences=timings.get("generate", 0.0), tool_calls=timings.get("env", 0.0)
        ),
        extra_fields={"reward_extra_info": info, "turn_scores": [], "tool_rewards": []},
    )


@register(AGENT_NAME)
class ToolgymAgentLoop(AgentLoopBase):
    """One verl row → one episode of a toolgym env, played by the project's rollout loop."""

    def __init__(self, *args: Any, max_turn_tokens: int | None = None, **kwargs: Any) -> None:
        kwargs.pop("tools", None)  # verl's own tool list: our envs bring their tools
        super().__init__(*args, **kwargs)
        settings = self.config.get("toolgym") or {}
        self.response_length = int(self.rollout_config.response_length)
        self.prompt_length = int(self.rollout_config.prompt_length)
        turn = max_turn_tokens or settings.get("max_turn_tokens") or self.response_length
        self.max_turn_tokens = int(turn)
        self.env_kwargs = dict(settings.get("env_kwargs") or {})
        max_turns = self.rollout_config.multi_turn.get("max_assistant_turns")
        if max_turns:
            self.env_kwargs.setdefault("max_turns", int(max_turns))

    async def run(self, sampling_params: dict[str, Any], **row: Any) -> AgentLoopOutput:
        name, split = str(row["env"]), str(row.get("split") or "train")
        loop = asyncio.get_running_loop()
        with ENV_POOL.borrow(name, split, self.env_kwargs) as (env, shelf):
            scenario = shelf.scenarios.get(str(row["scenario_id"]))
            if scenario is None:
                raise KeyError(f"env '{name}' split '{split}' has no scenario {row['scenario_id']}")
            sampling = Sampling(  # budgets only: verl's sampling_params drive generation
                max_turn_tokens=min(self.max_turn_tokens, self.response_length),
                max_episode_tokens=self.response_length,
            )
            policy = ServerTokenPolicy(
                self.server_manager, self.tokenizer, sampling, sampling_params, loop
            )
            job = EpisodeJob(scenario, int(row["seed"]), 0, {"episode": 0})
            (episode,), timings = await loop.run_in_executor(
                _EXECUTOR, lambda: play(lambda: env, policy, [job])
            )
        if len(episode.tokens.prompt_ids) > self.prompt_length:
            raise ValueError(
                f"scenario {scenario.id}: prompt of {len(episode.tokens.prompt_ids)} tokens "
                f"exceeds actor_rollout_ref.rollout.prompt_length={self.prompt_length}; "
                "raise data.max_prompt_length"
            )
        logprobs = policy.logprobs(episode.tokens) if sampling_params.get("logprobs") else None
        return episode_output(episode, shelf.components, timings, logprobs)


def instantiate_loop(config: Any, server: Any, tokenizer: Any, entry: Any = None) -> Any:
    """Build our agent loop the way verl's `AgentLoopWorker` does: from its registry entry
    (what `@register` wrote) or from `entry`, an item of an agent-loop config file."""
    import hydra
    from verl.experimental.agent_loop.agent_loop import (
        DictConfigWrap,
        ToolListWrap,
        _agent_loop_registry,
    )
    from verl.utils.dataset.rl_dataset import RLHFDataset

    return hydra.utils.instantiate(
        config=entry if entry is not None else _agent_loop_registry[AGENT_NAME],
        trainer_config=DictConfigWrap(config=config),
        server_manager=server,
        tokenizer=tokenizer,
        processor=None,
        hf_model_type=None,
        dataset_cls=RLHFDataset,
        data_config=DictConfigWrap(config.data),
        tools=ToolListWrap([]),
    )


# ---- a generation server with verl's interface, backed by a Hugging Face model ---------------
class HFGenerationServer:
    """`generate(request_id, *, prompt_ids, sampling_params) -> TokenOutput`, like verl's
    `LLMServerClient`, running a local HF causal LM (one request at a time)."""

    def __init__(self, model: Any, tokenizer: Any, seed: int | None = 0) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.seed = seed
        self.request_ids: list[str] = []
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # sent to Ray workers: a lock does not pickle
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    async def generate(
        self, request_id: str, *, prompt_ids: list[int], sampling_params: dict[str, Any], **_: Any
    ) -> TokenOutput:
        self.request_ids.append(request_id)
        return await asyncio.to_thread(self._generate, list(prompt_ids), dict(sampling_params))

    def _generate(self, prompt_ids: list[int], params: dict[str, Any]) -> TokenOutput:
        import torch

        temperature = float(params.get("temperature", 1.0))
        kwargs: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None}
        if temperature > 0:
            top_k = int(params.get("top_k", -1))
            kwargs = {
                "do_sample": True,
                "temperature": temperature,
                "top_p": float(params.get("top_p", 1.0)),
                "top_k": top_k if top_k > 0 else 0,
            }
        stops = list(params.get("stop_token_ids") or [self.tokenizer.eos_token_id])
        with self._lock, torch.no_grad():
            if self.seed is not None:
                torch.manual_seed(self.seed + len(self.request_ids))
            ids = torch.tensor([prompt_ids], device=self.model.device)
            out = self.model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=int(params.get("max_tokens", 64)),
                eos_token_id=stops,
                pad_token_id=self.tokenizer.pad_token_id,
                output_scores=True,
                return_dict_in_generate=True,
                **kwargs,
            )
        new = out.sequences[0, len(prompt_ids) :].tolist()
        end = next((i for i, t in enumerate(new) if t in stops), None)
        new = new if end is None else new[: end + 1]
        logprobs = None
        if params.get("logprobs"):
            logprobs = [
                float(torch.log_softmax(score[0].float(), -1)[tok])
                for score, tok in zip(out.scores, new, strict=False)
            ]
        return TokenOutput(token_ids=new, log_probs=logprobs, stop_reason="completed")


# ---- verl's Hydra config, its validation, and the launch ------------------------------------
def config_dir() -> Path:
    import verl

    return Path(verl.__file__).resolve().parent / "trainer" / "config"


def compose(overrides: Sequence[str], extra: dict[str, Any] | None = None) -> Any:
    """verl's `ppo_trainer` config with Hydra overrides, then `extra` merged in (a DictConfig)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf, open_dict

    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        config = hydra_compose(config_name="ppo_trainer", overrides=list(overrides))
    if extra:
        with open_dict(config):
            config.merge_with(OmegaConf.create(extra))
    return config


def validate(config: Any) -> None:
    """verl's own checks: `validate_config` and its config dataclasses for the worker sections."""
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import omega_conf_to_dataclass, validate_config

    validate_config(
        config=config,
        use_reference_policy=need_reference_policy(config),
        use_critic=need_critic(config),
    )
    omega_conf_to_dataclass(config.actor_rollout_ref.rollout)
    omega_conf_to_dataclass(config.actor_rollout_ref.actor)
    omega_conf_to_dataclass(config.algorithm)


def to_yaml(config: Any) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(config, resolve=True)


def load_dataset(files: str | list[str], tokenizer: Any, data_config: Any) -> Any:
    """verl's dataset class for these parquet files (what its trainer reads)."""
    from verl.utils.dataset.rl_dataset import RLHFDataset

    return RLHFDataset(data_files=files, tokenizer=tokenizer, config=data_config)


def launch(config: Any) -> None:
    """`verl.trainer.main_ppo`'s body: Ray, the task runner, training to the last step."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    if config.trainer.use_v1:
        run_ppo(config, task_runner_class=TaskRunnerV1)
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner

        run_ppo(config, task_runner_class=TaskRunner)
