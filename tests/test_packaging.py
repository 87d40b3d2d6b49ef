"""toolgym as a library: installed from its wheel, extended by a separate package.

The wheel is built from this checkout and installed, with a third-party env package
(`tests/plugin_pkg`: the `letter_count` env, its policies and promotion rules, declared
through entry points), into a fresh folder outside the checkout. Every command then runs
from another directory in a Python that cannot see the checkout (`-S`: no site hooks, so
not the editable install either), as a user who ran `pip install toolgym` would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLUGIN_SRC = Path(__file__).resolve().parent / "plugin_pkg"
NOT_SOURCE = shutil.ignore_patterns(
    ".venv*", ".git", "runs", "build", "*.egg-info", "__pycache__", ".hypothesis",
    ".pytest_cache", ".ruff_cache", "mutants", "dist",
)  # fmt: skip


def _build_wheel(source: Path, out: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return out


def test_the_wheel_builds_without_a_deprecation_warning_from_setuptools(tmp_path: Path) -> None:
    # a TOML-table `project.license` warns on every build, and setuptools stops building
    # it after 2027-02-18; the SPDX string needs setuptools 77
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)
    assert project["build-system"]["requires"] == ["setuptools>=77"]
    shutil.copytree(REPO, tmp_path / "src", ignore=NOT_SOURCE)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(tmp_path / "src")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    assert "Deprecat" not in built.stdout + built.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding toolgym's wheel and the plugin's wheel, installed."""
    root = tmp_path_factory.mktemp("wheels")
    for name in ("toolgym", "plugin"):
        source = root / f"src-{name}"
        shutil.copytree(REPO if name == "toolgym" else PLUGIN_SRC, source, ignore=NOT_SOURCE)
        _build_wheel(source, root / "dist")
    target = root / "site"
    wheels = sorted(str(p) for p in (root / "dist").glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
         *wheels],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return target


def run(target: Path, cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -S <args>` with only the installed wheels and the dependencies importable."""
    path = os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])
    env = {
        **os.environ,
        "PYTHONPATH": path,
        "TOOLGYM_CACHE": str(cwd / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip


def test_import_comes_from_the_wheel_and_gymnasium_finds_plugin_envs(installed: Path, tmp_path):
    code = (
        "import gymnasium, envs\n"
        "print(envs.__file__)\n"
        "env = gymnasium.make('toolgym/LetterCount-v0', split='eval')\n"  # import envs only
        "obs, info = env.reset(seed=0)\n"
        "obs, r, term, trunc, info = env.step("
        '\'<tool_call>{"name": "count_letter", "arguments": '
        '{"word": "banana", "letter": "a"}}</tool_call>\')\n'
        "print(obs[-1]['content'])\n"
        "env = gymnasium.make('toolgym/RefundAgent-v0', split='eval')\n"
        "print(len(env.reset(seed=1)[0]))\n"
    )
    done = run(installed, tmp_path, "-c", code)
    assert done.returncode == 0, done.stderr
    module_file, tool_result, opening = done.stdout.split()
    assert Path(module_file).is_relative_to(installed)  # not the checkout
    assert tool_result == "3"  # 'banana' has three a's
    assert opening == "2"  # system prompt + the customer's message


def test_eval_and_gate_run_from_the_wheel_on_a_builtin_env(installed: Path, tmp_path: Path):
    done = run(installed, tmp_path, "-m", "evals.run", "env=math_tools", "policy=expert", "out=m")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["code"] is None  # a wheel, not a checkout: no commit to report
    assert manifest["versions"]["toolgym"] == "0.1.0"
    gate = run(installed, tmp_path, "-m", "evals.gate", "rules=math_tools", "candidate=m",
               "baseline=m")  # fmt: skip
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "VERDICT: GO" in gate.stdout and "NO-GO" not in gate.stdout


def test_a_plugin_env_is_checked_against_the_contract_from_the_wheel(installed: Path, tmp_path):
    done = run(installed, tmp_path, "-m", "envs.check", "env=letter_count", "played=4")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = [line.split()[:2] for line in done.stdout.splitlines()]
    names = ("gymnasium", "card", "expert", "do_nothing", "determinism", "schemas")
    assert checks == [["ok", name] for name in names]


def test_plugin_env_and_its_policies_run_in_eval_and_gate(installed: Path, tmp_path: Path):
    for policy, out in (("expert", "good"), ("letter_guesser", "bad")):
        done = run(installed, tmp_path, "-m", "evals.run", "env=letter_count", f"policy={policy}",
                   f"out={out}")  # fmt: skip
        assert done.returncode == 0, done.stderr
    good = [json.loads(line) for line in (tmp_path / "good" / "episodes.jsonl").open()]
    assert len(good) == 24 and all(t["success"] for t in good)
    assert {t["reward"] for t in good} == {1.5}  # correct 1.0 + 0.5 x tool_execution 1.0
    manifest = json.loads((tmp_path / "good" / "manifest.json").read_text())
    assert manifest["env_versions"] == {"letter_count": "0.3.1"}
    assert list(manifest["fixtures"]["letter_count"]) == [
        "letter_count_env:rules/letter_count.rules"
    ]
    go = run(installed, tmp_path, "-m", "evals.gate", "rules=letter_count", "candidate=good",
             "baseline=bad")  # fmt: skip
    assert go.returncode == 0, go.stdout + go.stderr
    no_go = run(installed, tmp_path, "-m", "evals.gate", "rules=letter_count", "candidate=bad",
                "baseline=good")  # fmt: skip
    assert no_go.returncode == 1, no_go.stdout + no_go.stderr
    assert "VERDICT: NO-GO" in no_go.stdout


def test_unknown_policy_for_a_plugin_env_is_a_clean_config_error(installed: Path, tmp_path: Path):
    done = run(installed, tmp_path, "-m", "evals.run", "env=letter_count", "policy=quitter")
    assert done.returncode == 2
    assert "unknown policy 'quitter' for env 'letter_count'" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_plugin_env_trains_with_its_own_demonstrations(installed: Path, tmp_path: Path):
    tiny = [
        "model=tiny", "tiny.copy_steps=0", "tiny.vocab_size=512", "tiny.hidden_size=32",
        "tiny.num_layers=1", "tiny.num_heads=2", "tiny.num_kv_heads=1",
        "tiny.corpus_trajectories=8", "tiny.line_tokens=8",
    ]  # fmt: skip
    sft = run(installed, tmp_path, "-m", "trainers.sft", "env=letter_count", "out=sft", *tiny,
              "data.demonstrations=8", "trainer.max_steps=2", "trainer.batch_size=2")  # fmt: skip
    assert sft.returncode == 0, sft.stdout[-2000:] + sft.stderr[-4000:]
    rows = [json.loads(line) for line in (tmp_path / "sft" / "data" / "sft.jsonl").open()]
    tools = {t["function"]["name"] for row in rows for t in json.loads(row["tools"])}
    assert tools == {"count_letter"}  # the plugin's own demonstrations, no refund tools
    assert {row["policy"] for row in rows} <= {"expert", "letter_guesser"}
    grpo = run(installed, tmp_path, "-m", "trainers.grpo", "env=letter_count", "sft_out=sft",
               "out=grpo", "trainer.max_steps=2", "trainer.batch_size=4",
               "trainer.num_generations=2", "trainer.max_turn_tokens=32",
               "trainer.max_episode_tokens=96", "eval.every=8")  # fmt: skip
    assert grpo.returncode == 0, grpo.stdout[-2000:] + grpo.stderr[-4000:]
    summary = json.loads((tmp_path / "grpo" / "summary.json").read_text())
    assert set(summary["eval"]["start"]["aggregate"]) == {"success@1", "reward.correct"}
