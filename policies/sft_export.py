"""Expert trajectories → chat-format SFT records (JSONL) for the cold-start fine-tune.

Contract
--------
`export_sft(trajectories, path)` writes one JSON record per trajectory::

    {"messages": [...], "tools": [...], "scenario_id": "...", "slices": [...]}

`messages` are in the HF/OpenAI chat format that `tokenizer.apply_chat_template(messages,
tools=tools)` takes:

* system / user: `{"role", "content"}`;
* assistant: `{"role": "assistant", "content": <the text outside <tool_call> blocks>}`
  plus `"tool_calls": [{"id", "type": "function", "function": {"name", "arguments":
  {...}}}]` when it called tools (arguments as a JSON object, as HF templates expect);
  a message whose calls did not parse keeps its raw text and no `tool_calls`;
* tool: `{"role": "tool", "tool_call_id", "name", "content"}`.

`tools` are the JSON function schemas the episode offered. `hermes_text(message)` renders
an exported assistant message back to the exact text the policy wrote, and `read_sft`
reads a file back. Nothing is tokenized and no ML framework is imported here.

    python -m policies.sft_export env=refund_agent split=train out=data/sft.jsonl \
        [policy=expert] [seed=0] [limit=N]

The CLI plays the policy over the split with `envs.rollout.rollout` and keeps only the
episodes that succeeded with the maximum total reward.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from core.records import Message, Trajectory
from core.render import hermes_message
from tools.calls import parse_text

USAGE = "env=refund_agent split=train out=PATH [policy=expert] [seed=0] [limit=N]"


def sft_record(trajectory: Trajectory) -> dict[str, Any]:
    """One trajectory as a chat-format SFT record."""
    messages = trajectory.messages
    chat: list[dict[str, Any]] = []
    for position, message in enumerate(messages):
        if message.role == "assistant":
            chat.append(_assistant(message, messages[position + 1 :]))
        elif message.role == "tool":
            chat.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id,
                    "name": message.name,
                    "content": message.content,
                }
            )
        else:
            chat.append({"role": message.role, "content": message.content})
    return {
        "messages": chat,
        "tools": [dict(schema) for schema in trajectory.tools],
        "scenario_id": trajectory.scenario_id,
        "slices": list(trajectory.slices),
    }


def _assistant(message: Message, after: Sequence[Message]) -> dict[str, Any]:
    """Split Hermes text into content + structured tool_calls (ids from the tool replies)."""
    if message.tool_calls:  # already structured (an OpenAI-style policy)
        return message.to_chat()
    parsed = parse_text(message.content)
    if not parsed.calls or any(call.error_kind is not None for call in parsed.calls):
        return {"role": "assistant", "content": message.content}
    replies = []
    for reply in after:
        if reply.role != "tool":
            break
        replies.append(reply)
    tool_calls = [
        {
            "id": replies[i].tool_call_id if i < len(replies) else f"call_{i}",
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments or {}},
        }
        for i, call in enumerate(parsed.calls)
    ]
    content = message.content
    for call in parsed.calls:
        content = content.replace(call.raw, "")
    return {"role": "assistant", "content": content.strip(), "tool_calls": tool_calls}


def hermes_text(message: dict[str, Any]) -> str:
    """An exported assistant message as the Hermes text a model writes."""
    calls = [
        (c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls") or []
    ]
    return hermes_message(message.get("content") or "", calls)


def export_sft(trajectories: Iterable[Trajectory], path: str | Path) -> int:
    """Write one SFT record per trajectory; returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as fh:
        for trajectory in trajectories:
            fh.write(json.dumps(sft_record(trajectory), ensure_ascii=False) + "\n")
            count += 1
    return count


def read_sft(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def expert_trajectories(
    env_name: str, split: str, *, policy: str = "expert", seed: int = 0, limit: int | None = None
) -> Iterable[Trajectory]:
    """Play `policy` once over every scenario of the split; keep the max-reward successes."""
    import envs
    from envs.rollout import EpisodeJob, rollout
    from policies.registry import make_policy

    env = envs.make_raw(env_name, split=split)
    scenarios = env.scenarios[:limit] if limit is not None else env.scenarios
    jobs = [EpisodeJob(s, seed=seed + i) for i, s in enumerate(scenarios)]
    best = env.rubric.max_total
    for trajectory in rollout(
        lambda: envs.make_raw(env_name, split=split), make_policy(policy, env_name), jobs
    ):
        if trajectory.success and trajectory.reward >= best:
            yield trajectory


def main(argv: Sequence[str] | None = None) -> None:
    items = sys.argv[1:] if argv is None else argv
    bad = [item for item in items if "=" not in item]
    if bad:
        raise SystemExit(
            f"expected key=value, got {bad}; usage: python -m policies.sft_export {USAGE}"
        )
    args = dict(item.split("=", 1) for item in items)
    unknown = sorted(set(args) - {"env", "split", "out", "policy", "seed", "limit"})
    if unknown or "out" not in args:
        problem = f"unknown option(s) {unknown}" if unknown else "missing out=PATH"
        raise SystemExit(f"{problem}; usage: python -m policies.sft_export {USAGE}")
    env_name, split = args.get("env", "refund_agent"), args.get("split", "train")
    trajectories = expert_trajectories(
        env_name,
        split,
        policy=args.get("policy", "expert"),
        seed=int(args.get("seed", "0")),
        limit=int(args["limit"]) if "limit" in args else None,
    )
    count = export_sft(trajectories, args["out"])
    print(f"wrote {count} SFT records ({env_name}/{split}) to {args['out']}")


if __name__ == "__main__":
    main()
