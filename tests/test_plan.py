"""Capacity planner: the seed's 13B GRPO table and 30 QPS serving example, worked by hand."""

from __future__ import annotations

import math

import pytest

from trainers import plan as tp

# 13B in the seed's precision (fp16): 13e9 parameters x 2 bytes = 26 GB.
WEIGHTS_13B = 26.0
# Llama-2-13B: 40 layers, hidden 5120, 32k vocabulary. Default group: 8 sequences x 768 tokens.
TOKENS = 8 * 768
ACTIVATIONS_13B = (TOKENS * 40 * 5120 * 34 + TOKENS * 32_000 * 4) / 1e9  # 43.568 GB
KV_13B = TOKENS * (2 * 40 * 5120) * 2 / 1e9  # K and V, 40 layers x 5120, 2 bytes: 5.033 GB


def test_13b_grpo_reproduces_the_seed_table() -> None:
    result = tp.train_plan(tp.TrainSpec(shape=tp.shape_for("13B")))
    c = result.components
    assert c["policy weights"] == pytest.approx(WEIGHTS_13B)
    assert c["policy weights"] + c["policy gradients"] + c["policy Adam states (2)"] == (
        pytest.approx(104.0)  # the seed's "26 GB x 4"
    )
    assert c["reference model"] == pytest.approx(26.0)
    assert c["reward model"] == pytest.approx(14.0)  # the seed's ~7B reward model
    assert c["activations"] == pytest.approx(ACTIVATIONS_13B)
    assert 30 <= c["activations"] <= 50  # the seed's range for group-rollout activations
    assert result.total_gb == pytest.approx(144.0 + ACTIVATIONS_13B)
    assert 170 <= result.total_gb <= 190  # the seed's ~170-190 GB
    # the rollout phase (engine weights + KV cache) is smaller than the activations here
    assert result.rollout_phase["KV cache"] == pytest.approx(KV_13B)
    assert sum(result.rollout_phase.values()) == pytest.approx(26.0 + KV_13B)
    # 187.6 GB over 80 GB GPUs with 90% usable (72 GB): 2.6 -> 3 GPUs
    assert result.gpus_needed == 3
    assert not result.fits  # one GPU (tp=dp=1) holds 187.6 GB: no


def test_sharding_divides_the_peak_and_decides_the_fit() -> None:
    spec = tp.TrainSpec(shape=tp.shape_for("13B"), tp=2, dp=2)
    result = tp.train_plan(spec)
    assert result.per_gpu_gb == pytest.approx((144.0 + ACTIVATIONS_13B) / 4)  # 46.9 GB
    assert result.fits
    # 8 x 24 GB cards (21.6 GB usable): 187.6 / 21.6 = 8.7 -> 9, rounded up to tp=2 -> 10
    small = tp.train_plan(tp.TrainSpec(shape=tp.shape_for("13B"), tp=2, gpu_mem_gb=24))
    assert small.gpus_needed == 10


def test_rule_scored_env_without_kl_needs_no_reference_or_reward_model() -> None:
    spec = tp.TrainSpec(shape=tp.shape_for("13B"), reward_model=0, reference=False)
    result = tp.train_plan(spec)
    assert "reference model" not in result.components
    assert "reward model" not in result.components
    assert result.total_gb == pytest.approx(104.0 + ACTIVATIONS_13B)


def test_kv_cache_dominates_when_the_rollout_is_wide() -> None:
    # 256 sequences in flight: KV = 256 x 768 x 204,800 x 2 B = 80.5 GB (+26 GB engine weights)
    spec = tp.TrainSpec(shape=tp.shape_for("13B"), rollout_sequences=256, reward_model=0)
    result = tp.train_plan(spec)
    kv = 256 * 768 * 2 * 40 * 5120 * 2 / 1e9
    assert result.rollout_phase["KV cache"] == pytest.approx(kv)
    assert result.total_gb == pytest.approx(104.0 + 26.0 + 26.0 + kv)


def test_ppo_adds_a_trained_critic_and_lora_trains_one_percent() -> None:
    ppo = tp.train_plan(tp.TrainSpec(shape=tp.shape_for("13B"), method="ppo"))
    assert ppo.components["critic (weights+grads+Adam)"] == pytest.approx(104.0)
    lora = tp.train_plan(tp.TrainSpec(shape=tp.shape_for("13B"), method="lora"))
    assert lora.components["policy gradients"] == pytest.approx(0.26)
    assert lora.components["policy Adam states (2)"] == pytest.approx(0.52)
    assert lora.total_gb == pytest.approx(26.0 + 0.78 + ACTIVATIONS_13B)


def test_serving_30_qps_needs_10_gpus_plus_30_percent() -> None:
    result = tp.serve_plan(tp.ServeSpec(shape=tp.shape_for("13B")))
    assert result.traffic_tokens_per_s == 30 * 1500  # the seed's QPS x request tokens
    assert result.decode_s == pytest.approx(5.0)  # 300 tokens at 60 tokens/s
    assert result.in_flight == pytest.approx(150.0)  # 30 requests/s x 5 s
    assert result.gpus == 10  # 150 / 16 a GPU = 9.4 -> 10
    assert result.gpus_with_headroom == 13  # 10 x 1.3 (not 14: floating point)
    assert result.cost["hour"] == pytest.approx(19.90)
    assert result.cost["day"] == pytest.approx(477.60)
    assert result.cost["month"] == pytest.approx(14_328.0)
    # fp8 13B: 13 GB of weights; KV of 16 x 1,500 tokens x 409,600 B = 9.83 GB
    assert result.memory_per_gpu_gb["weights"] == pytest.approx(13.0)
    assert result.memory_per_gpu_gb["KV cache (full batch)"] == pytest.approx(9.8304)
    assert result.fits


def test_shapes_known_and_derived() -> None:
    shape = tp.shape_for("20B")  # no preset: params ~ 12 L h^2 with h = 128 L
    assert shape.hidden % 128 == 0
    assert 12 * shape.layers * shape.hidden**2 == pytest.approx(20e9, rel=0.05)
    assert tp.parse_size("500M") == 5e8 and tp.parse_size("0.5b") == 5e8
    # Qwen2.5-0.5B's published count is 494,032,768 (its q/k/v biases add 27,648)
    qwen = {
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151_936,
        "intermediate_size": 4864,
        "tie_word_embeddings": True,
    }
    hf = tp.shape_from_hf_config(qwen)
    assert math.isclose(hf.params, 494_032_768, rel_tol=1e-3)
    assert hf.kv_bytes_per_token == 2 * 24 * 2 * 64


def test_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert tp.main(["model_size=13B", "method=grpo"]) == 0
    out = capsys.readouterr().out
    assert "total (peak)                      187.6" in out
    assert "GPUs needed: 3 x 80 GB" in out
    assert tp.main(["model_size=13B", "method=serve", "p95_ms=900"]) == 0
    out = capsys.readouterr().out
    assert "GPUs: 10 (batch 16 a GPU, tp=1); with 30% headroom: 13" in out
    assert "$14,328/month" in out


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["model_size=13B", "tp=x"], "tp: 'x' is not an integer"),
        (["model_size=huge"], "model_size: 'huge'"),
        (["model_size=13B", "method=dpo"], "method: 'dpo'"),
        (["model_size=13B", "gpus=4"], "gpus: unknown argument"),
        (["method=grpo"], "model_size: required"),
        (["model_size=13B", "precision=fp3"], "precision: 'fp3'"),
        (["model_size=13B", "seq_len=0"], "seq_len: must be at least 1"),
        (["model_size=13B", "method=serve", "qps=0"], "qps: must be positive"),
        (["model_size=13B", "reference=maybe"], "reference: 'maybe' is not true or false"),
        (["13B"], "13B: arguments are key=value"),
    ],
)
def test_bad_arguments_exit_2_naming_the_argument(
    args: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tp.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"trainers.plan: bad argument: {named}")
