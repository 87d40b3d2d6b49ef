"""`python -m evals.audit env=refund_agent`: can any adversary tie the honest expert?

Contract
--------
* **Config**: `configs/audit.yaml` with Hydra overrides (`configs.compose`), validated into
  `AuditConfig` (env, split, limit, seed, adversaries, batch_size, tolerance, out). A bad
  key or value exits 2 naming the key, before any episode runs.
* **Scenarios**: the env's `split` (the frozen `eval` by default); `limit=N` keeps the first
  N scenarios of each slice (file order), so a short audit still covers every slice.
* **Players**: the env's expert (`envs.card(env).expert`, made by `policies.registry`)
  and, unless `adversaries=[...]` picks some, every generic adversary of
  `policies.adversarial`, every env-declared `adversaries` policy and every declared
  `failure_modes` policy. All play through the one rollout loop (`envs.rollout`), with
  the seeds `evals.run` uses. The expert plays first; its episodes give the adversaries
  their hints (`request.metadata["audit"]`: its turns on the scenario, its final replies
  elsewhere, the tools its episodes ended or acted with).
* **Verdict**: per adversary and slice (every slice tag, and `all`) where some episode's
  adversary turns differ from the expert's (identical episodes score the same, so they
  never change the verdict): a finding when the adversary's mean total reward on the
  slice is within `tolerance` of the expert's or above it
  (`ties` / `beats`), or when an adversary whose deviation is a failure by the env's own
  terms (`may_succeed` false; failure modes are judged on reward only) gets success credit
  on such an episode (`success`). Each finding names the weighted components on which the
  adversary earns at least the expert's reward (a penalty counts with its negative
  weight: a larger penalty is a lower reward), and prints an example episode.
* **Output**: a note naming the scenarios (the first five) where the expert itself is
  more than `tolerance` below the env's maximum, a table of mean reward gaps (adversary −
  expert; `.` where it never deviated), the findings, and with `out=DIR` `report.json`
  (indented by two) and `examples.jsonl` (the example episodes, adversary then expert).
  Exit 0: no finding; 1: findings; 2: bad config.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from configs import ConfigError, load
from core.policy import Policy
from core.records import Termination, Trajectory
from envs.rollout import EpisodeJob, rollout
from evals.run import episode_seed
from scenarios.schema import Scenario
from tools.calls import parse_action

EXIT_OK, EXIT_FINDINGS, EXIT_CONFIG = 0, 1, 2
ALL = "all"
EXAMPLE_CHARS = 160
EXAMPLE_MESSAGES = 14


class AuditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: str
    split: str = "eval"
    limit: int | None = Field(default=None, ge=1)
    seed: int = Field(default=0, ge=0)
    adversaries: list[str] | None = None
    batch_size: int = Field(default=32, ge=1)
    tolerance: float = Field(default=1e-9, ge=0)
    out: str | None = None

    @field_validator("adversaries", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class Player:
    name: str
    make: Callable[[], Policy]
    may_succeed: bool
    origin: str  # "generic", "adversary" (env-declared) or "failure_mode"


@dataclass
class Row:
    """One adversary on one slice, against the expert."""

    adversary: str
    slice: str
    n: int
    deviating: int
    expert_mean: float
    adversary_mean: float
    at_or_above: list[str] = field(default_factory=list)  # components it earns as much on
    successes: list[str] = field(default_factory=list)  # scenario ids with unearned success
    verdict: str = "pass"  # pass | ties | beats | success | same (never deviated)
    example: str | None = None  # a scenario id showing the finding

    @property
    def gap(self) -> float:
        return self.adversary_mean - self.expert_mean


# ---- config -------------------------------------------------------------------------------
def load_config(argv: Sequence[str]) -> AuditConfig:
    return load("audit", argv, AuditConfig)


def players(cfg: AuditConfig) -> tuple[Player, list[Player]]:
    """The expert and the adversaries the config asks for (all by default)."""
    import envs
    from policies.adversarial import GENERIC_ADVERSARIES
    from policies.registry import make_policy

    card = envs.card(cfg.env)
    if card.expert is None:
        raise ConfigError(f"env: '{cfg.env}' declares no expert to audit against")
    expert_name = card.expert

    def expert() -> Policy:
        return make_policy(expert_name, env=cfg.env)

    found: dict[str, Player] = {}
    for name, cls in GENERIC_ADVERSARIES.items():
        found[name] = Player(name, _wrapping(cls, expert), cls.may_succeed, "generic")
    for origin, names in (("adversary", card.adversaries), ("failure_mode", card.failure_modes)):
        for name in names:
            make = _declared(name, cfg.env)
            may = origin == "failure_mode" or bool(getattr(make(), "may_succeed", False))
            found[name] = Player(name, make, may, origin)
    wanted = cfg.adversaries or list(found)
    unknown = [name for name in wanted if name not in found]
    if unknown:
        raise ConfigError(
            f"adversaries: unknown {unknown} for env '{cfg.env}'; allowed: {', '.join(found)}"
        )
    return Player(expert_name, expert, True, "expert"), [found[name] for name in wanted]


def _wrapping(
    cls: Callable[[Policy], Policy], expert: Callable[[], Policy]
) -> Callable[[], Policy]:
    return lambda: cls(expert())


def _declared(name: str, env: str) -> Callable[[], Policy]:
    from policies.registry import make_policy

    return lambda: make_policy(name, env=env)


def select_scenarios(scenarios: Sequence[Scenario], limit: int | None) -> list[Scenario]:
    """At most `limit` scenarios per slice (file order); all of them without a limit."""
    if limit is None:
        return list(scenarios)
    taken: dict[str, int] = defaultdict(int)
    chosen = []
    for scenario in scenarios:
        tags = scenario.slices or [ALL]
        if any(taken[tag] < limit for tag in tags):
            chosen.append(scenario)
            for tag in tags:
                taken[tag] += 1
    return chosen


# ---- playing ------------------------------------------------------------------------------
def play(
    cfg: AuditConfig, policy: Policy, scenarios: Sequence[Scenario], hints: dict[str, Any]
) -> dict[str, Trajectory]:
    import envs

    jobs = [
        EpisodeJob(
            scenario,
            episode_seed(cfg.seed, cfg.env, scenario.content_hash),
            metadata={"audit": hints.get(scenario.id)},
        )
        for scenario in scenarios
    ]
    make_env = lambda: envs.make_raw(cfg.env, split=cfg.split)  # noqa: E731
    batch = min(cfg.batch_size, len(jobs))  # no more live episodes than jobs
    return {t.scenario_id: t for t in rollout(make_env, policy, jobs, batch_size=batch)}


def turns_of(trajectory: Trajectory) -> list[str]:
    """The assistant's turns as sent (raw text), for replays."""
    return [m.content for m in trajectory.messages if m.role == "assistant"]


def behaviour(trajectory: Trajectory) -> list[tuple[str, list[Any]]]:
    """What each assistant turn did: its visible reply and its calls (thoughts left out,
    so a policy that only thinks differently is not a different behaviour)."""
    done = []
    for message in trajectory.messages:
        if message.role == "assistant":
            parsed = parse_action(message.content)
            calls = [(c.name, c.arguments, c.error_kind) for c in parsed.calls]
            done.append((parsed.content, calls))
    return done


def audit_hints(expert_runs: dict[str, Trajectory]) -> dict[str, dict[str, Any]]:
    """What the adversaries may know, from the expert's own episodes.

    A tool *acts* (changes the world) if the expert used it only in episodes that left
    side effects in the sandbox (`end_state["events"]`); it *ends* episodes if an expert
    episode stopped on its call without a final reply."""
    finals = {sid: t.final_answer for sid, t in expert_runs.items() if t.final_answer}
    with_effects: set[str] = set()
    without_effects: set[str] = set()
    ending: set[str] = set()
    for trajectory in expert_runs.values():
        used = {c.name for c in trajectory.tool_calls if c.name}
        (with_effects if trajectory.end_state.get("events") else without_effects).update(used)
        last = trajectory.tool_calls[-1].name if trajectory.tool_calls else None
        if last and trajectory.termination not in (
            Termination.FINAL_ANSWER,
            Termination.TURN_LIMIT,
        ):
            ending.add(last)
    acting = with_effects - without_effects - ending
    return {
        sid: {
            "expert_turns": turns_of(trajectory),
            "final_pool": sorted({text for other, text in finals.items() if other != sid}),
            "ending_tools": sorted(ending),
            "acting_tools": sorted(acting),
        }
        for sid, trajectory in expert_runs.items()
    }


# ---- judging ------------------------------------------------------------------------------
def compare(
    player: Player,
    expert_runs: dict[str, Trajectory],
    runs: dict[str, Trajectory],
    tolerance: float,
    weights: dict[str, float],
) -> list[Row]:
    """One row per slice (and `all`) of the expert's episodes; `weights`: the env's reward
    weights (a penalty's negative weight makes a higher value a lower reward)."""
    by_slice: dict[str, list[str]] = defaultdict(list)
    for sid, trajectory in expert_runs.items():
        for tag in [*trajectory.slices, ALL]:
            by_slice[tag].append(sid)
    rows = []
    for tag, ids in by_slice.items():
        pairs = [(expert_runs[sid], runs[sid]) for sid in ids if sid in runs]
        deviating = [(e, a) for e, a in pairs if behaviour(e) != behaviour(a)]
        expert_mean = mean(e.reward for e, _ in pairs)
        adversary_mean = mean(a.reward for _, a in pairs)
        row = Row(player.name, tag, len(pairs), len(deviating), expert_mean, adversary_mean)
        if not deviating:
            row.verdict = "same"
            rows.append(row)
            continue
        row.at_or_above = _components_at_or_above(pairs, tolerance, weights)
        if not player.may_succeed:
            row.successes = [a.scenario_id for _, a in deviating if a.success]
        if row.gap > tolerance:
            row.verdict = "beats"
        elif row.gap >= -tolerance:
            row.verdict = "ties"
        elif row.successes:
            row.verdict = "success"
        row.example = _example_id(deviating, row)
        rows.append(row)
    return rows


def _components_at_or_above(
    pairs: list[tuple[Trajectory, Trajectory]], tolerance: float, weights: dict[str, float]
) -> list[str]:
    """The weighted components on which the adversary earns at least the expert's reward."""
    names = sorted({name for e, _ in pairs for name in e.reward_components if weights.get(name)})

    def earned(name: str, side: int) -> float:
        return weights[name] * mean(pair[side].reward_components[name] for pair in pairs)

    return [name for name in names if earned(name, 1) >= earned(name, 0) - tolerance]


def _example_id(deviating: list[tuple[Trajectory, Trajectory]], row: Row) -> str:
    if row.verdict == "success":
        return row.successes[0]
    best = max(deviating, key=lambda pair: (pair[1].reward - pair[0].reward, pair[1].scenario_id))
    return best[1].scenario_id


# ---- reporting ----------------------------------------------------------------------------
def render_table(rows: list[Row], slices: list[str]) -> str:
    """Mean reward gap (adversary − expert) per adversary and slice; `.` = never deviated."""
    width = 9
    names = list(dict.fromkeys(row.adversary for row in rows))
    cells = {(row.adversary, row.slice): row for row in rows}
    lines = [f"{'adversary':<24}" + "".join(f"{s[: width - 1]:>{width}}" for s in slices)]
    for name in names:
        line = f"{name[:23]:<24}"
        for tag in slices:
            row = cells.get((name, tag))
            if row is None or row.verdict == "same":
                text = "."
            else:
                text = f"{row.gap:+.2f}" + ("!" if row.verdict != "pass" else "")
            line += f"{text:>{width}}"
        lines.append(line)
    return "\n".join(lines)


def render_example(adversary: Trajectory, expert: Trajectory) -> str:
    lines = [
        f"    scenario {adversary.scenario_id}: reward {adversary.reward:.3f} "
        f"(expert {expert.reward:.3f}), success {adversary.success} (expert {expert.success})",
        "    components: "
        + ", ".join(
            f"{k} {v:+.2f}/{expert.reward_components.get(k, 0.0):+.2f}"
            for k, v in adversary.reward_components.items()
        ),
    ]
    shown = [m for m in adversary.messages if m.role in ("assistant", "tool")]
    for message in shown[:EXAMPLE_MESSAGES]:
        text = " ".join(message.content.split())
        cut = text[:EXAMPLE_CHARS] + ("…" if len(text) > EXAMPLE_CHARS else "")
        lines.append(f"      [{message.role}] {cut}")
    return "\n".join(lines)


def render_findings(
    findings: list[Row], runs: dict[str, dict[str, Trajectory]], expert: dict[str, Trajectory]
) -> str:
    lines = []
    for row in findings:
        what = {
            "beats": "beats the expert",
            "ties": "ties the expert",
            "success": f"gets success credit on {len(row.successes)} deviating episode(s)",
        }[row.verdict]
        lines.append(
            f"FINDING {row.adversary} on {row.slice}: {what} (mean {row.adversary_mean:.3f} vs "
            f"{row.expert_mean:.3f}, {row.deviating}/{row.n} episodes deviate); components at "
            f"or above the expert: {', '.join(row.at_or_above) or 'none'}"
        )
        if row.example is not None:
            lines.append(render_example(runs[row.adversary][row.example], expert[row.example]))
    return "\n".join(lines)


def write_out(
    out: Path,
    cfg: AuditConfig,
    rows: list[Row],
    findings: list[Row],
    runs: dict[str, dict[str, Trajectory]],
    expert: dict[str, Trajectory],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "config": cfg.model_dump(),
        "rows": [asdict(row) for row in rows],
        "findings": [asdict(row) for row in findings],
    }
    (out / "report.json").write_bytes((json.dumps(report, indent=2) + "\n").encode())
    examples = [
        f"{episode.to_json()}\n"
        for row in findings
        if row.example is not None
        for episode in (runs[row.adversary][row.example], expert[row.example])
    ]
    (out / "examples.jsonl").write_bytes("".join(examples).encode())


# ---- the command --------------------------------------------------------------------------
def audit(cfg: AuditConfig) -> tuple[list[Row], dict[str, dict[str, Trajectory]], dict[str, Any]]:
    """Play the expert and every adversary; compare them per slice."""
    import envs

    try:
        env = envs.make_raw(cfg.env, split=cfg.split)
    except KeyError:
        allowed = ", ".join(envs.ENVS.names())
        raise ConfigError(f"env: unknown env '{cfg.env}'; allowed: {allowed}") from None
    except (ValueError, OSError, TypeError) as exc:
        raise ConfigError(f"split: env '{cfg.env}' cannot load split '{cfg.split}': {exc}") from exc
    expert_player, adversaries = players(cfg)
    scenarios = select_scenarios(env.scenarios, cfg.limit)
    expert = play(cfg, expert_player.make(), scenarios, {})
    hints = audit_hints(expert)
    runs = {p.name: play(cfg, p.make(), scenarios, hints) for p in adversaries}
    weights = dict(env.rubric.weights)
    rows = [
        row for p in adversaries for row in compare(p, expert, runs[p.name], cfg.tolerance, weights)
    ]
    context = {"expert": expert, "max_total": env.rubric.max_total, "slices": _slices(expert)}
    return rows, runs, context


def _slices(expert: dict[str, Trajectory]) -> list[str]:
    return [*sorted({tag for t in expert.values() for tag in t.slices}), ALL]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        cfg = load_config(argv)
        rows, runs, context = audit(cfg)
    except ConfigError as exc:
        print(f"evals.audit: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    expert: dict[str, Trajectory] = context["expert"]
    below = sorted(
        sid for sid, t in expert.items() if t.reward < context["max_total"] - cfg.tolerance
    )
    print(
        f"audit of {cfg.env} ({cfg.split}, {len(expert)} scenarios): expert mean reward "
        f"{mean(t.reward for t in expert.values()):.3f} of {context['max_total']:.3f}; "
        f"{len(runs)} adversaries; cells: adversary − expert mean reward ('!' = finding, "
        f"'.' = never deviated)\ncolumns: {', '.join(context['slices'])}"
    )
    if below:
        print(f"note: the expert is below the maximum on {len(below)} scenario(s): {below[:5]}")
    print(render_table(rows, context["slices"]))
    findings = [row for row in rows if row.verdict in ("ties", "beats", "success")]
    if findings:
        print(render_findings(findings, runs, expert))
    if cfg.out:
        write_out(Path(cfg.out), cfg, rows, findings, runs, expert)
    print(f"{'FAIL' if findings else 'PASS'}: {len(findings)} finding(s)")
    return EXIT_FINDINGS if findings else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
