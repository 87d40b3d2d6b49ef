"""Scenario splits as the parquet files verl's dataset class (`RLHFDataset`) reads.

Contract
--------
* `split_rows(env_name, split, seed)`: one row per scenario of the env's split, in the
  split's order. Each row carries what an agent-loop worker needs to replay the episode
  with no other file: `env`, `split`, `scenario_id`, `seed` (the reset seed the TRL
  backend uses, `trainers.data.scenario_seed`), `agent_name` (the verl agent loop,
  `toolgym_env`), `prompt` (the opening chat from `env.begin`, role and content: verl
  logs it and filters by its length), `slices`, `data_source` (`toolgym/<env>`),
  `reward_model` (`{"style": "rule"}`: the env scores episodes, no reward model) and
  `extra_info` (`index`, and the same env/split/scenario/seed).
* `write_splits(env_name, out_dir, seed, splits)` writes `<out_dir>/<split>.parquet` for each
  split (default: train and eval) and returns the paths. GRPO's group is verl's
  `actor_rollout_ref.rollout.n` copies of one row: one scenario, one seed.

pyarrow is imported inside the writer; no verl import here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainers.data import scenario_seed

AGENT_NAME = "toolgym_env"  # the name trainers.verl_agent_loop registers with verl


def split_rows(
    env_name: str, split: str, seed: int = 0, env_kwargs: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One verl row per scenario of `split` (see the module docstring)."""
    import envs

    env = envs.make_raw(env_name, split=split, **(env_kwargs or {}))
    rows = []
    for index, scenario in enumerate(env.scenarios):
        episode_seed = scenario_seed(seed, scenario)
        start = env.begin(scenario, seed=episode_seed)
        where = {"env": env_name, "split": split, "scenario_id": scenario.id, "seed": episode_seed}
        rows.append(
            {
                "data_source": f"toolgym/{env_name}",
                **where,
                "agent_name": AGENT_NAME,
                "prompt": [{"role": m["role"], "content": m["content"]} for m in start.messages],
                "slices": list(start.slices),
                "reward_model": {"style": "rule", "ground_truth": ""},
                "extra_info": {"index": index, **where},
            }
        )
    return rows


def write_splits(
    env_name: str,
    out_dir: Path,
    seed: int = 0,
    splits: Sequence[str] = ("train", "eval"),
    env_kwargs: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """`<out_dir>/<split>.parquet` for each split; returns {split: path}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in splits:
        path = out_dir / f"{split}.parquet"
        pq.write_table(pa.Table.from_pylist(split_rows(env_name, split, seed, env_kwargs)), path)
        paths[split] = path
    return paths
