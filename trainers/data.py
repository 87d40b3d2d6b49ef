"""The trainers' data: the tiny tokenizer's corpus, SFT demonstrations and GRPO prompt rows.

Contract (train split only, everywhere: the frozen eval split is never read here):

* `demonstrations(env_name, n, mix, seed)` plays the env's declared scripted policies
  (its card's `expert` and failure modes) over `n` train
  scenarios (`spread`: drawn with `seed`, so every case shows up) with the one rollout
  loop and returns their trajectories: the expert's (kept only when they succeed with the
  maximum reward, as `policies.sft_export.expert_trajectories` does), except that a
  seeded share of the scenarios, `mix[mode]` for each failure mode (the seed's
  `name_instead_of_id`, `quitter`, ...), is demonstrated by that mode instead (kept
  whatever it scores: that is the point).
  A failure mode whose episode is identical to the expert's on that scenario (a quitter
  where nothing needs escalating) counts as an expert demonstration.
* `sft_rows(trajectories)` exports them with `policies.sft_export.sft_record` and turns
  every assistant message back into the exact text a model writes
  (`policies.sft_export.hermes_text`), so SFT trains on the token stream the rollouts
  produce; rows are `{"messages": [...], "tools": "<json>", "scenario_id", "slices",
  "policy"}` (tools as a JSON string: Arrow would merge the schemas' keys).
* `default_corpus(env_name)`: the text the default tokenizer is trained on: every train
  scenario's system prompt and opening, plus expert trajectories rendered with the chat
  template and the env's tool schemas.
* `grpo_rows(env, scenarios, seed)`: one row per scenario: `prompt` (the env's opening
  messages; the last one carries `JOB_KEY` = "<scenario id>|<seed>", which is how
  `rollout_func`, which only sees prompts, finds its scenario and seed), `scenario_id`,
  `seed` (`scenario_seed(seed, scenario)`), `slices`.

No ML framework is imported here except inside `render_chat` (jinja2 via transformers).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from core.records import Trajectory
from core.seeding import episode_seed
from envs.base import ToolEnv
from scenarios.schema import Scenario

JOB_KEY = "toolgym_job"


def scenario_seed(seed: int, scenario: Scenario) -> int:
    """The reset seed of a scenario's episodes (`core.seeding.episode_seed`, epoch 0)."""
    return episode_seed(seed, scenario.env, scenario.content_hash)


def spread(scenarios: Sequence[Scenario], n: int | None, seed: int) -> list[Scenario]:
    """`n` scenarios drawn without replacement with `seed` (all, shuffled, when n is None)."""
    order = np.random.default_rng(seed).permutation(len(scenarios))
    return [scenarios[i] for i in order[: n if n is not None else len(scenarios)]]


def _play(
    env_name: str,
    policy_name: str,
    scenarios: Sequence[Scenario],
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
) -> list:
    import envs
    from envs.rollout import EpisodeJob, rollout
    from policies.registry import make_policy

    if not scenarios:
        return []
    jobs = [EpisodeJob(s, seed=scenario_seed(seed, s)) for s in scenarios]
    by_id = {
        t.scenario_id: t
        for t in rollout(
            lambda: envs.make_raw(env_name, scenarios=list(scenarios), **(env_kwargs or {})),
            make_policy(policy_name, env_name),
            jobs,
        )
    }
    return [by_id[s.id] for s in scenarios]


def demonstrations(
    env_name: str,
    n: int | None = None,
    *,
    mix: dict[str, float] | None = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
) -> list[Trajectory]:
    """Demonstrations on `n` train scenarios by the env's declared expert; `mix` maps
    the env's failure modes to their shares (None: the env's declared `demo_mix`).
    `env_kwargs` go to every env played (a multi-agent env's `role`: whose turns)."""
    import envs

    card = envs.card(env_name)
    if card.expert is None:
        raise ValueError(f"env '{env_name}' declares no expert policy to demonstrate")
    mix = dict(card.demo_mix if mix is None else mix)
    if sum(mix.values()) > 1.0 + 1e-9 or any(v < 0 for v in mix.values()):
        raise ValueError(f"failure shares must be >= 0 and sum to <= 1, got {mix}")
    env = envs.make_raw(env_name, split=card.train_split)
    scenarios = spread(env.scenarios, n, seed)
    expert = _play(env_name, card.expert, scenarios, seed, env_kwargs)
    draws = np.random.default_rng(seed).random(len(scenarios))
    edges = np.cumsum(list(mix.values()))
    picks = np.searchsorted(edges, draws, side="right")  # == len(mix): the expert
    chosen = list(expert)
    for k, mode in enumerate(mix):
        idx = [i for i in range(len(scenarios)) if picks[i] == k]
        for i, t in zip(
            idx, _play(env_name, mode, [scenarios[i] for i in idx], seed, env_kwargs), strict=True
        ):
            chosen[i] = t
    best = max((t.reward for t in expert if t.success), default=None)
    kept = []
    for original, trajectory in zip(expert, chosen, strict=True):
        is_expert = trajectory is original
        if not is_expert and _same_text(trajectory, original):
            trajectory, is_expert = original, True
        # The expert's demonstrations teach only its best: successful, top-reward episodes.
        if is_expert and not (trajectory.success and trajectory.reward >= (best or 0.0) - 1e-9):
            continue
        kept.append(trajectory)
    return kept


def _same_text(a: Trajectory, b: Trajectory) -> bool:
    return [m.content for m in a.messages] == [m.content for m in b.messages]


def sft_rows(trajectories: Sequence[Trajectory]) -> list[dict[str, Any]]:
    """Chat SFT rows whose assistant turns are the exact text the policy wrote."""
    from policies.sft_export import hermes_text, sft_record

    rows = []
    for trajectory in trajectories:
        record = sft_record(trajectory)
        messages = []
        for message in record["messages"]:
            if message["role"] == "assistant":
                messages.append({"role": "assistant", "content": hermes_text(message)})
            else:
                messages.append({"role": message["role"], "content": message["content"]})
        rows.append(
            {
                "messages": messages,
                "tools": json.dumps(record["tools"]),
                "scenario_id": trajectory.scenario_id,
                "slices": list(trajectory.slices),
                "policy": trajectory.policy or "",
            }
        )
    return rows


def render_chat(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, **kw: Any
) -> str:
    """Render with TRL's Qwen 2.5 template (the tiny model's), without a tokenizer."""
    from transformers.utils.chat_template_utils import render_jinja_template

    from trainers.tiny_model import qwen2_5_chat_template

    rendered = render_jinja_template(
        [messages], tools=tools, chat_template=qwen2_5_chat_template(), **kw
    )
    text = rendered[0] if isinstance(rendered, tuple) else rendered
    return text[0] if isinstance(text, list) else text


def default_corpus(env_name: str, n_trajectories: int = 240) -> list[str]:
    """System prompts and openings of every train scenario, plus rendered expert episodes."""
    import envs

    env = envs.make_raw(env_name, split="train")
    texts = []
    for scenario in env.scenarios:
        opening = env.opening_messages(scenario)
        texts.extend(m.content for m in opening)
    trajectories = demonstrations(env_name, n_trajectories)
    for trajectory in trajectories:
        chat = [m.to_chat() for m in trajectory.messages]
        texts.append(render_chat(chat, trajectory.tools))
    return texts


def grpo_rows(env: ToolEnv, scenarios: Sequence[Scenario], seed: int) -> list[dict[str, Any]]:
    """One GRPO prompt row per scenario (see the module docstring)."""
    rows = []
    for scenario in scenarios:
        episode = scenario_seed(seed, scenario)
        prompt = [m.to_chat() for m in env.opening_messages(scenario)]
        prompt = [{"role": m["role"], "content": m["content"], JOB_KEY: ""} for m in prompt]
        prompt[-1][JOB_KEY] = f"{scenario.id}|{episode}"
        rows.append(
            {
                "prompt": prompt,
                "scenario_id": scenario.id,
                "seed": episode,
                "slices": list(scenario.slices),
            }
        )
    return rows


def parse_job(prompt: list[dict[str, Any]]) -> tuple[str, int]:
    """(scenario id, seed) from a GRPO prompt built by `grpo_rows`."""
    for message in reversed(prompt):
        key = message.get(JOB_KEY)
        if key:
            scenario_id, _, seed = str(key).rpartition("|")
            return scenario_id, int(seed)
    raise ValueError(f"a GRPO prompt without its '{JOB_KEY}' (rows come from trainers.data)")
