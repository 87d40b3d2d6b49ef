"""Capacity planner (the seed's M5-L07): GPU memory for training, GPUs for serving.

`python -m trainers.plan model_size=13B method=grpo [group_size=8 seq_len=768 precision=fp16
tp=1 dp=1 gpu_mem_gb=80 reward_model=7B reference=true micro_batch=… ...]`
`python -m trainers.plan model_size=13B method=serve qps=30 prompt_tokens=1200 output_tokens=300
tokens_per_s=60 batch_per_gpu=16 headroom=0.3 gpu_price=1.99 precision=fp8`

Contract
--------
* Pure functions (`train_plan`, `serve_plan`) return records; `main` parses `key=value`
  arguments and prints them. A bad argument exits 2 with a message naming it.
* Units: GB = 10⁹ bytes, as the seed writes (13B × 2 bytes = 26 GB).
* **Training** (`method` = grpo | ppo | sft | lora), every term at `precision` unless said:
  - policy weights, gradients and AdamW's two states: 4 × params × bytes (the seed's rule;
    `optimizer_bytes=4` prices fp32 states). `lora`: frozen base weights plus the 4× stack
    for `lora_fraction` of the parameters.
  - reference model (grpo/ppo with `reference=true`, i.e. a KL term): params × bytes;
    reward model (`reward_model=7B`, the seed's table; 0 for rule-scored envs such as
    ours): its params × bytes; ppo adds a critic trained like the policy (4×).
  - activations of one backward pass over `micro_batch` sequences (default: one group,
    `group_size`) of `seq_len` tokens: tokens × layers × hidden × 34 bytes at 2-byte
    precision (Korthikanti et al. 2022 per-layer count; flash attention, so no
    sequence² term), plus the fp32 logits (tokens × vocab × 4 bytes).
  - rollout phase: the inference engine's copy of the weights plus the KV cache of the
    group in flight, sequences × seq_len × 2 × layers × kv_heads × head_dim × bytes.
    verl's hybrid engine frees the cache and offloads the engine's weights before the
    update, so the peak is static + max(activations, rollout phase).
  - GPUs: everything is sharded over tp × dp (FSDP/ZeRO-3 + tensor parallel); a GPU can
    use `usable` (0.9) of `gpu_mem_gb`, the rest goes to the CUDA context, NCCL buffers
    and fragmentation. `gpus_needed` is rounded up to a multiple of `tp`.
* **Serving** (`method=serve`): the seed's example only gives "~10 GPUs" if its "60
  tokens/s per GPU" is each sequence's decode rate in a batch of 16 on one GPU. Read
  literally (60 tokens/s for the whole GPU) the same traffic would need 150 GPUs for the
  output tokens alone. So: a request decodes for output_tokens / tokens_per_s seconds,
  in-flight sequences = qps × that (Little's law), GPUs = in-flight / batch_per_gpu,
  then `headroom` (30%) for canaries and spikes. Cost is priced on the base GPUs, as the
  seed does ($/h, ×24 a day, ×30 a month). The KV cache of a full batch must fit beside
  the weights. A p95 latency target cannot be met by a 5 s decode: `p95_ms` is checked
  against time to first token only when given, and the report says so.

Model shapes: 7B/13B/70B are Llama 2 (multi-head attention, 32k vocabulary), 0.5B/1.5B/3B
Qwen2.5; any other size gets a Llama-like shape from params ≈ 12·layers·hidden² with
hidden = 128·layers, or pass `layers=`, `hidden=`, `kv_heads=`, `vocab=`.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

GB = 1e9
EXIT_OK, EXIT_BAD_ARG = 0, 2
PRECISION_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5}
ACTIVATION_BYTES_PER_HIDDEN = 34.0  # per token per layer at 2-byte precision (Korthikanti)
TRAIN_METHODS = ("grpo", "ppo", "sft", "lora")
METHODS = (*TRAIN_METHODS, "serve")


class PlanError(ValueError):
    """A bad planner argument; the message starts with the argument's name."""


@dataclass(frozen=True, slots=True)
class ModelShape:
    params: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int

    @property
    def kv_bytes_per_token(self) -> float:
        """K and V of every layer for one token, at one byte per value."""
        return 2.0 * self.layers * self.kv_heads * (self.hidden // self.heads)


SHAPES: dict[str, ModelShape] = {
    "0.5B": ModelShape(0.5e9, 24, 896, 14, 2, 151_936),
    "1.5B": ModelShape(1.5e9, 28, 1536, 12, 2, 151_936),
    "3B": ModelShape(3e9, 36, 2048, 16, 2, 151_936),
    "7B": ModelShape(7e9, 32, 4096, 32, 32, 32_000),
    "13B": ModelShape(13e9, 40, 5120, 40, 40, 32_000),
    "70B": ModelShape(70e9, 80, 8192, 64, 8, 32_000),
}


def parse_size(text: str, arg: str = "model_size") -> float:
    """'13B', '500M', '0.5b' or a plain count -> parameters."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMbBtT]?)\s*", str(text))
    if not match:
        raise PlanError(f"{arg}: '{text}' is not a size such as 13B, 500M or 7e9")
    value = (
        float(match.group(1))
        * {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[match.group(2).lower()]
    )
    return value


def shape_for(size: str | float, **overrides: int) -> ModelShape:
    """A known shape for the size, or a Llama-like one derived from the parameter count."""
    params = parse_size(size) if isinstance(size, str) else float(size)
    if params <= 0:
        raise PlanError(f"model_size: must be positive (got {size})")
    known = next((s for s in SHAPES.values() if math.isclose(s.params, params)), None)
    if known is None:
        hidden = max(128, round((params * 128 / 12) ** (1 / 3) / 128) * 128)
        layers = max(1, round(params / (12 * hidden * hidden)))
        known = ModelShape(params, layers, hidden, hidden // 128, hidden // 128, 32_000)
    shape = replace(known, **{k: int(v) for k, v in overrides.items()})
    if shape.hidden % shape.heads or shape.heads % shape.kv_heads:
        raise PlanError(f"kv_heads: {shape.kv_heads} does not divide heads {shape.heads}")
    return shape


def shape_from_hf_config(config: dict[str, Any]) -> ModelShape:
    """Shape and parameter count of a decoder-only HF model from its config.json."""
    h, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv = int(config.get("num_key_value_heads") or heads)
    vocab, inter = int(config["vocab_size"]), int(config.get("intermediate_size") or 4 * h)
    head_dim = int(config.get("head_dim") or h // heads)
    attention = h * heads * head_dim * 2 + h * kv * head_dim * 2  # q, o and k, v
    mlp = 3 * h * inter  # gate, up, down (SwiGLU)
    embeddings = vocab * h * (1 if config.get("tie_word_embeddings", False) else 2)
    params = embeddings + layers * (attention + mlp + 2 * h) + h
    return ModelShape(float(params), layers, h, heads, kv, vocab)


@dataclass(frozen=True, slots=True)
class TrainSpec:
    shape: ModelShape
    method: str = "grpo"
    precision: str = "fp16"
    optimizer_bytes: float | None = None  # None: the training precision (the seed's rule)
    group_size: int = 8
    seq_len: int = 768  # prompt + response tokens
    micro_batch: int | None = None  # sequences per backward; None: one group
    rollout_sequences: int | None = None  # sequences generated at once; None: one group
    reference: bool = True
    reward_model: float = 7e9  # the seed's table counts a ~7B reward model; 0: none
    lora_fraction: float = 0.01
    tp: int = 1
    dp: int = 1
    gpu_mem_gb: float = 80.0
    usable: float = 0.9


@dataclass(slots=True)
class TrainPlan:
    spec: TrainSpec
    components: dict[str, float] = field(default_factory=dict)  # GB each
    rollout_phase: dict[str, float] = field(default_factory=dict)
    total_gb: float = 0.0
    per_gpu_gb: float = 0.0
    gpus_needed: int = 0

    @property
    def fits(self) -> bool:
        return self.per_gpu_gb <= self.spec.gpu_mem_gb * self.spec.usable + 1e-9


def _ceil(x: float) -> int:
    return math.ceil(x - 1e-9)  # 10 × 1.3 is 13.000000000000002 in floating point


def train_plan(spec: TrainSpec) -> TrainPlan:
    """Peak GPU memory of a training run, by component, and the GPUs it needs."""
    _check_train(spec)
    s, b = spec.shape, PRECISION_BYTES[spec.precision]
    opt = b if spec.optimizer_bytes is None else spec.optimizer_bytes
    trained = s.params * (spec.lora_fraction if spec.method == "lora" else 1.0)
    parts: dict[str, float] = {
        "policy weights": s.params * b,
        "policy gradients": trained * b,
        "policy Adam states (2)": 2 * trained * opt,
    }
    rl = spec.method in ("grpo", "ppo")
    if rl and spec.reference:
        parts["reference model"] = s.params * b
    if rl and spec.reward_model > 0:
        parts["reward model"] = spec.reward_model * b
    if spec.method == "ppo":
        parts["critic (weights+grads+Adam)"] = s.params * (2 * b + 2 * opt)
    tokens = (spec.micro_batch or spec.group_size) * spec.seq_len
    activations = tokens * s.layers * s.hidden * ACTIVATION_BYTES_PER_HIDDEN * b / 2
    activations += tokens * s.vocab * 4.0  # fp32 logits for the loss
    parts["activations"] = activations
    rollout: dict[str, float] = {}
    if rl:
        sequences = spec.rollout_sequences or spec.group_size
        rollout["rollout weights"] = s.params * b
        rollout["KV cache"] = sequences * spec.seq_len * s.kv_bytes_per_token * b
    static = sum(v for k, v in parts.items() if k != "activations")
    peak = static + max(activations, sum(rollout.values()))
    plan = TrainPlan(spec, {k: v / GB for k, v in parts.items()})
    plan.rollout_phase = {k: v / GB for k, v in rollout.items()}
    plan.total_gb = peak / GB
    plan.per_gpu_gb = plan.total_gb / (spec.tp * spec.dp)
    gpus = _ceil(plan.total_gb / (spec.gpu_mem_gb * spec.usable))
    plan.gpus_needed = _ceil(gpus / spec.tp) * spec.tp
    return plan


def _check_train(spec: TrainSpec) -> None:
    if spec.method not in TRAIN_METHODS:
        raise PlanError(f"method: '{spec.method}' is not one of {', '.join(METHODS)}")
    if spec.precision not in PRECISION_BYTES:
        raise PlanError(f"precision: '{spec.precision}'; allowed: {', '.join(PRECISION_BYTES)}")
    for name in ("group_size", "seq_len", "tp", "dp"):
        if getattr(spec, name) < 1:
            raise PlanError(f"{name}: must be at least 1 (got {getattr(spec, name)})")
    if not 0 < spec.usable <= 1 or spec.gpu_mem_gb <= 0:
        raise PlanError("gpu_mem_gb/usable: memory must be positive and usable in (0, 1]")
    if not 0 < spec.lora_fraction <= 1:
        raise PlanError(f"lora_fraction: must be in (0, 1] (got {spec.lora_fraction})")


@dataclass(frozen=True, slots=True)
class ServeSpec:
    shape: ModelShape
    qps: float = 30.0
    prompt_tokens: int = 1200
    output_tokens: int = 300
    tokens_per_s: float = 60.0  # decode rate of one sequence inside a full batch
    batch_per_gpu: int = 16
    headroom: float = 0.3
    gpu_price: float = 1.99  # $ per GPU-hour
    precision: str = "fp8"
    tp: int = 1
    gpu_mem_gb: float = 80.0
    usable: float = 0.9
    p95_ms: float | None = None


@dataclass(slots=True)
class ServePlan:
    spec: ServeSpec
    traffic_tokens_per_s: float  # qps × (prompt + output), the seed's "traffic"
    decode_s: float  # seconds one request spends decoding
    in_flight: float  # sequences being decoded at once (Little's law)
    gpus: int
    gpus_with_headroom: int
    cost: dict[str, float]  # $ per hour / day / month (30 days) for `gpus`
    cost_per_1k_output_tokens: float
    memory_per_gpu_gb: dict[str, float]

    @property
    def fits(self) -> bool:
        return sum(self.memory_per_gpu_gb.values()) <= self.spec.gpu_mem_gb * self.spec.usable


def serve_plan(spec: ServeSpec) -> ServePlan:
    """GPUs to serve `qps` requests a second at the stated per-sequence decode rate."""
    if spec.precision not in PRECISION_BYTES:
        raise PlanError(f"precision: '{spec.precision}'; allowed: {', '.join(PRECISION_BYTES)}")
    for name in ("qps", "tokens_per_s", "batch_per_gpu", "output_tokens", "tp"):
        if getattr(spec, name) <= 0:
            raise PlanError(f"{name}: must be positive (got {getattr(spec, name)})")
    if spec.headroom < 0 or spec.prompt_tokens < 0:
        raise PlanError("headroom/prompt_tokens: must not be negative")
    b = PRECISION_BYTES[spec.precision]
    decode_s = spec.output_tokens / spec.tokens_per_s
    in_flight = spec.qps * decode_s
    gpus = _ceil(in_flight / spec.batch_per_gpu / spec.tp) * spec.tp
    hourly = gpus * spec.gpu_price
    context = spec.prompt_tokens + spec.output_tokens
    memory = {
        "weights": spec.shape.params * b / spec.tp / GB,
        "KV cache (full batch)": spec.batch_per_gpu
        * context
        * spec.shape.kv_bytes_per_token
        * b
        / spec.tp
        / GB,
    }
    return ServePlan(
        spec=spec,
        traffic_tokens_per_s=spec.qps * context,
        decode_s=decode_s,
        in_flight=in_flight,
        gpus=gpus,
        gpus_with_headroom=_ceil(gpus * (1 + spec.headroom)),
        cost={"hour": hourly, "day": hourly * 24, "month": hourly * 24 * 30},
        cost_per_1k_output_tokens=spec.gpu_price
        / (spec.tokens_per_s * spec.batch_per_gpu * 3600)
        * 1000,
        memory_per_gpu_gb=memory,
    )


# ---- reports ---------------------------------------------------------------------------------
def size_label(params: float) -> str:
    return f"{params / 1e9:.3g}B" if params >= 1e9 else f"{params / 1e6:.3g}M"


def format_train(plan: TrainPlan) -> str:
    s = plan.spec
    lines = [
        f"{s.method} on a {size_label(s.shape.params)} model ({s.shape.layers} layers, hidden "
        f"{s.shape.hidden}, {s.shape.kv_heads}/{s.shape.heads} KV heads), {s.precision}, "
        f"group {s.group_size} x {s.seq_len} tokens",
        f"{'component':<30} {'GB':>8}",
    ]
    lines += [f"{name:<30} {gb:>8.1f}" for name, gb in plan.components.items()]
    if plan.rollout_phase:
        phase = " + ".join(f"{k} {v:.1f}" for k, v in plan.rollout_phase.items())
        lines.append(
            f"{'(rollout phase, not at peak)':<30} {sum(plan.rollout_phase.values()):>8.1f}"
            f"  = {phase}"
        )
    lines.append(f"{'total (peak)':<30} {plan.total_gb:>8.1f}")
    usable = s.gpu_mem_gb * s.usable
    lines.append(
        f"GPUs needed: {plan.gpus_needed} x {s.gpu_mem_gb:g} GB ({usable:.0f} GB usable each)"
    )
    verdict = "fits" if plan.fits else "does NOT fit"
    lines.append(
        f"with tp={s.tp} dp={s.dp}: {plan.per_gpu_gb:.1f} GB per GPU of {usable:.0f} GB usable: "
        f"{verdict}"
    )
    return "\n".join(lines)


def format_serve(plan: ServePlan) -> str:
    s = plan.spec
    memory = " + ".join(f"{k} {v:.1f}" for k, v in plan.memory_per_gpu_gb.items())
    lines = [
        f"traffic: {s.qps:g} QPS x {s.prompt_tokens + s.output_tokens} tokens = "
        f"{plan.traffic_tokens_per_s:,.0f} tokens/s",
        f"decode: {s.output_tokens} tokens at {s.tokens_per_s:g} tokens/s a sequence = "
        f"{plan.decode_s:.1f} s a request; in flight: {plan.in_flight:.0f} sequences",
        f"GPUs: {plan.gpus} (batch {s.batch_per_gpu} a GPU, tp={s.tp}); with "
        f"{s.headroom:.0%} headroom: {plan.gpus_with_headroom}",
        f"cost for {plan.gpus} GPUs at ${s.gpu_price:g}/GPU-h: ${plan.cost['hour']:,.2f}/h, "
        f"${plan.cost['day']:,.2f}/day, ${plan.cost['month']:,.0f}/month; "
        f"${plan.cost_per_1k_output_tokens:.5f} per 1k output tokens",
        f"memory a GPU: {memory} GB of {s.gpu_mem_gb * s.usable:.0f} GB usable: "
        + ("fits" if plan.fits else "does NOT fit (raise tp or lower batch_per_gpu)"),
    ]
    if s.p95_ms is not None and plan.decode_s * 1000 > s.p95_ms:
        lines.append(
            f"note: a request decodes for {plan.decode_s * 1000:.0f} ms, above p95 "
            f"{s.p95_ms:g} ms: that target can only hold for time to first token"
        )
    return "\n".join(lines)


# ---- command line ----------------------------------------------------------------------------
SHAPE_ARGS = ("layers", "hidden", "heads", "kv_heads", "vocab")


def _convert(spec_type: type, name: str, text: str) -> Any:
    default = spec_type.__dataclass_fields__[name].default
    kind = type(default) if default is not None else float
    try:
        if kind is bool:
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(text)
            return text.lower() in ("true", "1", "yes")
        if name == "reward_model":
            return 0.0 if text.lower() in ("0", "none", "false") else parse_size(text, name)
        return kind(text) if kind is not float else float(text)
    except (ValueError, PlanError):
        label = {int: "an integer", float: "a number", bool: "true or false"}.get(kind, "a size")
        raise PlanError(f"{name}: '{text}' is not {label}") from None


def parse_args(argv: Sequence[str]) -> TrainSpec | ServeSpec:
    """`key=value` arguments -> a spec; `PlanError` names the first bad argument."""
    args: dict[str, str] = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PlanError(f"{item}: arguments are key=value (e.g. model_size=13B)")
        args[key.strip()] = value.strip()
    method = args.pop("method", "grpo")
    if method not in METHODS:
        raise PlanError(f"method: '{method}' is not one of {', '.join(METHODS)}")
    if "model_size" not in args:
        raise PlanError("model_size: required (e.g. model_size=13B)")
    size = args.pop("model_size")
    overrides = {}
    for key in SHAPE_ARGS:
        if key in args:
            text = args.pop(key)
            if not text.isdigit() or int(text) < 1:
                raise PlanError(f"{key}: '{text}' is not a positive integer")
            overrides[key] = int(text)
    shape = shape_for(size, **overrides)
    spec_type: type = ServeSpec if method == "serve" else TrainSpec
    allowed = [f for f in spec_type.__dataclass_fields__ if f not in ("shape", "method")]
    values: dict[str, Any] = {}
    for key, text in args.items():
        if key not in allowed:
            raise PlanError(
                f"{key}: unknown argument for method={method}; allowed: "
                f"{', '.join(['model_size', *SHAPE_ARGS, *allowed])}"
            )
        values[key] = _convert(spec_type, key, text)
    if method != "serve":
        values["method"] = method
    return spec_type(shape=shape, **values)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        spec = parse_args(argv)
        report = (
            format_serve(serve_plan(spec))
            if isinstance(spec, ServeSpec)
            else format_train(train_plan(spec))
        )
    except PlanError as exc:
        print(f"trainers.plan: bad argument: {exc}", file=sys.stderr)
        return EXIT_BAD_ARG
    print(report)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
