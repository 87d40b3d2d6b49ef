"""GRPO: token rollouts mask env tokens, a 2-step run works end to end, bad configs stop early."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

import envs
from core.sampling import Sampling
from envs.rollout import EpisodeJob
from tests.conftest import lost_order_scenario
from trainers import grpo
from trainers.data import demonstrations, render_chat
from trainers.manifest import MANIFEST_KEYS
from trainers.tiny_model import build_tiny_model
from trainers.token_rollout import TokenPolicy, play

SIZES = {"vocab_size": 1024, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1}
EXPERT_TURNS = [
    '<tool_call>\n{"name": "get_customer_id", "arguments": {"session_id": 90412}}\n</tool_call>',
    '<tool_call>\n{"name": "check_refund", "arguments": {"customer_id": 42, "order_id": 1001}}'
    "\n</tool_call>",
    '<tool_call>\n{"name": "issue_refund", "arguments": {"customer_id": 42, "order_id": 1001, '
    '"reason": "lost"}}\n</tool_call>',
    "Your order #1001 has been refunded.",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = []
    for t in demonstrations("refund_agent", 12):
        corpus.append(render_chat([m.to_chat() for m in t.messages], t.tools))
    return build_tiny_model(tmp_path_factory.mktemp("m") / "tiny", corpus, line_tokens=16, **SIZES)


class ScriptedLM:
    """Stands in for a causal LM: `generate` appends the next scripted turn of each row."""

    training = False
    device = "cpu"

    def __init__(self, tokenizer: Any, turns: list[str], eos: bool = True) -> None:
        self.config = type("Config", (), {"_name_or_path": "scripted"})()
        end = "<|im_end|>" if eos else ""
        self.turns = [tokenizer(t + end, add_special_tokens=False)["input_ids"] for t in turns]
        self.calls = 0
        self.pad = tokenizer.pad_token_id

    def eval(self) -> None: ...

    def train(self, mode: bool = True) -> None: ...

    def generate(self, input_ids: Any, attention_mask: Any, max_new_tokens: int, **kw: Any) -> Any:
        import torch

        new = self.turns[min(self.calls, len(self.turns) - 1)][:max_new_tokens]
        self.calls += 1
        rows = [row.tolist() + new + [self.pad] * (max_new_tokens - len(new)) for row in input_ids]
        return torch.tensor(rows)


def _play(tiny: Path, turns: list[str], sampling: Sampling, eos: bool = True) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny)
    scenario = lost_order_scenario()
    policy = TokenPolicy(ScriptedLM(tok, turns, eos), tok, sampling)
    jobs = [EpisodeJob(scenario, 3, metadata={"episode": 0})]
    (episode,), timings = play(
        lambda: envs.make_raw("refund_agent", scenarios=[scenario]), policy, jobs
    )
    return tok, episode, timings


def test_env_mask_marks_model_tokens_one_and_env_tokens_zero(tiny: Path) -> None:
    tok, episode, timings = _play(tiny, EXPERT_TURNS, Sampling(max_turn_tokens=64))
    traj, rec = episode.trajectory, episode.tokens
    assert traj.success and traj.turns == 4
    assert len(rec.completion_ids) == len(rec.env_mask)
    model = [t for t, m in zip(rec.completion_ids, rec.env_mask, strict=True) if m == 1]
    env = [t for t, m in zip(rec.completion_ids, rec.env_mask, strict=True) if m == 0]
    assert tok.decode(model) == "<|im_end|>".join(EXPERT_TURNS) + "<|im_end|>"
    env_text = tok.decode(env)
    assert env_text.count("<tool_response>") == 3 and '"customer_id": 42' in env_text
    assert "<|im_start|>assistant" in env_text and "get_customer_id" not in env_text
    # the token stream is exactly the conversation the env recorded, rendered once
    full = render_chat([m.to_chat() for m in traj.messages], traj.tools)
    assert tok.decode(rec.prompt_ids + rec.completion_ids) == full.rstrip("\n")
    assert rec.completion_ids[-1] == tok.convert_tokens_to_ids("<|im_end|>")
    assert set(timings) == {"generate", "tokenize", "total", "env"}


def test_turn_without_eos_is_closed_by_an_env_token(tiny: Path) -> None:
    tok, episode, _ = _play(tiny, EXPERT_TURNS, Sampling(max_turn_tokens=64), eos=False)
    rec = episode.tokens
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    closers = [m for t, m in zip(rec.completion_ids, rec.env_mask, strict=True) if t == eos]
    assert set(closers) == {0}  # the model never wrote <|im_end|>: every one is the env's
    assert rec.completion_ids[-1] == eos and rec.env_mask[-1] == 0


def test_episode_budget_cuts_the_record_and_ends_the_episode(tiny: Path) -> None:
    _, episode, _ = _play(tiny, EXPERT_TURNS, Sampling(max_turn_tokens=64, max_episode_tokens=60))
    rec = episode.tokens
    assert rec.capped and len(rec.completion_ids) == 60
    assert rec.completion_ids[-1] != 2  # no EOS: TRL counts it clipped and masks it
    assert episode.trajectory.done and not episode.trajectory.success


# ---- end to end -----------------------------------------------------------------------------
def _overrides(tiny: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [
        "env=refund_agent",
        f"model={tiny}",
        f"out={out}",
        f"trainer.max_steps={steps}",
        "trainer.batch_size=4",
        "trainer.num_generations=2",
        "trainer.max_turn_tokens=24",
        "trainer.max_episode_tokens=96",
        "trainer.save_steps=1",
        "trainer.learning_rate=1e-3",
        "max_turns=3",
        "eval.enabled=false",
        *extra,
    ]


@pytest.mark.slow
def test_two_grpo_steps_end_to_end_then_resume(tiny: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "run"
    assert grpo.main(_overrides(tiny, out, 2)) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert len(steps) == 2 and all(math.isfinite(r["loss"]) for r in steps)
    env = envs.make_raw("refund_agent", split="train")
    for name in env.rubric.weights:
        assert all(f"rewards/{name}/mean" in r for r in steps), name
    assert all("tools/call_frequency" in r and "tools/failure_frequency" in r for r in steps)
    assert AutoModelForCausalLM.from_pretrained(out / "final").config.vocab_size > 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(MANIFEST_KEYS) <= set(manifest) and manifest["result"]["steps"] == 2
    assert manifest["reward_spec"] == dict(env.rubric.weights)
    assert list((out / "tb").iterdir())  # TensorBoard event files

    assert grpo.main(_overrides(tiny, out, 3, "resume=true")) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["result"]["steps"] == 3
    assert manifest["result"]["resumed_from"].endswith("checkpoint-2")
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("env=no_such_env", "env: unknown env 'no_such_env'; allowed: "),
        ("model=/no/such/folder", "model: no model folder at '/no/such/folder'"),
        ("trainer.num_generations=3", "trainer.batch_size: 4 is not a multiple of"),
        ("trainer.num_generations=1", "trainer.num_generations: 1 < 2"),
        ("backend=nope", "backend: unknown backend 'nope'; allowed: trl"),
        ("trainer.bogus=1", "trainer"),
    ],
)
def test_bad_config_stops_before_any_work(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, key: str
) -> None:
    out = tmp_path / "run"
    argv = [*_overrides(tiny, out, 1), override]
    if override.startswith("trainer.bogus"):
        argv[-1] = "+trainer.bogus=1"
    assert grpo.main(argv) == 2
    assert key in capsys.readouterr().err
    assert not out.exists()
