"""SFT cold start: demonstrations from the train split, assistant-only labels, a short run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from trainers import data, sft
from trainers.manifest import MANIFEST_KEYS
from trainers.tiny_model import build_tiny_model

SIZES = {"vocab_size": 1024, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "num_kv_heads": 1}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = [
        data.render_chat([m.to_chat() for m in t.messages], t.tools)
        for t in data.demonstrations("refund_agent", 12)
    ]
    return build_tiny_model(tmp_path_factory.mktemp("m") / "tiny", corpus, line_tokens=16, **SIZES)


def _cfg(tiny: Path, out: Path, *extra: str) -> sft.SFTRunConfig:
    return sft.load_config("sft", [*_cfg_args(tiny, out), *extra], sft.SFTRunConfig)


def test_demonstrations_mix_failure_modes_and_read_the_train_split_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import scenarios.refund_sets as sets

    asked: list[str] = []
    real = sets.load_split
    monkeypatch.setattr(sets, "load_split", lambda split, **kw: asked.append(split) or real(split))
    mix = {"name_instead_of_id": 0.4, "quitter": 0.2}
    demos = data.demonstrations("refund_agent", 40, mix=mix, seed=1)
    policies = {t.policy for t in demos}
    assert "expert" in policies and "name_instead_of_id" in policies
    assert all(t.split == "train" for t in demos)
    rows = data.sft_rows(demos[:3])
    assert rows[0]["messages"][2]["role"] == "assistant"
    assert "<tool_call>" in rows[0]["messages"][2]["content"]  # the text a model writes
    corpus = data.default_corpus("refund_agent", n_trajectories=8)
    assert corpus and set(asked) == {"train"}


def _assistant_positions(ids: list[int], tok: object) -> set[int]:
    """Positions of every assistant turn's text: after `<|im_start|>assistant`, through the
    newline after its `<|im_end|>` (what the training template marks as generation)."""
    start, end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids("<|im_end|>")
    role = tok("assistant", add_special_tokens=False)["input_ids"]
    found: set[int] = set()
    for s, token in enumerate(ids):
        if token != start or ids[s + 1 : s + 1 + len(role)] != role:
            continue
        stop = ids.index(end, s) + 1  # the newline after <|im_end|>
        found.update(range(s + 1 + len(role), min(stop + 1, len(ids))))
    return found


def test_labels_cover_assistant_turns_only(tiny: Path, tmp_path: Path) -> None:
    cfg = _cfg(tiny, tmp_path / "run")
    rows = data.sft_rows(data.demonstrations("refund_agent", 4))
    trainer = sft.make_trainer(cfg, str(tiny), rows, tmp_path / "run")
    tok = trainer.processing_class
    batch = next(iter(trainer.get_train_dataloader()))
    tool_response = tok.convert_tokens_to_ids("<tool_response>")
    for ids, mask, labels in zip(
        batch["input_ids"].tolist(),
        batch["attention_mask"].tolist(),
        batch["labels"].tolist(),
        strict=True,
    ):
        n = sum(mask)  # right padding
        learned = {i for i, label in enumerate(labels) if label != -100}
        assert learned == _assistant_positions(ids[:n], tok)
        assert all(labels[i] == ids[i] for i in learned)
        assert tool_response in ids and all(label != tool_response for label in labels)


@pytest.mark.slow
def test_short_sft_end_to_end(tiny: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "run"
    assert sft.main(_cfg_args(tiny, out)) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in records if "loss" in r]
    assert losses and all(math.isfinite(x) for x in losses)
    assert losses[-1] < losses[0]
    model = AutoModelForCausalLM.from_pretrained(out / "final")
    tok = AutoTokenizer.from_pretrained(out / "final")
    assert model.config.vocab_size == len(tok)
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(MANIFEST_KEYS) <= set(manifest) and manifest["kind"] == "sft"
    assert manifest["data"]["sft.jsonl"] and manifest["result"]["steps"] == 8
    assert (out / "data" / "sft.jsonl").is_file() and (out / "checkpoints").is_dir()


def _cfg_args(tiny: Path, out: Path) -> list[str]:
    return [
        "env=refund_agent",
        f"model={tiny}",
        f"out={out}",
        "data.demonstrations=16",
        "trainer.max_steps=8",
        "trainer.batch_size=4",
        "trainer.learning_rate=5e-3",
        "trainer.warmup_steps=0",
        "trainer.lr_scheduler=constant",
        "trainer.save_steps=4",
        "trainer.logging_steps=1",
    ]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("env=nope", "env: unknown env 'nope'"),
        ("model=./missing/model", "model: no model folder at './missing/model'"),
        ("data.failure_modes={nope:0.1}", "data.failure_modes: unknown ['nope']"),
        (
            "data.failure_modes={quitter:0.9,name_instead_of_id:0.2}",
            "data.failure_modes: Value error, shares must",
        ),
    ],
)
def test_bad_config_exits_before_work(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, key: str
) -> None:
    out = tmp_path / "run"
    assert sft.main([*_cfg_args(tiny, out), override]) == 2
    assert key in capsys.readouterr().err
    assert not out.exists()


def test_recurring_prompt_lines_are_single_tokens_that_survive_a_reload(tiny: Path) -> None:
    from transformers import AutoTokenizer

    from trainers.tiny_model import recurring_lines

    tok = AutoTokenizer.from_pretrained(tiny)
    demo = data.demonstrations("refund_agent", 1)[0]
    text = data.render_chat([m.to_chat() for m in demo.messages], demo.tools)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    schema_line = next(line for line in text.split("\n") if line.startswith('{"type": "function"'))
    assert len(tok(schema_line, add_special_tokens=False)["input_ids"]) == 1
    assert schema_line in recurring_lines([text, text, "other"], 64)
    assert recurring_lines([text], 0) == []


def test_copy_probe_scores_only_the_ids_the_assistant_copies_into_tool_calls() -> None:
    """`trainers.copy_probe` targets: digits inside an assistant's `<tool_call>`, not the
    digits of the prompt or of tool results (those are context, not predictions)."""
    from trainers.copy_probe import _targets

    text = (
        "<|im_start|>system\nChat session id: 91180<|im_end|>\n"
        "<|im_start|>assistant\n<think>Step 1.</think>\n<tool_call>\n"
        '{"name": "get_customer_id", "arguments": {"session_id": 91180}}\n'
        "</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n"
        '{"customer_id": 21569}\n</tool_response><|im_end|>\n'
    )
    digits, other = _targets(text)
    assert "".join(text[i] for i in sorted(digits)) == "91180"
    assert min(digits) > text.index("<tool_call>") and not digits & other
    assert "".join(text[i] for i in sorted(other)).startswith("<think>Step 1.</think>")


def test_a_second_live_run_into_the_same_folder_is_refused(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from core.files import RunLock

    out = tmp_path / "run"
    with RunLock(out, command="python -m trainers.sft (the first run)"):
        assert sft.main(_cfg_args(tiny, out)) == 2
    err = capsys.readouterr().err
    assert "is in use by another run" in err and "the first run" in err
    assert not (out / "manifest.json").exists()  # the refused run wrote nothing


def test_role_for_an_env_without_roles_is_named_as_such() -> None:
    from configs import ConfigError

    with pytest.raises(ConfigError) as caught:
        sft.check_env("refund_agent", {"role": "learner"})
    assert str(caught.value) == (
        "role: env 'refund_agent' has no roles (it is not a multi-agent env); "
        "leave role and partners unset"
    )


def test_a_role_the_multi_agent_env_does_not_have_is_named_with_its_roles() -> None:
    from configs import ConfigError

    with pytest.raises(ConfigError) as caught:
        sft.check_env("refund_handoff", {"role": "specialist"})
    assert str(caught.value) == (
        "role: env 'refund_handoff' has no role 'specialist'; roles: acting, lookup"
    )


@pytest.mark.parametrize("trainer", ["sft", "grpo"])
def test_without_the_train_extra_the_trainers_say_what_to_install(
    trainer: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a user who installed toolgym or toolgym[eval] only: one line, exit 2, no traceback
    from trainers import grpo

    monkeypatch.setattr(sft, "TRAIN_MODULES", ("json", "no_such_framework_xyz"))
    main = {"sft": sft.main, "grpo": grpo.main}[trainer]
    assert main(["env=math_tools"]) == 2
    assert capsys.readouterr().err == (
        f"trainers.{trainer}: bad config: the trainers need toolgym's train extra, missing "
        "no_such_framework_xyz: pip install 'toolgym[train]' (torch first, the build for "
        "your machine)\n"
    )
