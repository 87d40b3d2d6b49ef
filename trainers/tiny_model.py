"""The project's own tiny chat model: built locally, deterministically, with no download.

Contract:

* `build_tiny_model(out_dir, corpus, seed=..., sizes...)` trains a byte-level BPE tokenizer
  on `corpus` with Qwen2's own normalizer, pre-tokenizer regex and decoder (imported from
  the installed `transformers.models.qwen2.tokenization_qwen2`, so `AutoTokenizer`, which
  reloads the folder as `Qwen2Tokenizer` and rebuilds that pipeline, gives the same ids as
  training did), sets TRL's Qwen 2.5 chat template verbatim (TRL recognises templates by
  exact match, e.g. `trl.chat_template_utils.add_response_schema`), initialises a
  `Qwen2ForCausalLM` with tied embeddings under `torch.manual_seed(seed)` and saves both
  with `save_pretrained` (safetensors) into `out_dir`, plus `toolgym_build.json`: the
  build parameters, the sha256 of the corpus, library versions and the sha256 of every
  file written, so a cache can be validated.
* Special tokens have fixed ids whatever the corpus: `<|endoftext|>` = 0 (pad),
  `<|im_start|>` = 1, `<|im_end|>` = 2 (eos; generation also stops on `<|endoftext|>`),
  then `<tool_call>`, `</tool_call>`, `<think>`, `</think>`, `<answer>`, `</answer>`,
  `<tool_response>`, `</tool_response>` as single, non-special added tokens (so decoding
  with `skip_special_tokens=True` keeps tool calls, as Qwen 2.5 does).
* `line_tokens=N` (default 0: off) also adds the corpus's N most frequent long lines
  (`recurring_lines`: at least `MIN_LINE_CHARS` characters, found in at least
  `MIN_LINE_SHARE` of the texts and in at least two, free of the chat's special tokens) as
  single non-special tokens. Boilerplate that every prompt repeats verbatim (the tool
  schemas the chat template renders, a fixed policy text) then costs one token a line
  instead of hundreds a prompt, which is what lets a tiny model train on a CPU with the
  full tool-calling prompt. Any text still encodes and decodes exactly.
* `copy_steps=N` (default 0: off) trains the fresh model for N steps of synthetic copy
  data (`trainers.copy_pretrain`) before saving it, so that it can copy ids from its
  context (an induction head), which SFT on demonstrations alone never teaches it.
* The model's vocabulary is exactly `len(tokenizer)`: BPE stops early on a small corpus,
  so `vocab_size` is an upper bound and never yields ids the tokenizer cannot decode.
* Same corpus, seed and library versions give byte-identical files (tests check this).
* `ensure_tiny_model(cache_dir, corpus_fn, **kw)` returns `cache_dir` when its
  `toolgym_build.json` matches the parameters, corpus hash and versions and its files are
  intact; otherwise it builds into a temporary sibling and renames it into place, so an
  interrupted build never leaves a half-written folder at `cache_dir`.

torch, transformers and tokenizers are imported inside the functions that need them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase

BUILD_FILE = "toolgym_build.json"
BUILD_FORMAT = 1
PAD_TOKEN = "<|endoftext|>"
BOS_TOKEN = "<|im_start|>"
EOS_TOKEN = "<|im_end|>"
CHAT_SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN)
TOOL_TOKENS = (
    "<tool_call>",
    "</tool_call>",
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "<tool_response>",
    "</tool_response>",
)
DEFAULT_PARAMS: dict[str, int] = {  # build_tiny_model's keyword defaults, in one place
    "seed": 0,
    "vocab_size": 2048,
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 4,
    "num_kv_heads": 2,
    "max_position_embeddings": 4096,
    "line_tokens": 0,
    "copy_steps": 0,
}
MIN_LINE_CHARS = 24
MIN_LINE_SHARE = 0.05
_VERSIONED_PACKAGES = ("transformers", "tokenizers", "torch", "safetensors", "trl")


def qwen2_5_chat_template() -> str:
    """TRL's Qwen 2.5 chat template, read verbatim from the installed `trl` package."""
    path = resources.files("trl").joinpath("chat_templates", "qwen2_5.jinja")
    return path.read_text(encoding="utf-8")


def corpus_sha256(corpus: Iterable[str]) -> str:
    """Hash of a corpus, unambiguous about line boundaries (each text is length-prefixed)."""
    digest = hashlib.sha256()
    for text in corpus:
        data = text.encode("utf-8")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def recurring_lines(texts: list[str], n: int) -> list[str]:
    """The `n` long lines repeated most across `texts` (ties: longer, then alphabetical)."""
    if n <= 0 or not texts:
        return []
    reserved = CHAT_SPECIAL_TOKENS
    counts: dict[str, int] = {}
    for text in texts:
        for line in set(text.split("\n")):
            if len(line) >= MIN_LINE_CHARS and not any(t in line for t in reserved):
                counts[line] = counts.get(line, 0) + 1
    floor = max(2, int(MIN_LINE_SHARE * len(texts)))
    frequent = [line for line, count in counts.items() if count >= floor]
    frequent.sort(key=lambda line: (-counts[line], -len(line), line))
    return frequent[:n]


def _train_bpe(texts: list[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE with Qwen2's normalizer, pre-tokenizer and decoder."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers.models import BPE
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tokenizer = Tokenizer(
        BPE(
            dropout=None,
            unk_token=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
            byte_fallback=False,
        )
    )
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        show_progress=False,
        special_tokens=[*CHAT_SPECIAL_TOKENS, *TOOL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def train_tokenizer(
    corpus: Iterable[str],
    *,
    vocab_size: int = 2048,
    model_max_length: int = 4096,
    line_tokens: int = 0,
) -> PreTrainedTokenizerBase:
    """Train the tokenizer on `corpus` (plus the chat template's own text) and wrap it as a
    `Qwen2Tokenizer` with the Qwen 2.5 chat template, special tokens and pad/eos set;
    `line_tokens` adds that many recurring lines as whole tokens (module docstring)."""
    from tokenizers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    template = qwen2_5_chat_template()
    texts = list(corpus)
    raw = _train_bpe([*texts, template], vocab_size)
    model_json = json.loads(raw.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_json["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=dict(model_json["vocab"]),
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        add_prefix_space=False,
        model_max_length=model_max_length,
        extra_special_tokens=[BOS_TOKEN],
    )
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in TOOL_TOKENS])
    lines = recurring_lines(texts, line_tokens)
    if lines:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in lines])
    tokenizer.chat_template = template
    tokenizer.padding_side = "left"
    return tokenizer


def _build_model(tokenizer: PreTrainedTokenizerBase, seed: int, sizes: dict[str, int]) -> Any:
    """A `Qwen2ForCausalLM` with tied embeddings, initialised under `torch.manual_seed(seed)`."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=sizes["hidden_size"],
        intermediate_size=4 * sizes["hidden_size"],
        num_hidden_layers=sizes["num_layers"],
        num_attention_heads=sizes["num_heads"],
        num_key_value_heads=sizes["num_kv_heads"],
        max_position_embeddings=sizes["max_position_embeddings"],
        tie_word_embeddings=True,
        use_sliding_window=False,
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config).to(torch.float32)
        if sizes.get("copy_steps", 0) > 0:  # why: trainers/copy_pretrain.py
            from trainers.copy_pretrain import copy_pretrain

            copy_pretrain(model, tokenizer, steps=sizes["copy_steps"], seed=seed)
    model.generation_config = GenerationConfig(
        bos_token_id=None, eos_token_id=[eos_id, pad_id], pad_token_id=pad_id
    )
    return model


def _versions() -> dict[str, str]:
    """Versions of the libraries whose output bytes the build depends on."""
    found: dict[str, str] = {}
    for name in _VERSIONED_PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def _file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file in `folder` except the build record itself."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != BUILD_FILE
    }


def _build_key(params: dict[str, int], corpus_hash: str) -> dict[str, Any]:
    """Everything a cached build must match to be reused."""
    template_hash = hashlib.sha256(qwen2_5_chat_template().encode("utf-8")).hexdigest()
    return {
        "format": BUILD_FORMAT,
        "params": params,
        "corpus_sha256": corpus_hash,
        "chat_template_sha256": template_hash,
        "versions": _versions(),
    }


def build_tiny_model(
    out_dir: Path,
    corpus: Iterable[str],
    *,
    seed: int = 0,
    vocab_size: int = 2048,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position_embeddings: int = 4096,
    line_tokens: int = 0,
    copy_steps: int = 0,
) -> Path:
    """Build the tokenizer and the model into `out_dir` (see the module docstring)."""
    texts = list(corpus)
    params = {
        "seed": seed,
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "num_kv_heads": num_kv_heads,
        "max_position_embeddings": max_position_embeddings,
        "line_tokens": line_tokens,
        "copy_steps": copy_steps,
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(
        texts,
        vocab_size=vocab_size,
        model_max_length=max_position_embeddings,
        line_tokens=line_tokens,
    )
    model = _build_model(tokenizer, seed, params)
    tokenizer.save_pretrained(out_dir)
    model.save_pretrained(out_dir)
    record = {
        **_build_key(params, corpus_sha256(texts)),
        "tokenizer_size": len(tokenizer),
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "files": _file_hashes(out_dir),
    }
    (out_dir / BUILD_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return out_dir


def _read_build(folder: Path) -> dict[str, Any] | None:
    """The folder's build record, or None when absent or unreadable."""
    try:
        return json.loads((folder / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_valid_build(folder: Path, params: dict[str, int], corpus_hash: str) -> bool:
    """Whether `folder` holds an intact build of exactly these parameters and corpus."""
    record = _read_build(Path(folder))
    if record is None:
        return False
    expected = _build_key(params, corpus_hash)
    if any(record.get(key) != value for key, value in expected.items()):
        return False
    return record.get("files") == _file_hashes(Path(folder))


def _resolved_params(kw: dict[str, Any]) -> dict[str, int]:
    """`build_tiny_model`'s keyword defaults overridden by `kw` (unknown keys are errors)."""
    unknown = set(kw) - set(DEFAULT_PARAMS)
    if unknown:
        raise TypeError(f"ensure_tiny_model got unknown build parameters: {sorted(unknown)}")
    return {**DEFAULT_PARAMS, **kw}


def _move_into_place(built: Path, target: Path) -> None:
    """Replace `target` by the finished build `built` with renames only."""
    old: Path | None = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.replace(target, old / "stale")
    try:
        os.rename(built, target)
    except OSError:
        if not target.exists():  # a failure unrelated to a concurrent builder
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def ensure_tiny_model(cache_dir: Path, corpus_fn: Callable[[], Iterable[str]], **kw: int) -> Path:
    """Return `cache_dir` holding a valid build for `corpus_fn()` and `kw`, building if needed.

    `kw` takes `build_tiny_model`'s keyword arguments. A concurrent builder that wins the
    final rename is accepted when its build is valid.
    """
    cache_dir = Path(cache_dir)
    params = _resolved_params(kw)
    texts = list(corpus_fn())
    corpus_hash = corpus_sha256(texts)
    if is_valid_build(cache_dir, params, corpus_hash):
        return cache_dir
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache_dir.name}.build-", dir=cache_dir.parent))
    try:
        build_tiny_model(tmp / "model", texts, **params)
        _move_into_place(tmp / "model", cache_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not is_valid_build(cache_dir, params, corpus_hash):
        raise RuntimeError(f"tiny model build at {cache_dir} did not validate after building")
    return cache_dir
