"""backend=verl launcher: our overrides become verl's validated config; bad plans are refused.

Needs verl (`.venv-verl/bin/python -m pytest tests/test_verl_config.py`); the test of the
missing-verl message runs everywhere.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from trainers.backends import verl as launcher

needs_verl = pytest.mark.skipif(
    find_spec("verl") is None,
    reason="verl is not installed in this Python: build .venv-verl (docs/verl.md)",
)
ENV = "refund_agent"
LLAMA2_13B = {  # Llama-2-13B's config.json (shape only)
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 5120,
    "intermediate_size": 13824,
    "num_hidden_layers": 40,
    "num_attention_heads": 40,
    "num_key_value_heads": 40,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from trainers.data import demonstrations, render_chat
    from trainers.tiny_model import build_tiny_model

    corpus = [
        render_chat([m.to_chat() for m in t.messages], t.tools) for t in demonstrations(ENV, 12)
    ]
    sizes = {
        "vocab_size": 1024,
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "num_kv_heads": 1,
    }
    return build_tiny_model(tmp_path_factory.mktemp("m") / "tiny", corpus, line_tokens=16, **sizes)


def _args(model: Path, out: Path, *extra: str, env: str = ENV) -> list[str]:
    return [f"env={env}", "backend=verl", f"model={model}", f"out={out}", "dry_run=true", *extra]


@needs_verl
def test_overrides_map_onto_a_validated_verl_config(tiny: Path, tmp_path: Path) -> None:
    import envs

    args = _args(tiny, tmp_path, "trainer.batch_size=64", "trainer.num_generations=4",
                 "trainer.beta=0.01", "trainer.nnodes=2", "trainer.n_gpus_per_node=8")  # fmt: skip
    _, config, out = launcher.prepare(args)
    rollout, actor = config.actor_rollout_ref.rollout, config.actor_rollout_ref.actor
    assert config.algorithm.adv_estimator == "grpo"
    assert rollout.n == 4 and config.data.train_batch_size == 16  # 64 episodes = 16 groups of 4
    assert rollout.name == "vllm" and rollout.mode == "async" and rollout.multi_turn.enable
    assert rollout.agent.default_agent_loop == "toolgym_env"
    assert rollout.response_length == 2048 and config.toolgym.max_turn_tokens == 512
    assert actor.use_kl_loss and actor.kl_loss_coef == 0.01 and actor.loss_agg_mode == "token-mean"
    assert actor.optim.lr == 1e-6 and config.trainer.total_training_steps == 30
    assert (config.trainer.nnodes, config.trainer.n_gpus_per_node) == (2, 8)  # passed through
    assert config.actor_rollout_ref.model.path == str(tiny)
    # the prompt budget: every opening of the env, rendered with its tools, fits; one fills it
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    train = envs.make_raw(ENV, split="train")
    for scenario in train.scenarios[:20]:
        start = train.begin(scenario, seed=0)
        text = tokenizer.apply_chat_template(
            start.messages, tools=start.tools, tokenize=False, add_generation_prompt=True
        )
        assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) <= rollout.prompt_length
    assert (out / "verl_config.yaml").is_file()
    launch = json.loads((out / "launch.json").read_text())
    assert launch["gpus"] == 16 and rollout.prompt_length == launch["prompt_length"]
    assert len(train.scenarios) == sum(1 for _ in _rows(out / "data" / "train.parquet"))


def _rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@needs_verl
def test_parquet_loads_with_verls_dataset_and_feeds_the_agent_loop(
    tiny: Path, tmp_path: Path
) -> None:
    import asyncio

    from transformers import AutoTokenizer

    import envs
    from trainers import verl_agent_loop as adapter
    from trainers.data import scenario_seed

    _, config, out = launcher.prepare(_args(tiny, tmp_path, "trainer.n_gpus_per_node=1"))
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    dataset = adapter.load_dataset(str(out / "data" / "eval.parquet"), tokenizer, config.data)
    env = envs.make_raw(ENV, split="eval")
    assert len(dataset) == len(env.scenarios)
    item = dataset[5]
    scenario = env.scenarios[5]
    seed = scenario_seed(0, scenario)
    assert (item["env"], item["split"], item["scenario_id"], item["seed"]) == (
        ENV,
        "eval",
        scenario.id,
        seed,
    )
    assert item["agent_name"] == "toolgym_env" and item["index"] == 5
    start = env.begin(scenario, seed=seed)
    assert [(m["role"], m["content"]) for m in item["raw_prompt"]] == [
        (m["role"], m["content"]) for m in start.messages
    ]
    # the row as verl hands it to the loop (non-tensor fields), through the registered loop
    row = {k: v for k, v in item.items() if k not in ("dummy_tensor", "agent_name")}

    class OneReply:
        async def generate(
            self, request_id: str, *, prompt_ids: list[int], sampling_params: dict, **_: Any
        ):
            ids = tokenizer("Sorry, I cannot help.<|im_end|>", add_special_tokens=False)[
                "input_ids"
            ]
            return adapter.TokenOutput(token_ids=ids)

    loop = adapter.instantiate_loop(config, OneReply(), tokenizer)
    out_row = asyncio.run(loop.run({"temperature": 1.0, "logprobs": False}, **row))
    assert out_row.prompt_ids  # the episode ran on the dataset's row
    assert out_row.extra_fields["reward_extra_info"]["turns"] >= 1.0


@needs_verl
def test_a_verl_key_passed_through_wins_over_the_mapping(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _args(tiny, tmp_path, "actor_rollout_ref.rollout.n=2", "trainer.n_gpus_per_node=1")
    _, config, _ = launcher.prepare(args)
    assert config.actor_rollout_ref.rollout.n == 2
    assert "replacing our mapping: actor_rollout_ref.rollout.n" in capsys.readouterr().out


@needs_verl
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("actor_rollout_ref.rollout.bogus_key=1", "bogus_key"),
        ("trainer.batch_size=10", "trainer.batch_size: 10 is not a multiple"),
        ("rollout=tgi", "rollout: 'tgi'"),
        ("trainer.loss_type=ppo", "trainer.loss_type: 'ppo'"),
    ],
)
def test_bad_keys_exit_2_naming_them(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, named: str
) -> None:
    assert launcher.main(_args(tiny, tmp_path, extra)) == 2
    assert named in capsys.readouterr().err


@needs_verl
def test_a_plan_that_cannot_fit_is_refused_with_its_numbers(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = tmp_path / "llama13b"
    shutil.copytree(tiny, big)
    (big / "config.json").write_text(json.dumps(LLAMA2_13B))
    args = _args(big, tmp_path / "run", "trainer.n_gpus_per_node=1", "trainer.nnodes=1")
    assert launcher.main(args) == 2
    err = capsys.readouterr().err
    # 13,016,273,920 parameters x 2 bytes x (weights, grads, 2 Adam states) = 104.1 GB, plus
    # the activations: more than one 80 GB GPU (72 GB usable) holds
    match = re.search(r"needs ([\d.]+) GB at its peak, ([\d.]+) GB on each of 1 GPU", err)
    assert match, err
    total = float(match.group(1))
    assert total > 104.13 and float(match.group(2)) == total
    assert f"at least {math.ceil(total / 72)} GPUs" in err
    assert "above 72 GB usable (80 GB x 0.9)" in err
    assert not (tmp_path / "run" / "data").exists()  # refused before writing anything


def test_without_verl_it_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(launcher.importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(launcher, "verl_python", lambda: None)
    assert launcher.main([f"env={ENV}", "backend=verl", "model=x"]) == 2
    err = capsys.readouterr().err
    assert "verl is not installed in" in err and ".venv-verl/bin/pip install" in err


def test_our_keys_and_verls_are_told_apart() -> None:
    ours, theirs = launcher.split_overrides(
        ["env=refund_agent", "trainer.max_steps=3", "trainer.nnodes=2", "+actor_rollout_ref.x=1"]
    )
    assert ours == ["env=refund_agent", "trainer.max_steps=3"]
    assert theirs == ["trainer.nnodes=2", "+actor_rollout_ref.x=1"]
    merged, replaced = launcher.merge_overrides(["a.b=1", "c=2"], ["a.b=3"])
    assert merged == ["c=2", "a.b=3"] and replaced == ["a.b"]


@needs_verl
def test_a_multi_agent_role_reaches_the_data_and_the_agent_loop(tiny: Path, tmp_path: Path) -> None:
    import envs

    args = _args(tiny, tmp_path, "trainer.n_gpus_per_node=1", "role=lookup", env="refund_handoff")
    _, config, out = launcher.prepare(args)
    assert dict(config.toolgym.env_kwargs) == {"role": "lookup"}  # every env the loop builds
    row = _rows(out / "data" / "train.parquet")[0]
    lookup = envs.make_raw("refund_handoff", split="train", role="lookup")
    acting = envs.make_raw("refund_handoff", split="train")
    where = row["extra_info"]
    opening = [
        m["content"] for m in lookup.begin(where["scenario_id"], seed=where["seed"]).messages
    ]
    assert [m["content"] for m in row["prompt"]] == opening  # the lookup agent's view
    assert opening != [m["content"] for m in acting.begin(where["scenario_id"]).messages]


@needs_verl
def test_a_role_for_an_env_without_roles_exits_2_naming_it(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launcher.main(_args(tiny, tmp_path, "role=lookup")) == 2
    assert "role" in capsys.readouterr().err
