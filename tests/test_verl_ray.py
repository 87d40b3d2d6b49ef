"""verl's own AgentLoopWorker, as a Ray actor on a local CPU cluster, plays our episodes.

Nothing tells the worker where our code is: `import verl` in the worker loads the
`verl.plugins` entry point, which registers the loop; a third-party env package (the
`letter_count` example, installed as a distribution on the workers' path) is found
through its `toolgym.envs` entry point. The generation server is the project's tiny CPU
model behind verl's server-client interface. Slow (Ray start, worker imports: ~2 min).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "verl", reason="verl is not installed in this Python: build .venv-verl (docs/verl.md)"
)

from trainers import verl_agent_loop as va
from trainers.backends import verl as launcher

pytestmark = pytest.mark.slow
PLUGIN_SRC = Path(__file__).resolve().parent / "plugin_pkg"
ENTRY_POINTS = "[toolgym.envs]\nletter_count = letter_count_env.env:LetterCountEnv\n"


def install_plugin(site: Path) -> Path:
    """The example env package as an installed distribution (package + dist-info) in `site`."""
    shutil.copytree(PLUGIN_SRC / "letter_count_env", site / "letter_count_env")
    info = site / "letter_count_env-0.3.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: letter-count-env\nVersion: 0.3.1\n"
    )
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    return site


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    import ray

    site = install_plugin(tmp_path_factory.mktemp("site"))
    sys.path.insert(0, str(site))
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), old) if p)
    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()
    sys.path.remove(str(site))
    if old is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = old


def generate(cluster: Any, config: Any, tiny: Path, files: list[Path], n: int) -> Any:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from verl.experimental.agent_loop.agent_loop import AgentLoopWorker
    from verl.protocol import DataProto
    from verl.utils.dataset.rl_dataset import collate_fn

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    dataset = va.load_dataset([str(f) for f in files], tokenizer, config.data)
    batch = DataProto.from_single_dict(collate_fn([dataset[i] for i in range(n)]))
    server = va.HFGenerationServer(AutoModelForCausalLM.from_pretrained(tiny), tokenizer, seed=0)
    worker = cluster.remote(AgentLoopWorker).remote(config, server)
    return cluster.get(worker.generate_sequences.remote(batch))


def test_verls_agent_loop_worker_plays_our_env_and_a_plugin_env(
    cluster: Any, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    import envs
    from tests.test_verl_config import _args
    from trainers.data import demonstrations, render_chat
    from trainers.tiny_model import build_tiny_model

    corpus = [
        render_chat([m.to_chat() for m in t.messages], t.tools)
        for t in demonstrations("refund_agent", 12)
    ]
    sizes = {
        "vocab_size": 1024,
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "num_kv_heads": 1,
    }
    tiny = build_tiny_model(tmp_path / "tiny", corpus, line_tokens=16, **sizes)
    settings = (
        "trainer.n_gpus_per_node=1",
        "trainer.max_episode_tokens=256",
        "trainer.max_turn_tokens=48",
        "actor_rollout_ref.rollout.agent.num_workers=1",
    )
    _, config, out = launcher.prepare(_args(tiny, tmp_path / "run", *settings))
    assert config.actor_rollout_ref.rollout.agent.agent_loop_config_path is None  # no file path
    result = generate(cluster, config, tiny, [out / "data" / "eval.parquet"], 2)
    weights = dict(envs.make_raw("refund_agent", split="eval").rubric.weights)
    check_batch(result, weights, response_length=256, prompt_length=config.data.max_prompt_length)

    # the plugin env, launched the same way: `env=letter_count` and nothing else changes
    plugin_args = _args(tiny, tmp_path / "plugin", *settings, env="letter_count")
    _, config, out = launcher.prepare(plugin_args)
    result = generate(cluster, config, tiny, [out / "data" / "train.parquet"], 2)
    weights = dict(envs.make_raw("letter_count", split="train").rubric.weights)
    check_batch(result, weights, response_length=256, prompt_length=config.data.max_prompt_length)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    prompt = tokenizer.decode(result.batch["prompts"][0], skip_special_tokens=True)
    word = envs.make_raw("letter_count", split="train").scenarios[0].word
    assert word in prompt  # the plugin env's own opening, rendered in the worker


def check_batch(
    result: Any, weights: dict[str, float], response_length: int, prompt_length: int
) -> None:
    batch, extra = result.batch, result.non_tensor_batch
    assert batch["responses"].shape == (2, response_length)
    assert batch["prompts"].shape == (2, prompt_length)
    assert (batch["response_mask"].sum(-1) > 0).all()  # the model's own tokens are trained on
    assert result.meta_info["reward_extra_keys"] == [*weights, *va.EXTRA_KEYS]
    for i in range(2):
        total = sum(w * float(extra[name][i]) for name, w in weights.items())
        assert float(batch["rm_scores"][i].sum()) == pytest.approx(total)  # reward = env total
        assert float(extra["infra_error"][i]) == 0.0
