"""stale_report: check today's date with the tool, compare, and use the right report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import envs
from core.records import Trajectory, write_jsonl
from envs.rollout import EpisodeJob, rollout
from evals import gate
from policies.registry import make_policy
from rewards import freshness
from scenarios import stale_report as sets

ENV = "stale_report"
MAX_TOTAL = 2.75  # 1 + 1 + 0.25 + 0.25 + 0.25


def play(policy: str, split: str = "eval") -> list[Trajectory]:
    env = envs.make_raw(ENV, split=split)
    jobs = [EpisodeJob(s, seed=i) for i, s in enumerate(env.scenarios)]
    return list(
        rollout(lambda: envs.make_raw(ENV, split=split), make_policy(policy, env=ENV), jobs)
    )


def by_slice(trajectories: list[Trajectory], name: str) -> list[Trajectory]:
    return [t for t in trajectories if name in t.slices]


def answer(text: str) -> Trajectory:
    return Trajectory(env_id=ENV, scenario_id="x", scenario_hash="h", seed=0, final_answer=text)


@pytest.fixture(scope="module")
def expert_runs() -> list[Trajectory]:
    return play("expert")


def test_cases_agree_with_the_frozen_corpus_and_the_eval_split_is_frozen(tmp_path: Path) -> None:
    corpus = Path(sets.__file__).parent / "data/stale_report/corpus/reports.jsonl"
    growth = {}
    for line in corpus.read_text().splitlines():
        doc = json.loads(line)
        if doc.get("version"):
            growth[doc["id"]] = doc["text"]
    for case in sets.load_split("cases"):
        if case.stale:  # both figures quoted in the case are the corpus's own words
            assert case.latest_doc is not None
            assert f"Revenue grew {case.latest_growth_pct:.1f}%" in growth[case.latest_doc]
            old = sets.report_id(case.company, case.attachment.period)
            assert f"Revenue grew {case.attachment.growth_pct:.1f}%" in growth[old]
        else:
            assert case.attachment.published > max(p for _, p in sets.QUARTERS)
    refrozen = sets.freeze_eval(tmp_path / "eval.jsonl").read_bytes()
    assert refrozen == corpus.parent.parent.joinpath("eval.jsonl").read_bytes()
    assert not {s.content_hash for s in sets.load_split("train")} & {
        s.content_hash for s in sets.load_split("eval")
    }


def test_expert_checks_the_date_and_uses_the_right_report(expert_runs: list[Trajectory]) -> None:
    assert len(expert_runs) == 60
    for trajectory in expert_runs:
        assert trajectory.success and trajectory.reward == pytest.approx(MAX_TOTAL)
        assert trajectory.tool_calls[0].name == "get_current_date"
    stale = by_slice(expert_runs, "datetime_freshness")
    assert len(stale) == 30 and all(t.turns == 3 for t in stale)  # date+search, read, answer
    assert all("these are not the latest earnings" in (t.final_answer or "") for t in stale)


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        # (slice, success rate, mean used_current_state, mean correct) worked out from the
        # policy's behaviour: no tool → used 0; trusting an old report → correct 0; a new
        # report trusted → correct 1; calling a new report stale → correct 0.
        (
            "trusts_attachment",
            {"datetime_freshness": (0.0, 0.0, 0.0), "rag_new_document": (0.0, 0.0, 1.0)},
        ),
        ("own_clock", {"datetime_freshness": (0.0, 0.0, 0.0), "rag_new_document": (0.0, 0.0, 1.0)}),
        (
            "always_stale",
            {"datetime_freshness": (1.0, 1.0, 1.0), "rag_new_document": (0.0, 1.0, 0.0)},
        ),
    ],
)
def test_failure_policies_fail_on_their_slice(
    policy: str, expected: dict[str, tuple[float, float, float]]
) -> None:
    runs = play(policy)
    for name, (success, used, correct) in expected.items():
        runs_here = by_slice(runs, name)
        n = len(runs_here)
        assert sum(t.success for t in runs_here) / n == success
        assert sum(t.reward_components["used_current_state"] for t in runs_here) / n == used
        assert sum(t.reward_components["correct"] for t in runs_here) / n == correct
    worst = min(
        sum(t.reward for t in by_slice(runs, s)) / len(by_slice(runs, s)) for s in sets.SLICES
    )
    assert worst < MAX_TOTAL - 0.5


@pytest.mark.parametrize(
    ("text", "stale", "expected"),
    [
        ("Not the latest: Q4 2025 revenue grew 7.4% year over year.", True, 1.0),
        ("This report is outdated.", True, 0.5),
        ("Revenue grew 0.5% in Q1 2025.", True, 0.0),
        ("Q1 2026 trading update: revenue grew 9.1%.", False, 1.0),
        ("Outdated! Q1 2026 trading update: revenue grew 9.1%.", False, 0.0),
    ],
)
def test_correct_component(text: str, stale: bool, expected: float) -> None:
    case = next(c for c in sets.load_split("cases") if c.stale == stale)
    assert freshness.correct(answer(text), case) == expected


def test_negative_growth_may_be_said_in_words() -> None:
    case = next(c for c in sets.load_split("cases") if c.latest_growth_pct < 0)
    text = f"Not the latest. In {case.latest_period} revenue declined 0.6% year over year."
    assert freshness.correct(answer(text), case) == 1.0
    assert freshness.correct(answer(text.replace("declined", "grew")), case) == 0.5


def test_a_wrong_today_in_the_answer_loses_used_current_state(
    expert_runs: list[Trajectory],
) -> None:
    trajectory = expert_runs[0].model_copy(deep=True)
    case = next(s for s in sets.load_split("eval") if s.id == trajectory.scenario_id)
    assert freshness.used_current_state(trajectory, case) == 1.0
    trajectory.final_answer = "Today is 2024-06-30. " + (trajectory.final_answer or "")
    assert freshness.used_current_state(trajectory, case) == 0.0
    trajectory.tool_calls = []
    trajectory.final_answer = f"Today is {case.now.date().isoformat()}."
    assert freshness.used_current_state(trajectory, case) == 0.0  # guessed right, never checked


def test_promotion_rules_on_real_runs(
    tmp_path: Path, expert_runs: list[Trajectory], capsys: Any
) -> None:
    folders = {}
    for name, runs in (("expert", expert_runs), ("always_stale", play("always_stale"))):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        write_jsonl(folders[name] / "episodes.jsonl", runs)
    go = gate.main(
        [f"rules={ENV}", f"candidate={folders['expert']}", f"baseline={folders['always_stale']}"]
    )
    report = capsys.readouterr().out
    assert go == 0 and "VERDICT: GO" in report, report
    no_go = gate.main(
        [f"rules={ENV}", f"candidate={folders['always_stale']}", f"baseline={folders['expert']}"]
    )
    report = capsys.readouterr().out
    assert no_go == 1 and "VERDICT: NO-GO" in report
    assert "no_regressions_on" in report.split("VERDICT")[1]  # rag_new_document regressed
