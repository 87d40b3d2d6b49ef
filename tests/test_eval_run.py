"""`python -m evals.run`: a scripted policy evaluated end to end, as a user runs it.

The run folder, byte-identical reruns, kill-and-resume, refused resumes, the frozen
check, bad configs and epochs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from core.records import read_jsonl
from evals.metrics import MetricTable, compute_metrics
from evals.run import EXIT_CONFIG, EXIT_OK, diff_metrics, episode_seed, main

REPO = Path(__file__).resolve().parent.parent
FILES = ("episodes.jsonl", "metrics.json", "report.md", "manifest.json")
LIMIT = "limit=12"


def evaluate(out: Path, *overrides: str) -> int:
    return main(["env=refund_agent", "policy=expert", "split=eval", f"out={out}", *overrides])


def keys(out: Path) -> list[tuple[str, str, int]]:
    return [(t.env_id, t.scenario_id, t.epoch) for t in read_jsonl(out / "episodes.jsonl")]


def test_a_scripted_run_writes_episodes_metrics_report_and_manifest(tmp_path, capsys):
    out = tmp_path / "run"
    assert evaluate(out, LIMIT) == EXIT_OK
    assert all((out / name).is_file() for name in FILES)

    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert len(episodes) == 12 and all(t.policy == "expert" and t.done for t in episodes)
    assert all(t.latency_ms == [] for t in episodes)  # scripted: no timing, exact replays
    table = MetricTable.model_validate_json((out / "metrics.json").read_text())
    success = table.get("aggregate", "success@1")
    assert success.n == 12 and success.point == sum(t.success for t in episodes) / 12
    assert "aggregate" in (out / "report.md").read_text()

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["llm_sha"].startswith("scripted:expert@")
    assert manifest["adapters"] == [] and manifest["tokenizer_sha"] is None
    assert set(manifest["scenario_sets"]) == {"refund_agent"}
    assert manifest["reward_spec"]["refund_agent"]["outcome"] > 0
    assert manifest["tools"]["refund_agent"]["issue_refund"]
    assert any(name.endswith(".yaml") for name in manifest["fixtures"]["refund_agent"])
    assert manifest["config"]["limit"] == 12 and "python" in manifest["versions"]

    printed = capsys.readouterr().out
    assert "aggregate" in printed and str(out / "report.md") in printed


def test_the_same_config_twice_gives_byte_identical_files(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert evaluate(first, LIMIT, "batch_size=5") == EXIT_OK
    assert evaluate(second, LIMIT, "batch_size=5") == EXIT_OK
    for name in ("episodes.jsonl", "metrics.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    assert keys(first) == sorted(keys(first))  # the finished file is sorted by key


def test_a_killed_run_resumes_without_replaying_or_double_counting(tmp_path):
    clean, out = tmp_path / "clean", tmp_path / "killed"
    assert evaluate(clean) == EXIT_OK
    assert evaluate(out, "limit=5") == EXIT_OK  # the part that finished before the kill
    lines = (out / "episodes.jsonl").read_text().splitlines(keepends=True)
    marked = [json.dumps({**json.loads(line), "info": {"marker": 1}}) + "\n" for line in lines]
    torn = (clean / "episodes.jsonl").read_text().splitlines()[-1][:300]  # no newline
    (out / "episodes.jsonl").write_text("".join(marked) + torn)

    assert evaluate(out, "resume=true") == EXIT_OK

    episodes = list(read_jsonl(out / "episodes.jsonl"))
    counts = Counter((t.env_id, t.scenario_id, t.epoch) for t in episodes)
    assert counts.keys() == set(keys(clean)) and set(counts.values()) == {1}
    assert sum(t.info.get("marker") == 1 for t in episodes) == 5  # kept, not played again
    assert (out / "metrics.json").read_bytes() == (clean / "metrics.json").read_bytes()


def test_resuming_with_a_changed_config_is_refused_naming_the_key(tmp_path, capsys):
    out = tmp_path / "run"
    assert evaluate(out, "limit=3") == EXIT_OK
    before = (out / "episodes.jsonl").read_bytes()
    for override, key in [("seed=1", "seed"), ("sampling.temperature=0.7", "sampling")]:
        assert evaluate(out, "limit=3", "resume=true", override) == EXIT_CONFIG
        assert f"config.{key}" in capsys.readouterr().err
    assert (out / "episodes.jsonl").read_bytes() == before
    assert evaluate(out, "limit=6", "epochs=2", "resume=true") == EXIT_OK  # more jobs: fine


def test_check_frozen_reruns_and_passes(tmp_path, capsys):
    out = tmp_path / "run"
    assert evaluate(out, "limit=6", "check_frozen=true") == EXIT_OK
    assert "check_frozen passed" in capsys.readouterr().out
    rerun = tmp_path / "run-rerun"
    assert (rerun / "metrics.json").read_bytes() == (out / "metrics.json").read_bytes()


def test_diff_metrics_names_what_differs_and_ignores_timing(tmp_path):
    assert evaluate(tmp_path / "run", "limit=6") == EXIT_OK
    episodes = list(read_jsonl(tmp_path / "run" / "episodes.jsonl"))
    same = compute_metrics(episodes)
    timed = compute_metrics([t.model_copy(update={"latency_ms": [5.0]}) for t in episodes])
    assert diff_metrics(same, timed) == []
    worse = compute_metrics([t.model_copy(update={"success": False}) for t in episodes])
    assert "aggregate/success@1" in " ".join(diff_metrics(same, worse))


@pytest.mark.parametrize(
    ("override", "key", "allowed"),
    [
        ("env=nowhere", "env", "refund_agent"),
        ("env=[refund_agent,nowhere]", "env", "refund_agent"),
        ("policy=nobody", "policy", "expert"),
        ("split=nosplit", "split", "env 'refund_agent' has no split 'nosplit'; declared: train"),
        ("role=customer", "role", "env 'refund_agent' has no roles (it is not a multi-agent"),
        ("partners={a:expert}", "partners", "env 'refund_agent' has no roles"),
        ("epochs=0", "epochs", "greater than or equal to 1"),
    ],
)
def test_a_bad_config_exits_2_naming_the_key_before_any_work(
    tmp_path, capsys, override, key, allowed
):
    out = tmp_path / "run"
    assert evaluate(out, override) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert f"{key}:" in err and allowed in err
    assert not out.exists()


def test_a_model_policy_without_its_model_is_a_bad_config(tmp_path, capsys):
    assert main(["policy=hf", f"out={tmp_path / 'run'}"]) == EXIT_CONFIG
    assert "model:" in capsys.readouterr().err
    assert main(["policy=openai", "model=m", f"out={tmp_path / 'run'}"]) == EXIT_CONFIG
    assert "base_url:" in capsys.readouterr().err


def test_epochs_give_k_trajectories_per_scenario_with_distinct_epochs(tmp_path):
    out = tmp_path / "run"
    assert evaluate(out, "limit=4", "epochs=3") == EXIT_OK
    episodes = list(read_jsonl(out / "episodes.jsonl"))
    assert len(episodes) == 12
    by_scenario: dict[str, list[int]] = {}
    for t in episodes:
        by_scenario.setdefault(t.scenario_id, []).append(t.epoch)
    assert len(by_scenario) == 4 and all(sorted(e) == [0, 1, 2] for e in by_scenario.values())
    assert len({t.seed for t in episodes}) == 12
    table = MetricTable.model_validate_json((out / "metrics.json").read_text())
    assert table.get("aggregate", "pass@3") is not None


def test_episode_seeds_are_stable_and_distinct():
    seed = episode_seed(0, "refund_agent", "abc", 0)
    assert seed == episode_seed(0, "refund_agent", "abc", 0) and 0 <= seed < 2**63
    others = [episode_seed(1, "refund_agent", "abc", 0), episode_seed(0, "x", "abc", 0)]
    others += [episode_seed(0, "refund_agent", "abd", 0), episode_seed(0, "refund_agent", "abc", 1)]
    assert seed not in others and len(set(others)) == 4


def test_the_command_line_runs_without_importing_torch(tmp_path):
    out = tmp_path / "run"
    code = textwrap.dedent(
        f"""
        import runpy, sys
        sys.argv = ["evals.run", "policy=expert", "limit=2", "out={out}"]
        try:
            runpy.run_module("evals.run", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            assert exc.code == 0, exc.code
        assert "torch" not in sys.modules, "evals.run imported torch"
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout and (out / "report.md").is_file()


def test_policy_hf_without_the_train_extra_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else real(name)
    )
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    out = tmp_path / "run"
    assert main(["env=math_tools", "policy=hf", f"model={model}", f"out={out}"]) == EXIT_CONFIG
    assert capsys.readouterr().err == (
        "evals.run: bad config: policy: policy=hf needs transformers (toolgym's train extra): "
        "pip install 'toolgym[train]' (torch first, the build for your machine)\n"
    )
    assert not out.exists()  # refused before any work


def test_two_processes_with_different_hash_seeds_write_the_same_bytes(tmp_path: Path) -> None:
    # str hashing (set order, dict-of-set order) differs per process unless it never leaks
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run-{hash_seed}"
        argv = ["env=[refund_agent,refund_handoff,stale_report]", "policy=expert", "limit=4"]
        done = subprocess.run(
            [sys.executable, "-m", "evals.run", *argv, f"out={out}"],
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"},
        )
        assert done.returncode == EXIT_OK, done.stderr
        outputs.append([(out / name).read_bytes() for name in ("episodes.jsonl", "metrics.json")])
    assert outputs[0] == outputs[1]
    assert outputs[0][0].count(b"\n") == 12  # 3 envs x 4 scenarios, all written
