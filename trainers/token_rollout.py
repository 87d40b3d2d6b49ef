"""Token-level multi-turn rollouts: scenario → episode → trajectory, plus the tokens to train on.

Contract (independent of any RL framework; TRL and verl backends both read it):

* `TokenPolicy(model, tokenizer, sampling)` is a `core.policy.Policy` wrapping a causal LM.
  `act(requests)` renders each live episode with the tokenizer's chat template
  (`tools=` the env's JSON schemas), generates every episode's next turn in **one batched
  `generate` call** (left padding, KV cache, sampled or greedy per `Sampling`) and keeps,
  per episode (keyed by `request.metadata["episode"]`), an `EpisodeTokens` record:
  - `prompt_ids`: the rendered opening (system + user) with the assistant header;
  - `completion_ids`: every later token in order: the model's turns (`env_mask` 1) and
    the env/user/tool frames between them (`env_mask` 0): `<|im_end|>` (when the model
    did not write it), then e.g. `<|im_start|>user <tool_response>…<|im_end|>`
    `<|im_start|>assistant` with the template's newlines.
  Ids are concatenated turn by turn and never re-tokenized: a frame is the tail of the
  re-rendered conversation after the text the model produced, so the template must be
  prefix-preserving (checked; a `ValueError` says so otherwise).
* Budget: `Sampling.max_turn_tokens` caps one turn (a longer turn is cut and handed to the
  env as written; the env closes it). `Sampling.max_episode_tokens` caps the whole
  completion (model + env tokens). **At the cap** the record is cut where the budget ends
  and `capped` is set; the record then does not end with `<|im_end|>`, so TRL counts it in
  `completions/clipped_ratio` and `mask_truncated_completions` keeps it out of the loss.
  The policy says nothing more in that episode (empty replies, no generation), so the env
  ends it as it ends a silent agent (a final empty reply, or at the latest its turn limit);
  it is scored like any other episode.
* `play(make_env, policy, jobs)` drives the project's one loop (`envs.rollout.rollout`)
  and returns one `Episode` (trajectory + tokens) per job, **in job order**; finished
  episodes that the model ended cleanly get a closing `<|im_end|>` (env token) so every
  terminated record ends with EOS.
* Timings: `TokenPolicy.timings` accumulates seconds spent in `generate` and in
  templating/tokenizing; `play` adds the total wall time, so env time (parse, tools,
  rewards, user simulator) is the remainder.

torch and transformers are imported inside the functions that use them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.policy import PolicyRequest, PolicyResponse
from core.records import Trajectory
from core.sampling import Sampling
from envs.base import ToolEnv
from envs.rollout import EpisodeJob, rollout

EOS_TEXT = "<|im_end|>"


@dataclass(slots=True)
class EpisodeTokens:
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    capped: bool = False
    closed: bool = True  # the model's last turn ended with <|im_end|>
    rendered: str = ""  # the conversation text up to the end of the model's last turn

    def add(self, ids: Sequence[int], mask: int, budget: int) -> bool:
        """Append ids (all with `mask`), cut at `budget`; False when the budget ran out."""
        room = budget - len(self.completion_ids)
        kept = list(ids[: max(room, 0)])
        self.completion_ids.extend(kept)
        self.env_mask.extend([mask] * len(kept))
        if len(kept) < len(ids):
            self.capped = True
        return not self.capped


@dataclass(slots=True)
class Episode:
    trajectory: Trajectory
    tokens: EpisodeTokens


class TokenPolicy:
    """A batched HF causal-LM policy that records the token stream of each episode."""

    def __init__(self, model: Any, tokenizer: Any, sampling: Sampling, name: str = "") -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.sampling = sampling
        # the episode's token budget (None in `Sampling`: no cap beyond the turn caps)
        self.episode_budget = sampling.max_episode_tokens or sys.maxsize
        self.name = name or getattr(model.config, "_name_or_path", "") or "hf"
        self.records: dict[Any, EpisodeTokens] = {}
        self.timings = {"generate": 0.0, "tokenize": 0.0}
        self.calls = 0
        self.eos_id = tokenizer.convert_tokens_to_ids(EOS_TEXT)
        self.stop_ids = sorted({self.eos_id, tokenizer.pad_token_id, tokenizer.eos_token_id})

    def reset(self) -> None:
        self.records = {}
        self.timings = {"generate": 0.0, "tokenize": 0.0}

    def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        start = time.perf_counter()
        records = [self._record_for(request) for request in requests]
        live = [i for i, rec in enumerate(records) if not rec.capped]
        self.timings["tokenize"] += time.perf_counter() - start
        outputs = self._generate([records[i] for i in live]) if live else []
        texts = [""] * len(requests)
        t0 = time.perf_counter()
        for i, new_ids in zip(live, outputs, strict=True):
            texts[i] = self._append_turn(records[i], new_ids)
        self.timings["tokenize"] += time.perf_counter() - t0
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        return [
            PolicyResponse(text=text, latency_ms=elapsed_ms / max(len(requests), 1))
            for text in texts
        ]

    # ---- one episode's token record ----------------------------------------------------
    def _record_for(self, request: PolicyRequest) -> EpisodeTokens:
        key = request.metadata.get("episode", (request.scenario_id, request.seed))
        rendered = self._render(request)
        rec = self.records.get(key)
        if rec is None or request.turn == 0:
            rec = EpisodeTokens(prompt_ids=self._encode(rendered), rendered="")
            rec.rendered = rendered
            self.records[key] = rec
            return rec
        if rec.capped:
            return rec
        if not rendered.startswith(rec.rendered):
            raise ValueError(
                "the chat template is not prefix-preserving: re-rendering the conversation "
                "changed text the model already produced; use a template that keeps past "
                "turns verbatim (e.g. TRL's Qwen 2.5 template)"
            )
        frame = rendered[len(rec.rendered) :]
        frame = ("\n" if rec.closed else EOS_TEXT + "\n") + frame
        rec.add(self._encode(frame), 0, self.episode_budget)
        rec.rendered = rendered
        return rec

    def _append_turn(self, rec: EpisodeTokens, new_ids: list[int]) -> str:
        """Record one generated turn; return its text (what the env receives)."""
        cut = next((j for j, t in enumerate(new_ids) if t in self.stop_ids), None)
        if cut is not None:
            rec.closed = new_ids[cut] == self.eos_id
            new_ids = new_ids[: cut + 1] if rec.closed else new_ids[:cut]
        else:
            rec.closed = False
        allowed = self._allowed(rec)  # what this turn was allowed (generate cut it there)
        rec.add(new_ids, 1, self.episode_budget)
        if cut is None and len(new_ids) >= allowed and allowed < self.sampling.max_turn_tokens:
            rec.capped = True  # the episode budget, not the turn cap, stopped this turn
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True)
        rec.rendered += text + EOS_TEXT + "\n"
        return text

    def _allowed(self, rec: EpisodeTokens) -> int:
        room = self.episode_budget - len(rec.completion_ids)
        return max(0, min(self.sampling.max_turn_tokens, room))

    # ---- templating and generation ----------------------------------------------------
    def _render(self, request: PolicyRequest) -> str:
        return self.tokenizer.apply_chat_template(
            request.messages,
            tools=request.tools or None,
            add_generation_prompt=True,
            tokenize=False,
        )

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _generate(self, records: list[EpisodeTokens]) -> list[list[int]]:
        import torch

        t0 = time.perf_counter()
        allowed = [self._allowed(rec) for rec in records]
        contexts = [rec.prompt_ids + rec.completion_ids for rec in records]
        width = max(len(c) for c in contexts)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(c)) + c for c in contexts])
        mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts])
        kwargs = self._sampling_kwargs()
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):
                if self.sampling.seed is not None:
                    torch.manual_seed(self.sampling.seed + self.calls)
                out = self.model.generate(
                    input_ids=ids.to(self.model.device),
                    attention_mask=mask.to(self.model.device),
                    max_new_tokens=max(max(allowed), 1),
                    **kwargs,
                )
        finally:
            self.model.train(was_training)
        self.calls += 1
        new = out[:, width:].tolist()
        self.timings["generate"] += time.perf_counter() - t0
        return [row[:n] for row, n in zip(new, allowed, strict=True)]

    def _sampling_kwargs(self) -> dict[str, Any]:
        return {
            "use_cache": True,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.stop_ids,
            **self.sampling.generate_kwargs(),
        }


def play(
    make_env: Callable[[], ToolEnv],
    policy: TokenPolicy,
    jobs: Sequence[EpisodeJob],
    *,
    batch_size: int | None = None,
) -> tuple[list[Episode], dict[str, float]]:
    """Play `jobs` (each with a unique `metadata["episode"]`); episodes in job order."""
    policy.reset()
    start = time.perf_counter()
    order = {job.metadata["episode"]: i for i, job in enumerate(jobs)}
    if len(order) != len(jobs):
        raise ValueError("every job needs a unique metadata['episode'] key")
    done: list[Trajectory | None] = [None] * len(jobs)
    by_key = {(j.scenario.id, j.seed, j.epoch): j.metadata["episode"] for j in jobs}
    if len(by_key) != len(jobs):
        raise ValueError("jobs must differ in (scenario id, seed, epoch)")
    played = rollout(make_env, policy, jobs, batch_size=batch_size or len(jobs), infra_retries=1)
    for trajectory in played:
        key = by_key[(trajectory.scenario_id, trajectory.seed, trajectory.epoch)]
        done[order[key]] = trajectory
    episodes = []
    for job, trajectory in zip(jobs, done, strict=True):
        assert trajectory is not None
        tokens = policy.records.get(job.metadata["episode"]) or EpisodeTokens()
        if not tokens.capped and tokens.completion_ids and not tokens.closed:
            tokens.completion_ids.append(policy.eos_id)  # the env closed the turn
            tokens.env_mask.append(0)
        episodes.append(Episode(trajectory, tokens))
    timings = dict(policy.timings)
    timings["total"] = time.perf_counter() - start
    timings["env"] = max(0.0, timings["total"] - timings["generate"] - timings["tokenize"])
    return episodes, timings
