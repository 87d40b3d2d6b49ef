"""verl agent loop: episodes of the real env through verl's own loop classes on CPU.

Runs in the verl venv (`.venv-verl/bin/python -m pytest tests/test_verl_agent_loop.py`);
elsewhere it is skipped. The generation server is a stand-in with verl's server-client
interface: scripted token ids, or the project's real tiny HF model.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "verl", reason="verl is not installed in this Python: build .venv-verl (docs/verl.md)"
)

import envs
from core.sampling import Sampling
from envs.rollout import EpisodeJob, run_episode
from policies.registry import make_policy
from trainers import verl_agent_loop as va
from trainers.data import demonstrations, render_chat, scenario_seed
from trainers.tiny_model import build_tiny_model
from trainers.token_rollout import TokenPolicy, play

SIZES = {"vocab_size": 1024, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1}
ENV = "refund_agent"
EOS = "<|im_end|>"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [
        render_chat([m.to_chat() for m in t.messages], t.tools) for t in demonstrations(ENV, 12)
    ]
    return build_tiny_model(tmp_path_factory.mktemp("m") / "tiny", corpus, line_tokens=16, **SIZES)


@pytest.fixture(scope="module")
def tokenizer(tiny: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


def verl_config(response_length: int = 768, max_turn_tokens: int = 128) -> Any:
    return va.compose(
        [
            "algorithm.adv_estimator=grpo",
            "actor_rollout_ref.rollout.prompt_length=2048",
            f"actor_rollout_ref.rollout.response_length={response_length}",
        ],
        extra={"toolgym": {"max_turn_tokens": max_turn_tokens}},
    )


@pytest.fixture(scope="module")
def config() -> Any:
    return verl_config()


def expert_turns(scenario: Any, seed: int) -> list[str]:
    """What the env's expert says on this scenario, turn by turn (raw assistant text)."""
    env = envs.make_raw(ENV, split="train")
    policy = make_policy(envs.card(ENV).expert, env=ENV)
    trajectory = run_episode(env, policy, scenario=scenario, seed=seed)
    return [m.content for m in trajectory.messages if m.role == "assistant"]


class ScriptedServer:
    """verl's server-client interface; answers turn k with the k-th scripted token ids."""

    def __init__(self, tokenizer: Any, turns: list[str]) -> None:
        self.turns = [tokenizer(t + EOS, add_special_tokens=False)["input_ids"] for t in turns]
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def generate(self, request_id: str, *, prompt_ids: list[int], sampling_params: dict, **_):
        self.calls.append((request_id, dict(sampling_params)))
        ids = self.turns[min(len(self.calls) - 1, len(self.turns) - 1)]
        return va.TokenOutput(token_ids=ids[: sampling_params["max_tokens"]])


class ScriptedLM:
    """The same script as a causal LM for the TRL backend's `TokenPolicy`."""

    training, device = False, "cpu"

    def __init__(self, tokenizer: Any, turns: list[str]) -> None:
        self.config = type("Config", (), {"_name_or_path": "scripted"})()
        self.turns = [tokenizer(t + EOS, add_special_tokens=False)["input_ids"] for t in turns]
        self.calls, self.pad = 0, tokenizer.pad_token_id

    def eval(self) -> None: ...

    def train(self, mode: bool = True) -> None: ...

    def generate(self, input_ids: Any, attention_mask: Any, max_new_tokens: int, **_: Any) -> Any:
        import torch

        new = self.turns[min(self.calls, len(self.turns) - 1)][:max_new_tokens]
        self.calls += 1
        pad = [self.pad] * (max_new_tokens - len(new))
        return torch.tensor([row.tolist() + new + pad for row in input_ids])


class FailingServer:
    async def generate(self, request_id: str, **_: Any) -> Any:
        raise RuntimeError("connection reset by the rollout server")


def row_for(scenario: Any, seed: int, split: str = "train") -> dict[str, Any]:
    return {"env": ENV, "split": split, "scenario_id": scenario.id, "seed": seed, "raw_prompt": []}


def run(loop_obj: Any, rows: list[dict[str, Any]], **params: Any) -> list[Any]:
    sampling = {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": False, **params}

    async def all_rows() -> list[Any]:
        return await asyncio.gather(*(loop_obj.run(dict(sampling), **row) for row in rows))

    return asyncio.run(all_rows())


def test_scripted_tokens_give_the_same_episode_as_the_trl_backend(
    config: Any, tokenizer: Any
) -> None:
    scenario = envs.make_raw(ENV, split="train").scenarios[0]
    seed = scenario_seed(0, scenario)
    turns = expert_turns(scenario, seed)
    assert len(turns) == 5  # id, tracking, eligibility, refund, final reply

    # the TRL backend's token rollout
    trl_policy = TokenPolicy(ScriptedLM(tokenizer, turns), tokenizer, Sampling(max_turn_tokens=128))
    job = EpisodeJob(scenario, seed, 0, {"episode": 0})
    (trl_episode,), _ = play(lambda: envs.make_raw(ENV, split="train"), trl_policy, [job])

    # the verl agent loop, built the way verl's AgentLoopWorker builds it
    server = ScriptedServer(tokenizer, turns)
    (out,) = run(va.instantiate_loop(config, server, tokenizer), [row_for(scenario, seed)])

    rec, trajectory = trl_episode.tokens, trl_episode.trajectory
    assert out.prompt_ids == rec.prompt_ids
    assert out.response_ids == rec.completion_ids
    assert out.response_mask == rec.env_mask
    assert trajectory.success and trajectory.reward == 7.0  # seven components, all 1.0
    assert out.reward_score == 7.0
    info = out.extra_fields["reward_extra_info"]
    assert {k: info[k] for k in trajectory.reward_components} == trajectory.reward_components
    assert (info["success"], info["turns"], info["tool_calls"], info["infra_error"]) == (1, 5, 4, 0)
    # the model's own tokens are exactly the server's, in order; one request id per episode
    model = [t for t, m in zip(out.response_ids, out.response_mask, strict=True) if m]
    assert model == [t for ids in server.turns for t in ids]
    assert len({request_id for request_id, _ in server.calls}) == 1
    assert all(p["stop_token_ids"] and p["max_tokens"] <= 128 for _, p in server.calls)
    env_text = tokenizer.decode(
        [t for t, m in zip(out.response_ids, out.response_mask, strict=True) if not m]
    )
    assert env_text.count("<tool_response>") == 4


def test_real_tiny_model_behind_the_server_interface(
    config: Any, tokenizer: Any, tiny: Path
) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny)
    server = va.HFGenerationServer(model, tokenizer, seed=0)
    served: list[list[int]] = []
    generate = server._generate

    def recording(prompt_ids: list[int], params: dict[str, Any]) -> Any:
        out = generate(prompt_ids, params)
        served.append(list(out.token_ids))
        return out

    server._generate = recording  # type: ignore[method-assign]
    scenarios = envs.make_raw(ENV, split="eval").scenarios[:2]
    rows = [row_for(s, scenario_seed(0, s), split="eval") for s in scenarios]
    t0 = time.perf_counter()
    outputs = run(va.instantiate_loop(config, server, tokenizer), rows, logprobs=True)
    per_episode = (time.perf_counter() - t0) / len(rows)
    print(f"\n[verl agent loop] tiny CPU model: {per_episode:.2f} s per episode")
    weights = dict(envs.make_raw(ENV, split="eval").rubric.weights)
    components = list(weights)
    for out in outputs:
        n = len(out.response_ids)
        assert 0 < n <= 768 and len(out.response_mask) == n and len(out.response_logprobs) == n
        info = out.extra_fields["reward_extra_info"]
        assert list(info) == [*components, *va.EXTRA_KEYS]  # same keys, same order, every sample
        assert out.reward_score == pytest.approx(sum(w * info[c] for c, w in weights.items()))
        logprobs = [lp for lp, m in zip(out.response_logprobs, out.response_mask, strict=True) if m]
        assert all(lp <= 0.0 for lp in logprobs)
        assert all(
            lp == 0.0
            for lp, m in zip(out.response_logprobs, out.response_mask, strict=True)
            if not m
        )
    assert len(set(server.request_ids)) == 2  # one id per episode, two episodes
    # every model token in the records is a token the server produced (never re-encoded)
    model_tokens = sorted(
        t for out in outputs for t, m in zip(out.response_ids, out.response_mask, strict=True) if m
    )
    produced = sorted(t for ids in served for t in ids)
    assert model_tokens == produced


@pytest.mark.parametrize(("turn_budget", "episode_budget"), [(8, 768), (128, 60)])
def test_turn_and_episode_budgets_as_in_the_trl_backend(
    tokenizer: Any, turn_budget: int, episode_budget: int
) -> None:
    scenario = envs.make_raw(ENV, split="train").scenarios[0]
    seed = scenario_seed(0, scenario)
    turns = expert_turns(scenario, seed)
    sampling = Sampling(max_turn_tokens=turn_budget, max_episode_tokens=episode_budget)
    trl_policy = TokenPolicy(ScriptedLM(tokenizer, turns), tokenizer, sampling)
    job = EpisodeJob(scenario, seed, 0, {"episode": 0})
    (trl_episode,), _ = play(lambda: envs.make_raw(ENV, split="train"), trl_policy, [job])
    server = ScriptedServer(tokenizer, turns)
    config = verl_config(response_length=episode_budget, max_turn_tokens=turn_budget)
    (out,) = run(va.instantiate_loop(config, server, tokenizer), [row_for(scenario, seed)])
    assert out.response_ids == trl_episode.tokens.completion_ids
    assert out.response_mask == trl_episode.tokens.env_mask
    assert out.reward_score == trl_episode.trajectory.reward
    assert all(p["max_tokens"] <= turn_budget for _, p in server.calls)
    if episode_budget == 60:
        assert len(out.response_ids) == 60  # the episode budget cuts the record
    else:  # the first turn is cut after 8 tokens; it has no tool call, so it is the final reply
        assert out.response_mask[:8] == [1] * 8 and out.response_mask[8] == 0
        assert out.extra_fields["reward_extra_info"]["turns"] == 1.0
    assert out.extra_fields["reward_extra_info"]["success"] == 0.0


def test_server_failure_is_an_infrastructure_error_not_a_crash(config: Any, tokenizer: Any) -> None:
    scenario = envs.make_raw(ENV, split="train").scenarios[0]
    (out,) = run(va.instantiate_loop(config, FailingServer(), tokenizer), [row_for(scenario, 3)])
    info = out.extra_fields["reward_extra_info"]
    assert info["infra_error"] == 1.0 and out.reward_score == 0.0
    assert set(out.response_mask) <= {0}  # nothing of it is trained on


def test_unknown_scenario_is_named(config: Any, tokenizer: Any) -> None:
    row = {**row_for(envs.make_raw(ENV, split="train").scenarios[0], 0), "scenario_id": "nope"}
    with pytest.raises(KeyError, match="split 'train' has no scenario nope"):
        run(va.instantiate_loop(config, FailingServer(), tokenizer), [row])


def test_the_agent_loop_config_file_builds_the_same_loop(tokenizer: Any) -> None:
    from omegaconf import OmegaConf

    from configs import CONFIG_DIR

    (entry,) = OmegaConf.load(CONFIG_DIR / "verl_agent_loop.yaml")
    assert entry.name == "toolgym_env"
    entry.max_turn_tokens = 8  # the file's kwargs reach the loop
    scenario = envs.make_raw(ENV, split="train").scenarios[0]
    seed = scenario_seed(0, scenario)
    server = ScriptedServer(tokenizer, expert_turns(scenario, seed))
    loop = va.instantiate_loop(verl_config(), server, tokenizer, entry=entry)
    assert isinstance(loop, va.ToolgymAgentLoop) and loop.max_turn_tokens == 8
    (out,) = run(loop, [row_for(scenario, seed)])
    assert out.response_mask[:8] == [1] * 8 and out.response_mask[8] == 0
