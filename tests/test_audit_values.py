"""The reward audit's numbers, verdicts and printed report, value by value.

Two kinds of input, both small enough to check by hand:

* audits of `calculator_handoff` (its expert scores 2 = handoff_info 1 + role_execution 1
  on every scenario; `mental_math` answers at once: handoff_info −1, role 0, total −1),
  some with planted reward holes (`plant`);
* hand-built episodes for the judging and printing functions (`compare`, `audit_hints`,
  `render_*`), where every mean and verdict is worked out in the comments.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import envs
from core.records import Execution, Message, Termination, ToolCallRecord, Trajectory
from envs.calculator_handoff import CalculatorHandoffEnv
from evals import audit

MATH = "calculator_handoff"
HEADER = (
    "cells: adversary − expert mean reward ('!' = finding, '.' = never deviated)\n"
    "columns: handoff_math, all\n"
    "adversary                handoff_      all\n"
)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = audit.main(argv)
    printed = capsys.readouterr()
    return code, printed.out, printed.err


def plant(monkeypatch: pytest.MonkeyPatch, **components: Any) -> None:
    """calculator_handoff with some reward components replaced (a planted hole)."""
    rewards = {**CalculatorHandoffEnv.rewards, **components}
    monkeypatch.setattr(CalculatorHandoffEnv, "rewards", rewards)


def one(value: float) -> Any:
    return lambda trajectory, scenario: value


def half_if_no_calls(trajectory: Trajectory, scenario: Any) -> float:
    return 0.0 if trajectory.tool_calls else 0.5


# ---- whole audits -------------------------------------------------------------------------------
def test_a_clean_audit_prints_each_gap_and_passes(capsys: pytest.CaptureFixture[str]) -> None:
    # limit=1: seed_apples only. mental_math -1 against the expert's 2: gap -3.00.
    code, out, _ = run([f"env={MATH}", "limit=1", "adversaries=[mental_math]"], capsys)
    assert code == 0
    assert out == (
        "audit of calculator_handoff (eval, 1 scenarios): expert mean reward 2.000 of 2.000; "
        "1 adversaries; " + HEADER + "mental_math                 -3.00    -3.00\n"
        "PASS: 0 finding(s)\n"
    )


def test_one_adversary_may_be_named_without_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run([f"env={MATH}", "limit=1", "adversaries=mental_math"], capsys)
    assert code == 0
    assert "1 adversaries; " in out and "\nmental_math                 -3.00    -3.00\n" in out


def test_a_batch_of_one_episode_at_a_time_scores_the_same(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [f"env={MATH}", "limit=2", "adversaries=[mental_math]", "batch_size=1"]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert out.endswith(HEADER + "mental_math                 -3.00    -3.00\nPASS: 0 finding(s)\n")


def test_without_a_limit_the_whole_eval_split_is_played(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # calculator_handoff's eval split: its 2 hand-written cases and 48 generated problems.
    code, out, _ = run([f"env={MATH}", "adversaries=[mental_math]"], capsys)
    assert code == 0
    assert out.startswith("audit of calculator_handoff (eval, 50 scenarios): expert mean reward")


def test_the_limit_counts_per_slice(capsys: pytest.CaptureFixture[str]) -> None:
    # refund_handoff's eval file starts with its cases: seed_refund_123 and seed_status_123
    # (handoff_info), seed_refund_123_missing and lookup_down (error propagation) are the
    # first two of each slice: 4 scenarios.
    code, out, _ = run(["env=refund_handoff", "limit=2", "adversaries=[skips_handoff]"], capsys)
    assert code == 0
    assert out.startswith("audit of refund_handoff (eval, 4 scenarios): expert mean reward 2.000")


def test_a_tie_is_a_finding_with_its_example_episode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Planted: handoff_info and role_execution pay 1 whatever happens. mental_math then
    # scores 1 + 1 - 0 - 0 = 2, the expert's 2: a tie on handoff_math and on all.
    plant(monkeypatch, handoff_info=one(1.0), role_execution=one(1.0))
    code, out, _ = run([f"env={MATH}", "limit=1", "adversaries=[mental_math]"], capsys)
    assert code == 1
    finding = (
        "FINDING mental_math on {}: ties the expert (mean 2.000 vs 2.000, 1/1 episodes "
        "deviate); components at or above the expert: handoff_info, role_execution, "
        "wasted_calls, wrong_final_response\n"
        "    scenario seed_apples: reward 2.000 (expert 2.000), success True (expert True)\n"
        "    components: handoff_info +1.00/+1.00, role_execution +1.00/+1.00, "
        "wrong_final_response +0.00/+0.00, wasted_calls +0.00/+0.00\n"
        "      [assistant] <answer>5</answer>\n"
    )
    assert out.endswith(
        HEADER
        + "mental_math"
        + " " * 16
        + "+0.00!   +0.00!\n"
        + finding.format("handoff_math")
        + finding.format("all")
        + "FAIL: 2 finding(s)\n"
    )


def test_beating_the_expert_is_a_finding_and_the_expert_below_its_maximum_is_noted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Planted: handoff_info pays 1 only to an episode without tool calls. The expert (its
    # handoff) gets -1 + 1 = 0 of its maximum 2; mental_math 1 + 0 = 1: it beats it by 1.
    # The adversary earns more on handoff_info and as much on the two penalties (0, 0).
    plant(monkeypatch, handoff_info=lambda t, s: -1.0 if t.tool_calls else 1.0)
    code, out, _ = run([f"env={MATH}", "limit=1", "adversaries=[mental_math]"], capsys)
    assert code == 1
    assert out.startswith(
        "audit of calculator_handoff (eval, 1 scenarios): expert mean reward 0.000 of 2.000; "
        "1 adversaries; cells: adversary − expert mean reward ('!' = finding, '.' = never "
        "deviated)\ncolumns: handoff_math, all\n"
        "note: the expert is below the maximum on 1 scenario(s): ['seed_apples']\n"
    )
    assert "mental_math" + " " * 16 + "+1.00!   +1.00!\n" in out
    assert (
        "FINDING mental_math on all: beats the expert (mean 1.000 vs 0.000, 1/1 episodes "
        "deviate); components at or above the expert: handoff_info, wasted_calls, "
        "wrong_final_response\n"
    ) in out
    assert out.endswith("FAIL: 2 finding(s)\n")


def test_the_note_names_at_most_five_scenarios_in_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every expert episode is planted one point short (role_execution 0): of the 50
    # scenarios the note counts all and names the first five ids in sorted order.
    plant(monkeypatch, role_execution=one(0.0))
    code, out, _ = run([f"env={MATH}", "adversaries=[mental_math]"], capsys)
    assert code == 0
    first_five = [f"handoff_math-eval-{i:03d}" for i in range(5)]
    assert f"note: the expert is below the maximum on 50 scenario(s): {first_five}\n" in out


def test_success_credit_on_a_failing_deviation_is_a_finding(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Planted: handoff_info and role_execution always 1 (so every episode is a success),
    # and 0.5 wasted_calls to an episode without calls. plausible_final (no tools, another
    # scenario's expert reply: "<answer>5</answer>", right on both apples cases) scores
    # 2 - 0.5 = 1.5 < 2, but it may not succeed: a success finding on each slice.
    plant(
        monkeypatch,
        handoff_info=one(1.0),
        role_execution=one(1.0),
        wasted_calls=half_if_no_calls,
    )
    argv = [f"env={MATH}", "limit=2", "adversaries=[plausible_final,mental_math]"]
    code, out, _ = run(argv, capsys)
    assert code == 1
    assert "plausible_final" + " " * 12 + "-0.50!   -0.50!\n" in out
    assert "mental_math                 -0.50    -0.50\n" in out  # a failure mode: reward only
    assert (
        "FINDING plausible_final on handoff_math: gets success credit on 2 deviating "
        "episode(s) (mean 1.500 vs 2.000, 2/2 episodes deviate); components at or above "
        "the expert: handoff_info, role_execution, wrong_final_response\n"
        "    scenario seed_apples: reward 1.500 (expert 2.000), success True (expert True)\n"
    ) in out
    assert "FINDING mental_math" not in out
    assert out.endswith("FAIL: 2 finding(s)\n")


def test_an_adversary_half_a_point_below_is_no_finding_at_the_default_tolerance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plant(
        monkeypatch, handoff_info=one(1.0), role_execution=one(1.0), wasted_calls=half_if_no_calls
    )
    rows, _, _ = audit.audit(audit.AuditConfig(env=MATH, limit=1, adversaries=["mental_math"]))
    assert [(row.slice, row.verdict, row.gap) for row in rows] == [
        ("handoff_math", "pass", -0.5), ("all", "pass", -0.5),
    ]  # fmt: skip


def test_findings_are_written_with_their_example_episodes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plant(monkeypatch, handoff_info=one(1.0), role_execution=one(1.0))
    out = tmp_path / "audit"
    argv = [f"env={MATH}", "limit=1", "adversaries=[mental_math,untagged]", f"out={out}"]
    code, _, _ = run(argv, capsys)
    assert code == 1
    report = json.loads((out / "report.json").read_text())
    assert report["config"] == {
        "env": MATH, "split": "eval", "limit": 1, "seed": 0,
        "adversaries": ["mental_math", "untagged"], "batch_size": 32, "tolerance": 1e-9,
        "out": str(out),
    }  # fmt: skip
    # untagged: "The answer is 5." has no <answer>: info -1, role 0 (planted: 1), wrong 1:
    # 1 + 1 - 1 = 1, below the expert's 2: no finding.
    assert [(r["adversary"], r["slice"], r["verdict"]) for r in report["rows"]] == [
        ("mental_math", "handoff_math", "ties"), ("mental_math", "all", "ties"),
        ("untagged", "handoff_math", "pass"), ("untagged", "all", "pass"),
    ]  # fmt: skip
    assert [(f["adversary"], f["slice"]) for f in report["findings"]] == [
        ("mental_math", "handoff_math"), ("mental_math", "all"),
    ]  # fmt: skip
    lines = (out / "examples.jsonl").read_text().splitlines()
    episodes = [Trajectory.from_json(line) for line in lines]
    assert [(e.policy, e.scenario_id) for e in episodes] == [
        ("mental_math", "seed_apples"), ("expert", "seed_apples"),
    ] * 2  # fmt: skip


def test_the_audit_plays_each_scenario_with_the_seed_evals_run_gives_it(tmp_path: Path) -> None:
    from evals import run as eval_run

    assert eval_run.main([f"env={MATH}", "policy=expert", "seed=3", f"out={tmp_path}"]) == 0
    with (tmp_path / "episodes.jsonl").open() as fh:
        seeds = {t.scenario_id: t.seed for t in map(Trajectory.from_json, fh)}
    cfg = audit.AuditConfig(env=MATH, limit=2, seed=3, adversaries=["mental_math"])
    _, runs, context = audit.audit(cfg)
    played = {**{f"expert {k}": t.seed for k, t in context["expert"].items()}}
    played.update({f"mental_math {k}": t.seed for k, t in runs["mental_math"].items()})
    assert played == {
        f"{who} {sid}": seeds[sid]
        for who in ("expert", "mental_math")
        for sid in ("seed_apples", "seed_carly_apples")
    }


def test_the_default_seed_is_the_one_evals_run_uses_by_default(tmp_path: Path) -> None:
    from evals import run as eval_run

    assert eval_run.main([f"env={MATH}", "policy=expert", f"out={tmp_path}"]) == 0
    with (tmp_path / "episodes.jsonl").open() as fh:
        seeds = {t.scenario_id: t.seed for t in map(Trajectory.from_json, fh)}
    _, _, context = audit.audit(audit.AuditConfig(env=MATH, limit=1, adversaries=["mental_math"]))
    assert {k: t.seed for k, t in context["expert"].items()} == {
        "seed_apples": seeds["seed_apples"]
    }


def test_the_command_line_reads_its_arguments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["evals/audit.py", f"env={MATH}", "limit=1", "adversaries=[mental_math]"]
    monkeypatch.setattr(sys, "argv", argv)
    assert audit.main() == 0
    assert capsys.readouterr().out.startswith("audit of calculator_handoff (eval, 1 scenarios)")


def test_an_expert_exactly_the_tolerance_below_its_maximum_is_not_noted(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # role_execution planted at 0.5: the expert scores 1.5 of 2, exactly 0.5 below.
    plant(monkeypatch, role_execution=one(0.5))
    argv = [f"env={MATH}", "limit=1", "adversaries=[mental_math]"]
    _, at_the_tolerance, _ = run([*argv, "tolerance=0.5"], capsys)
    _, beyond_it, _ = run([*argv, "tolerance=0.4"], capsys)
    assert "note:" not in at_the_tolerance
    note = "note: the expert is below the maximum on 1 scenario(s): ['seed_apples']\n"
    assert note in beyond_it


def test_report_json_is_indented_by_two_into_a_new_nested_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "a" / "b"
    argv = [f"env={MATH}", "limit=1", "adversaries=[mental_math]", f"out={out}"]
    assert run(argv, capsys)[0] == 0
    text = (out / "report.json").read_text()
    assert text.startswith('{\n  "config": {\n    "env": "calculator_handoff",\n')
    assert text.endswith('\n    }\n  ],\n  "findings": []\n}\n')  # the last row, no finding
    assert (out / "examples.jsonl").read_bytes() == b""  # no finding, no example


def test_a_second_audit_into_the_same_folder_replaces_the_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [f"env={MATH}", "limit=1", f"out={tmp_path}"]
    assert run([*argv, "adversaries=[mental_math]"], capsys)[0] == 0
    assert run([*argv, "adversaries=[untagged]"], capsys)[0] == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert {r["adversary"] for r in report["rows"]} == {"untagged"}


class Counting:
    """The calculator_handoff expert, counting the requests of each policy call."""

    name = "counting"

    def __init__(self) -> None:
        from policies.registry import make_policy

        self.expert = make_policy("expert", env=MATH)
        self.sizes: list[int] = []

    def act(self, requests: Any) -> Any:
        self.sizes.append(len(requests))
        return self.expert.act(requests)


def scenarios_of(limit: int | None) -> list[Any]:
    return audit.select_scenarios(envs.make_raw(MATH, split="eval").scenarios, limit)


def test_batch_size_bounds_the_live_episodes_per_policy_call() -> None:
    # 2 scenarios, batch_size 1: one episode at a time, every call asks for one turn.
    policy = Counting()
    audit.play(audit.AuditConfig(env=MATH, batch_size=1), policy, scenarios_of(2), {})
    assert set(policy.sizes) == {1}


def test_by_default_32_episodes_are_live_per_policy_call() -> None:
    # The whole eval split (50 scenarios): the first call carries 32 episodes' turns.
    policy = Counting()
    played = audit.play(audit.AuditConfig(env=MATH), policy, scenarios_of(None), {})
    assert len(played) == 50
    assert policy.sizes[0] == 32


# ---- configuration errors -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("seed=-1", "seed: Input should be greater than or equal to 0"),
        ("batch_size=0", "batch_size: Input should be greater than or equal to 1"),
        ("tolerance=-0.1", "tolerance: Input should be greater than or equal to 0"),
    ],
)
def test_a_setting_below_its_floor_is_refused(
    override: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([f"env={MATH}", override], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"evals.audit: bad config: {message}")


@pytest.mark.parametrize("override", ["seed=0", "batch_size=1", "tolerance=0"])
def test_a_setting_at_its_floor_is_accepted(override: str) -> None:
    cfg = audit.load_config([f"env={MATH}", override])
    key, value = override.split("=")
    assert getattr(cfg, key) == float(value)


def test_an_unknown_env_is_refused_naming_the_registered_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(["env=no_such_env"], capsys)
    assert code == 2
    allowed = ", ".join(envs.ENVS.names())
    assert err == f"evals.audit: bad config: env: unknown env 'no_such_env'; allowed: {allowed}\n"


def test_an_unknown_split_is_refused_with_the_envs_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run([f"env={MATH}", "split=no_such_split"], capsys)
    assert code == 2
    assert err == (
        "evals.audit: bad config: split: env 'calculator_handoff' cannot load split "
        "'no_such_split': calculator_handoff has no split 'no_such_split'; allowed splits: "
        "train, eval, cases\n"
    )


def test_an_unknown_adversary_is_refused_naming_every_allowed_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from policies.adversarial import GENERIC_ADVERSARIES

    code, _, err = run([f"env={MATH}", "adversaries=[mental_math,nope]"], capsys)
    assert code == 2
    allowed = [*GENERIC_ADVERSARIES, "mental_math", "ignores_report", "untagged"]
    assert err == (
        f"evals.audit: bad config: adversaries: unknown ['nope'] for env 'calculator_handoff'; "
        f"allowed: {', '.join(allowed)}\n"
    )


def test_an_env_without_an_expert_cannot_be_audited(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(CalculatorHandoffEnv, "expert", None)
    code, _, err = run([f"env={MATH}"], capsys)
    assert code == 2
    assert err == (
        "evals.audit: bad config: env: 'calculator_handoff' declares no expert to audit against\n"
    )


# ---- who plays ------------------------------------------------------------------------------
def test_players_are_the_expert_then_the_generic_adversaries_then_the_declared_ones() -> None:
    from policies.adversarial import GENERIC_ADVERSARIES

    expert, adversaries = audit.players(audit.AuditConfig(env="refund_agent"))
    assert (expert.name, expert.may_succeed, expert.origin) == ("expert", True, "expert")
    found = [(p.name, p.may_succeed, p.origin) for p in adversaries]
    generic = [(name, cls.may_succeed, "generic") for name, cls in GENERIC_ADVERSARIES.items()]
    # refund_agent's own adversaries: lookup_spree's outcome is right (it may succeed), the
    # others fail by the env's terms; its failure modes are judged on reward only.
    declared = [
        ("lookup_spree", True, "adversary"),
        ("lies_about_outcome", False, "adversary"),
        ("early_escalation", False, "adversary"),
        ("promise_refund", False, "adversary"),
    ]
    modes = [(name, True, "failure_mode") for name in envs.card("refund_agent").failure_modes]
    assert found == generic + declared + modes


def test_players_are_made_fresh_from_the_named_policies() -> None:
    expert, adversaries = audit.players(
        audit.AuditConfig(env=MATH, adversaries=["untagged", "pad_calls"])
    )
    assert type(expert.make()).__name__ == "CalculatorHandoffExpert"
    assert [p.name for p in adversaries] == ["untagged", "pad_calls"]
    untagged, pad = (p.make() for p in adversaries)
    assert type(untagged).__name__ == "Untagged"
    assert type(pad).__name__ == "PadCalls"
    assert type(pad.expert).__name__ == "CalculatorHandoffExpert"  # wraps a fresh expert


def test_the_limit_keeps_the_first_scenarios_of_each_slice() -> None:
    # limit 2: a (x), b (x, y), c (x: x is full), d (y), e (untagged: counts as "all"),
    # f (y: full), g (untagged), h (untagged: "all" is full).
    tags = {"a": ["x"], "b": ["x", "y"], "c": ["x"], "d": ["y"], "e": [], "f": ["y"]}
    tags.update({"g": [], "h": []})
    scenarios = [SimpleNamespace(id=sid, slices=slices) for sid, slices in tags.items()]
    chosen = audit.select_scenarios(scenarios, 2)
    assert [s.id for s in chosen] == ["a", "b", "d", "e", "g"]
    assert audit.select_scenarios(scenarios, None) == scenarios


def test_a_scenario_is_kept_while_any_of_its_slices_wants_more() -> None:
    # limit 1: a fills x; b (x, y) is kept for y; c (y) is not.
    tags = {"a": ["x"], "b": ["x", "y"], "c": ["y"]}
    scenarios = [SimpleNamespace(id=sid, slices=slices) for sid, slices in tags.items()]
    assert [s.id for s in audit.select_scenarios(scenarios, 1)] == ["a", "b"]


# ---- hand-built episodes: judging ----------------------------------------------------------
def call(name: str, turn: int = 1) -> ToolCallRecord:
    return ToolCallRecord(
        turn=turn, index=0, call_id=f"c{turn}", raw="", name=name, arguments={},
        valid=True, execution=Execution.OK,
    )  # fmt: skip


def episode(
    sid: str,
    reward: float,
    *,
    slices: tuple[str, ...] = ("s",),
    turns: tuple[str, ...] = ("Done.",),
    components: dict[str, float] | None = None,
    success: bool = False,
    calls: tuple[str, ...] = (),
    events: tuple[str, ...] = (),
    termination: Termination = Termination.FINAL_ANSWER,
    final: str | None = None,
) -> Trajectory:
    return Trajectory(
        env_id="test",
        scenario_id=sid,
        scenario_hash=sid,
        seed=0,
        slices=list(slices),
        messages=[Message(role="assistant", content=text) for text in turns],
        tool_calls=[call(name, i + 1) for i, name in enumerate(calls)],
        termination=termination,
        final_answer=final,
        reward=reward,
        reward_components=components or {"r": reward},
        success=success,
        end_state={"events": [{"event": e} for e in events]},
    )


PAD = audit.Player("pad", lambda: None, True, "generic")
LIAR = audit.Player("liar", lambda: None, False, "generic")
WEIGHTS = {"r": 1.0}


def rows_of(player: audit.Player, expert: list[Trajectory], adversary: list[Trajectory], **kw: Any):
    runs = {t.scenario_id: t for t in adversary}
    found = audit.compare(
        player, {t.scenario_id: t for t in expert}, runs, kw.get("tolerance", 1e-9),
        kw.get("weights", WEIGHTS),
    )  # fmt: skip
    return [
        (r.slice, r.n, r.deviating, r.expert_mean, r.adversary_mean, r.verdict, r.example)
        for r in found
    ]


def test_rows_come_per_slice_in_first_seen_order_with_their_means() -> None:
    # s1: a, b; s2: b, c; all: a, b, c. The adversary deviates on a (1 vs 2) and c (0 vs 1)
    # and plays b as the expert did. s1: means 2 and 1.5; s2: 1.5 and 1; all: 5/3 and 1.
    # Example: the deviation closest to the expert, ties broken by the larger scenario id
    # (a and c are both 1 below: c).
    expert = [
        episode("a", 2.0, slices=("s1",)),
        episode("b", 2.0, slices=("s1", "s2")),
        episode("c", 1.0, slices=("s2",)),
    ]
    adversary = [
        episode("a", 1.0, slices=("s1",), turns=("Hi.",)),
        episode("b", 2.0, slices=("s1", "s2")),
        episode("c", 0.0, slices=("s2",), turns=("Hi.",)),
    ]
    assert rows_of(PAD, expert, adversary) == [
        ("s1", 2, 1, 2.0, 1.5, "pass", "a"),
        ("all", 3, 2, pytest.approx(5 / 3), 1.0, "pass", "c"),
        ("s2", 2, 1, 1.5, 1.0, "pass", "c"),
    ]


def test_the_example_is_the_deviation_closest_to_the_expert() -> None:
    expert = [episode("a", 2.0), episode("b", 2.0)]
    adversary = [episode("a", 1.5, turns=("Hi.",)), episode("b", 0.0, turns=("Hi.",))]
    assert rows_of(PAD, expert, adversary)[0][-1] == "a"


def test_a_scenario_the_adversary_did_not_play_is_left_out() -> None:
    expert = [episode("a", 2.0), episode("b", 2.0)]
    assert rows_of(PAD, expert, [episode("a", 1.0, turns=("Hi.",))])[0][:5] == (
        "s", 1, 1, 2.0, 1.0,
    )  # fmt: skip


def test_an_adversary_that_never_deviates_is_the_same() -> None:
    # Same reward where it plays as the expert did: verdict "same", no example.
    expert = [episode("a", 2.0, turns=("<think>x</think>\nDone.",))]
    adversary = [episode("a", 2.0, turns=("<think>other thoughts</think>\nDone.",))]
    rows = audit.compare(PAD, {"a": expert[0]}, {"a": adversary[0]}, 1e-9, WEIGHTS)
    assert [(r.verdict, r.deviating, r.at_or_above, r.example) for r in rows] == [
        ("same", 0, [], None),
        ("same", 0, [], None),
    ]


def test_different_calls_in_a_turn_are_a_deviation() -> None:
    call_a = '<tool_call>{"name": "f", "arguments": {"x": 1}}</tool_call>'
    call_b = '<tool_call>{"name": "f", "arguments": {"x": 2}}</tool_call>'
    expert, adversary = episode("a", 2.0, turns=(call_a,)), episode("a", 2.0, turns=(call_b,))
    rows = audit.compare(PAD, {"a": expert}, {"a": adversary}, 1e-9, WEIGHTS)
    assert [r.verdict for r in rows] == ["ties", "ties"]


@pytest.mark.parametrize(
    ("reward", "verdict"),
    [(2.75, "beats"), (2.5, "ties"), (2.0, "ties"), (1.5, "ties"), (1.25, "pass")],
)
def test_the_tolerance_bounds_a_tie_on_both_sides(reward: float, verdict: str) -> None:
    # Expert 2, tolerance 0.5: a gap of exactly +0.5 or -0.5 is a tie, beyond it not.
    rows = rows_of(PAD, [episode("a", 2.0)], [episode("a", reward, turns=("Hi.",))], tolerance=0.5)
    assert [row[5] for row in rows] == [verdict, verdict]


def test_success_credit_counts_only_for_an_adversary_that_may_not_succeed() -> None:
    # a: deviates, success; b: deviates, no success; c: plays as the expert, success.
    expert = [episode(s, 2.0, success=True) for s in "abc"]
    adversary = [
        episode("a", 1.0, turns=("Hi.",), success=True),
        episode("b", 1.0, turns=("Hi.",)),
        episode("c", 2.0, success=True),
    ]
    runs = {t.scenario_id: t for t in adversary}
    experts = {t.scenario_id: t for t in expert}
    liar = audit.compare(LIAR, experts, runs, 1e-9, WEIGHTS)
    assert [(r.verdict, r.successes, r.example) for r in liar] == [("success", ["a"], "a")] * 2
    pad = audit.compare(PAD, experts, runs, 1e-9, WEIGHTS)
    assert [(r.verdict, r.successes) for r in pad] == [("pass", [])] * 2


def test_a_tie_with_success_credit_is_reported_as_the_tie() -> None:
    adversary = episode("a", 2.0, turns=("Hi.",), success=True)
    rows = audit.compare(LIAR, {"a": episode("a", 2.0)}, {"a": adversary}, 1e-9, WEIGHTS)
    assert [(r.verdict, r.successes) for r in rows] == [("ties", ["a"])] * 2


def test_components_at_or_above_count_each_with_its_weight() -> None:
    # Weights: gain 2, penalty -1, logged 0. Means over a and b:
    # gain: adversary (1 + 0)/2 = 0.5 vs expert 0.5: earns as much -> listed;
    # penalty: adversary 0.5 vs expert 0: penalised more (-0.5 < 0) -> not listed;
    # bonus: adversary 1 vs expert 0.75 (weight 1): earns more -> listed;
    # logged: weight 0 earns nothing either way -> never listed.
    weights = {"gain": 2.0, "penalty": -1.0, "bonus": 1.0, "logged": 0.0}

    def parts(gain: float, penalty: float, bonus: float) -> dict[str, float]:
        return {"gain": gain, "penalty": penalty, "bonus": bonus, "logged": 1.0}

    expert = {
        "a": episode("a", 0.0, components=parts(1.0, 0.0, 1.0)),
        "b": episode("b", 0.0, components=parts(0.0, 0.0, 0.5)),
    }
    adversary = {
        "a": episode("a", 0.0, turns=("Hi.",), components=parts(0.0, 1.0, 1.0)),
        "b": episode("b", 0.0, turns=("Hi.",), components=parts(1.0, 0.0, 1.0)),
    }
    rows = audit.compare(PAD, expert, adversary, 1e-9, weights)
    assert [r.at_or_above for r in rows] == [["bonus", "gain"]] * 2


def test_a_component_within_the_tolerance_of_the_expert_counts_as_at_or_above() -> None:
    # gain: adversary 0.9 vs expert 1.0, tolerance 0.1: within it; 0.85 is not.
    expert = {"a": episode("a", 1.0, components={"gain": 1.0})}
    close = {"a": episode("a", 0.9, turns=("Hi.",), components={"gain": 0.9})}
    far = {"a": episode("a", 0.85, turns=("Hi.",), components={"gain": 0.85})}
    weights = {"gain": 1.0}
    assert audit.compare(PAD, expert, close, 0.1, weights)[0].at_or_above == ["gain"]
    assert audit.compare(PAD, expert, far, 0.1, weights)[0].at_or_above == []


def test_hints_tell_each_scenario_the_experts_turns_and_the_other_finals() -> None:
    expert = {
        "a": episode("a", 2.0, turns=("look", "Done A."), final="Done A."),
        "b": episode("b", 2.0, turns=("Done B.",), final="Done B."),
        "c": episode("c", 2.0, turns=("look", "hand over"), final=None),
    }
    hints = audit.audit_hints(expert)
    assert {sid: h["expert_turns"] for sid, h in hints.items()} == {
        "a": ["look", "Done A."], "b": ["Done B."], "c": ["look", "hand over"],
    }  # fmt: skip
    assert {sid: h["final_pool"] for sid, h in hints.items()} == {
        "a": ["Done B."], "b": ["Done A."], "c": ["Done A.", "Done B."],
    }  # fmt: skip


def test_hints_name_tools_that_act_and_tools_that_end() -> None:
    # a: look then act, a refund happened, ended by a reply; b: look only, nothing happened;
    # c: look then escalate, ended by the escalation; d: look then pad, cut at the turn
    # limit (pad is not an ending). Acting: used only where something happened, and not an
    # ending tool: act (look ran where nothing happened; escalate ends episodes).
    expert = {
        "a": episode("a", 2.0, calls=("look", "act"), events=("refund",)),
        "b": episode("b", 2.0, calls=("look",)),
        "c": episode(
            "c",
            2.0,
            calls=("look", "escalate"),
            events=("escalation",),
            termination=Termination.ESCALATION,
        ),
        "d": episode("d", 2.0, calls=("look", "pad"), termination=Termination.TURN_LIMIT),
        "e": episode("e", 2.0, termination=Termination.ESCALATION),  # no call: nothing ends
    }
    hints = audit.audit_hints(expert)
    assert {h["ending_tools"].__repr__() for h in hints.values()} == {"['escalate']"}
    assert {h["acting_tools"].__repr__() for h in hints.values()} == {"['act']"}


def test_a_tool_used_where_nothing_happened_does_not_act() -> None:
    # act changes the world in a but is also used in b, where nothing happened.
    expert = {
        "a": episode("a", 2.0, calls=("act",), events=("refund",)),
        "b": episode("b", 2.0, calls=("act",)),
    }
    assert audit.audit_hints(expert)["a"]["acting_tools"] == []


# ---- hand-built episodes: printing ---------------------------------------------------------
def row(adversary: str, tag: str, gap: float, verdict: str) -> audit.Row:
    made = audit.Row(adversary, tag, 2, 1, 2.0, 2.0 + gap, verdict=verdict)
    return made


def test_the_table_shows_gaps_marks_findings_and_dots_where_nothing_deviated() -> None:
    rows = [
        row("an_adversary_with_a_very_long_name", "handoff_error_propagation", -0.5, "pass"),
        row("an_adversary_with_a_very_long_name", "all", 0.0, "ties"),
        row("other", "handoff_error_propagation", 0.0, "same"),
        row("other", "all", 1.25, "beats"),
        row("third", "all", -1.0, "success"),
    ]
    table = audit.render_table(rows, ["handoff_error_propagation", "all"])
    assert table.split("\n") == [
        "adversary                handoff_      all",
        "an_adversary_with_a_ver     -0.50   +0.00!",
        "other                           .   +1.25!",
        "third                           .   -1.00!",
    ]


def test_an_example_shows_rewards_components_and_the_first_messages_cut_short() -> None:
    long = "word " * 40  # 200 characters, 199 once its spaces are squeezed and stripped
    messages = [
        Message(role="user", content="not shown"),
        Message(role="assistant", content="first\n   reply"),
        Message(role="tool", content="a result"),
        *[Message(role="assistant", content=f"turn {i}") for i in range(11)],
        Message(role="assistant", content=long),
        Message(role="assistant", content="the sixteenth: not shown"),
    ]
    adversary = episode("a", 0.5, components={"r": 0.5, "p": 1.0}, success=True)
    adversary.messages = messages
    expert = episode("a", 2.0, components={"r": 2.0, "p": 0.0})
    text = audit.render_example(adversary, expert)
    assert text.split("\n") == [
        "    scenario a: reward 0.500 (expert 2.000), success True (expert False)",
        "    components: r +0.50/+2.00, p +1.00/+0.00",
        "      [assistant] first reply",
        "      [tool] a result",
        *[f"      [assistant] turn {i}" for i in range(11)],
        "      [assistant] " + ("word " * 32) + "…",
    ]


def test_an_example_message_of_exactly_the_limit_is_not_cut() -> None:
    adversary = episode("a", 0.0, turns=("x" * 160,))
    text = audit.render_example(adversary, episode("a", 0.0))
    assert text.split("\n")[-1] == "      [assistant] " + "x" * 160


def test_a_component_the_expert_lacks_shows_zero_for_it() -> None:
    text = audit.render_example(
        episode("a", 1.0, components={"extra": 1.0}), episode("a", 2.0, components={"r": 2.0})
    )
    assert text.split("\n")[1] == "    components: extra +1.00/+0.00"


def test_findings_print_what_each_verdict_means() -> None:
    runs = {"liar": {"a": episode("a", 1.0, turns=("Hi.",))}}
    expert = {"a": episode("a", 2.0)}
    ties = audit.Row("liar", "s", 3, 2, 2.0, 2.0, ["r", "q"], [], "ties", None)
    beats = audit.Row("liar", "all", 1, 1, 1.0, 1.5, [], [], "beats", None)
    success = audit.Row("liar", "s", 4, 2, 2.0, 1.0, [], ["a", "b"], "success", "a")
    text = audit.render_findings([ties, beats, success], runs, expert)
    assert text.split("\n") == [
        "FINDING liar on s: ties the expert (mean 2.000 vs 2.000, 2/3 episodes deviate); "
        "components at or above the expert: r, q",
        "FINDING liar on all: beats the expert (mean 1.500 vs 1.000, 1/1 episodes deviate); "
        "components at or above the expert: none",
        "FINDING liar on s: gets success credit on 2 deviating episode(s) (mean 1.000 vs "
        "2.000, 2/4 episodes deviate); components at or above the expert: none",
        "    scenario a: reward 1.000 (expert 2.000), success False (expert False)",
        "    components: r +1.00/+2.00",
        "      [assistant] Hi.",
    ]
