"""The tiny default model: builds offline, reloads, round-trips ids, satisfies TRL, is
deterministic and is cached atomically."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("trl")

from trainers import tiny_model
from trainers.tiny_model import (
    BUILD_FILE,
    build_tiny_model,
    corpus_sha256,
    ensure_tiny_model,
)

SIZES = {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1}

SAMPLES = [
    "Hello, I'd like a refund for order #A-10023 please.",
    '{"name": "lookup_order", "arguments": {"order_id": "A-10023", "qty": 2}}',
    "Your total is $1,234.56 (incl. 7.5% tax) -- due 2024-06-30.\n\nThanks!",
    "  leading spaces\ttabs\r\nand CRLF lines\n\n\n",
    "Ünïcödé café naïve — “quotes” 東京 🚀",
    "x=3*(4+5)/2; y = [1, 2, 3]; print(f'{x:.2f}')",
]


def synthetic_corpus(n: int = 300, seed: int = 0) -> list[str]:
    """A few hundred customer-service lines and Qwen-style tool calls."""
    rng = random.Random(seed)
    names = ["Ana", "Bo", "Chen", "Dee", "Eli"]
    tools = ["get_current_date", "lookup_order", "issue_refund", "search_docs", "escalate"]
    asks = ["I want a refund for order", "Where is my order", "Please cancel order"]
    lines: list[str] = []
    for i in range(n):
        order = f"A-{rng.randint(10000, 99999)}"
        if i % 3 == 0:
            args = json.dumps({"order_id": order, "amount": round(rng.uniform(1, 500), 2)})
            lines.append(
                f'<tool_call>\n{{"name": "{rng.choice(tools)}", "arguments": {args}}}\n</tool_call>'
            )
        elif i % 3 == 1:
            lines.append(f"Hi, I'm {rng.choice(names)}. {rng.choice(asks)} {order}?")
        else:
            lines.append(f"Sure! Refund of ${rng.randint(1, 300)}.{rng.randint(10, 99)} issued.")
    return lines


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return synthetic_corpus()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model", corpus, **SIZES)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_folder_reloads_with_auto_classes(built: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built)
    model = AutoModelForCausalLM.from_pretrained(built)
    assert type(tok).__name__ == "Qwen2Tokenizer"
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert model.config.vocab_size == len(tok)
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    assert (tok.eos_token, tok.pad_token) == ("<|im_end|>", "<|endoftext|>")
    ids = [tok.convert_tokens_to_ids(t) for t in (*tiny_model.CHAT_SPECIAL_TOKENS,)]
    assert ids == [0, 1, 2]
    for token in tiny_model.TOOL_TOKENS:  # each tool marker is one token
        assert len(tok(token)["input_ids"]) == 1
    record = json.loads((built / BUILD_FILE).read_text())
    assert record["params"]["hidden_size"] == SIZES["hidden_size"]
    assert record["corpus_sha256"] == corpus_sha256(synthetic_corpus())
    assert (built / "model.safetensors").exists()


def test_ids_round_trip_through_save_and_reload(built: Path, corpus: list[str]) -> None:
    from transformers import AutoTokenizer

    raw = tiny_model._train_bpe([*corpus, tiny_model.qwen2_5_chat_template()], 2048)
    before = tiny_model.train_tokenizer(corpus)
    after = AutoTokenizer.from_pretrained(built)
    for text in SAMPLES:
        ids = after(text)["input_ids"]
        assert ids == before(text)["input_ids"] == raw.encode(text).ids, text
        assert after.decode(ids) == text


def test_chat_template_is_trls_verbatim_and_renders_tools(built: Path) -> None:
    from transformers import AutoTokenizer
    from trl.chat_template_utils import qwen2_5_chat_template

    tok = AutoTokenizer.from_pretrained(built)
    assert tok.chat_template == qwen2_5_chat_template
    tool = {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string"}},
                "required": ["order_id"],
            },
        },
    }
    messages = [{"role": "user", "content": "Where is order A-1?"}]
    text = tok.apply_chat_template(
        messages, tools=[tool], tokenize=False, add_generation_prompt=True
    )
    assert "<tools>" in text and '"name": "lookup_order"' in text
    assert text.endswith("<|im_start|>assistant\n")


def test_trl_recognises_template_and_parses_tool_calls(built: Path) -> None:
    from transformers import AutoTokenizer
    from trl.chat_template_utils import (
        add_response_schema,
        is_chat_template_prefix_preserving,
        parse_response,
        supports_tool_calling,
    )

    tok = add_response_schema(AutoTokenizer.from_pretrained(built))  # raises if unrecognised
    assert supports_tool_calling(tok) and is_chat_template_prefix_preserving(tok)
    prompt = [{"role": "user", "content": "What day is it?"}]
    prefix = tok.apply_chat_template(prompt, add_generation_prompt=True, return_dict=False)
    call = '{"name": "get_current_date", "arguments": {}}'
    completion = f"<tool_call>\n{call}\n</tool_call><|im_end|>"
    parsed = parse_response(tok, tok(completion)["input_ids"], prefix=prefix)
    assert parsed["tool_calls"] == [
        {"type": "function", "function": {"name": "get_current_date", "arguments": {}}}
    ]
    plain = parse_response(tok, tok("It is Monday.<|im_end|>")["input_ids"], prefix=prefix)
    assert plain == {"role": "assistant", "content": "It is Monday."}


def test_generate_runs(built: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(built)
    model = AutoModelForCausalLM.from_pretrained(built)
    chats = [[{"role": "user", "content": "hi"}], [{"role": "user", "content": "refund A-1"}]]
    batch = tok.apply_chat_template(
        chats, add_generation_prompt=True, return_dict=True, padding=True, return_tensors="pt"
    )
    torch.manual_seed(0)
    out = model.generate(**batch, max_new_tokens=8, do_sample=True)
    assert out.shape[0] == 2 and out.shape[1] <= batch["input_ids"].shape[1] + 8


def test_defaults_match_the_signature() -> None:
    import inspect

    signature = inspect.signature(build_tiny_model).parameters.values()
    defaults = {p.name: p.default for p in signature if p.kind is p.KEYWORD_ONLY}
    assert defaults == tiny_model.DEFAULT_PARAMS


def test_build_is_byte_identical(built: Path, corpus: list[str], tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again", corpus, **SIZES)
    assert _digests(again) == _digests(built)
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]);"
        "from tests.test_tiny_model import SIZES, synthetic_corpus;"
        "from trainers.tiny_model import build_tiny_model;"
        "build_tiny_model(Path(sys.argv[2]), synthetic_corpus(), **SIZES)"
    )
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, root, str(tmp_path / "proc")], check=True, env=env)
    assert _digests(tmp_path / "proc") == _digests(built)
    other_seed = build_tiny_model(tmp_path / "seed1", corpus, seed=1, **SIZES)
    assert _digests(other_seed)["model.safetensors"] != _digests(built)["model.safetensors"]


def test_ensure_reuses_valid_cache_and_rebuilds_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache" / "tiny"
    small = synthetic_corpus(60)
    assert ensure_tiny_model(cache, lambda: small, **SIZES) == cache
    first = _digests(cache)

    def refuse(*args: object, **kwargs: object) -> Path:
        raise AssertionError("a valid cache must not be rebuilt")

    with monkeypatch.context() as patch:
        patch.setattr(tiny_model, "build_tiny_model", refuse)
        assert ensure_tiny_model(cache, lambda: small, **SIZES) == cache

    ensure_tiny_model(cache, lambda: [*small, "one more line"], **SIZES)  # corpus changed
    assert _digests(cache)["tokenizer.json"] != first["tokenizer.json"]
    (cache / "config.json").write_text("{}")  # corrupted file -> rebuilt
    ensure_tiny_model(cache, lambda: small, **SIZES)
    assert _digests(cache) == first
    assert sorted(p.name for p in cache.parent.iterdir()) == ["tiny"]  # no temp folders left
    with pytest.raises(TypeError, match="unknown build parameters"):
        ensure_tiny_model(cache, lambda: small, hidden=3)


def test_interrupted_build_leaves_no_half_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(out_dir: Path, *args: object, **kwargs: object) -> Path:
        Path(out_dir).mkdir(parents=True)
        (Path(out_dir) / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(tiny_model, "build_tiny_model", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_tiny_model(tmp_path / "tiny", lambda: ["a b c"], **SIZES)
    assert list(tmp_path.iterdir()) == []


def test_copy_pretraining_is_deterministic_and_teaches_copying(
    corpus: list[str], tmp_path: Path
) -> None:
    """The copy stage (trainers.copy_pretrain) is part of the byte-identical build, and a
    short one already makes a 2-layer model copy what a fresh one cannot."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.copy_pretrain import copy_accuracy

    sizes = {"hidden_size": 32, "num_layers": 2, "num_heads": 1, "num_kv_heads": 1}
    first = build_tiny_model(tmp_path / "a", corpus, copy_steps=20, **sizes)
    again = build_tiny_model(tmp_path / "b", corpus, copy_steps=20, **sizes)
    record = json.loads((first / BUILD_FILE).read_text())
    assert record["files"] == json.loads((again / BUILD_FILE).read_text())["files"]
    assert record["params"]["copy_steps"] == 20
    fresh = build_tiny_model(tmp_path / "c", corpus, **sizes)
    trained = build_tiny_model(tmp_path / "d", corpus, copy_steps=200, **sizes)
    tokenizer = AutoTokenizer.from_pretrained(fresh)
    before = copy_accuracy(AutoModelForCausalLM.from_pretrained(fresh), tokenizer)
    after = copy_accuracy(AutoModelForCausalLM.from_pretrained(trained), tokenizer)
    assert before < 0.1 and after > 0.5, (before, after)
