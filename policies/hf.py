"""policy=hf: a local Hugging Face causal LM, by path (`python -m evals.run policy=hf model=DIR`).

Contract
--------
* `HFPolicy(path, sampling=Sampling(), seed=0, device=None)` (`core.sampling`)
  loads the tokenizer and model with `local_files_only=True` (nothing is downloaded) on
  CUDA when available, else CPU, with the dtype stored in the folder.
* `act(requests)` renders each request with `tokenizer.apply_chat_template(messages,
  tools=request.tools, add_generation_prompt=True)` (OpenAI-style `tool_calls` arguments
  are turned into dicts first, as HF templates expect), left-pads the batch and generates
  once for the whole batch, with `Sampling.generate_kwargs()`: `temperature == 0` is
  greedy; otherwise it samples with `temperature`, `top_p` and `top_k` (0: no cut).
* **Determinism**: each batch runs under `torch.random.fork_rng`, seeded by
  `batch_seed(seed, requests)` (the policy seed and every request's episode seed, scenario
  and turn), so the same episodes at the same turns draw the same tokens and the global
  RNG is left untouched.
* **Long prompts** are truncated from the left by whole messages: the system message is
  kept, the oldest other messages are dropped (and tool results orphaned by the cut with
  them) until the prompt fits in `context_length - max_turn_tokens`. When the system
  message and the last message alone do not fit, `ContextOverflowError` is raised (the
  rollout records the batch's episodes as policy errors).
* `PolicyResponse.text` is the completion up to and including the first stop token,
  decoded without special tokens except the tool-call, think and answer tags (kept even
  when a tokenizer marks them special). `prompt_tokens` counts the unpadded prompt,
  `completion_tokens` the generated tokens up to the stop token, and `latency_ms` the wall
  time of the batch's `generate` call (every request in the batch waited that long), so
  timing fields, and only they, differ between two runs.

torch and transformers are imported inside the methods that need them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.policy import PolicyRequest, PolicyResponse
from core.sampling import Sampling

KEEP_TAGS = ("<tool_call>", "</tool_call>", "<think>", "</think>", "<answer>", "</answer>")
_UNBOUNDED = 1_000_000  # tokenizers without a limit report a huge model_max_length


class ContextOverflowError(ValueError):
    """A prompt cannot fit the model's context even after dropping old messages."""


def batch_seed(seed: int, requests: Sequence[PolicyRequest]) -> int:
    """The sampling seed of one batch: a hash of the policy seed and the requests."""
    digest = hashlib.sha256(str(seed).encode())
    for request in requests:
        digest.update(
            f"|{request.env_id}:{request.scenario_id}:{request.seed}:{request.turn}".encode()
        )
    return int.from_bytes(digest.digest()[:8], "big") >> 1


def template_message(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-style message as HF chat templates want it (tool-call arguments as dicts)."""
    calls = message.get("tool_calls")
    if not calls:
        return message
    converted = []
    for call in calls:
        function = dict(call.get("function", {}))
        if isinstance(function.get("arguments"), str):
            with contextlib.suppress(ValueError):  # unparseable: keep what the model wrote
                function["arguments"] = json.loads(function["arguments"])
        converted.append({**call, "function": function})
    return {**message, "tool_calls": converted}


class HFPolicy:
    def __init__(
        self,
        model_path: str | Path,
        *,
        sampling: Sampling | None = None,
        seed: int = 0,
        device: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model_path)
        self.name = f"hf:{path.name}"
        self.sampling = sampling or Sampling()
        self.max_new_tokens, self.seed = self.sampling.max_turn_tokens, seed
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype="auto")
        self.model = model.to(self.device).eval()
        self.context_length = self._context_length()
        if self.context_length <= self.max_new_tokens:
            raise ContextOverflowError(
                f"sampling.max_turn_tokens={self.max_new_tokens} leaves no room for a prompt in "
                f"{self.context_length} tokens of context"
            )
        self.stop_ids = self._stop_ids()
        keep = {self.tokenizer.convert_tokens_to_ids(tag) for tag in KEEP_TAGS}
        self.drop_ids = set(self.tokenizer.all_special_ids) - keep

    def act(self, requests: Sequence[PolicyRequest]) -> list[PolicyResponse]:
        import torch

        prompts = [self.encode(request) for request in requests]
        batch = self.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
        batch = {key: value.to(self.device) for key, value in batch.items()}
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        start = time.perf_counter()
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(batch_seed(self.seed, requests))
            output = self.model.generate(**batch, **self._generation_kwargs())
        latency_ms = (time.perf_counter() - start) * 1000.0
        width = batch["input_ids"].shape[1]
        return [
            self._response(row[width:].tolist(), len(prompt), latency_ms)
            for row, prompt in zip(output, prompts, strict=True)
        ]

    def encode(self, request: PolicyRequest) -> list[int]:
        """Prompt ids of one request, truncated from the left by whole messages."""
        messages = [template_message(m) for m in request.messages]
        head = messages[:1] if messages and messages[0].get("role") == "system" else []
        body = messages[len(head) :]
        budget = self.context_length - self.max_new_tokens
        while True:
            ids = self._render(head + body, request.tools)
            if len(ids) <= budget:
                return ids
            if len(body) <= 1:
                raise ContextOverflowError(
                    f"{request.scenario_id} turn {request.turn}: the system message and the "
                    f"last message take {len(ids)} tokens; the model has {budget} for a prompt "
                    f"({self.context_length} context - {self.max_new_tokens} max_turn_tokens)"
                )
            body = body[1:]
            while len(body) > 1 and body[0].get("role") == "tool":
                body = body[1:]

    def _render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            messages, tools=tools or None, add_generation_prompt=True, tokenize=False
        )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _generation_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": sorted(self.stop_ids),
        }
        return {**kwargs, **self.sampling.generate_kwargs()}

    def _response(self, ids: list[int], prompt_tokens: int, latency_ms: float) -> PolicyResponse:
        cut = next((i + 1 for i, token in enumerate(ids) if token in self.stop_ids), len(ids))
        kept = [token for token in ids[:cut] if token not in self.drop_ids]
        text = self.tokenizer.decode(kept, skip_special_tokens=False)
        return PolicyResponse(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=cut,
            latency_ms=latency_ms,
        )

    def _context_length(self) -> int:
        limits = [getattr(self.model.config, "max_position_embeddings", None)]
        limits.append(getattr(self.tokenizer, "model_max_length", None))
        usable = [int(n) for n in limits if isinstance(n, int) and 0 < n < _UNBOUNDED]
        if not usable:
            raise ContextOverflowError("cannot tell the model's context length from its config")
        return min(usable)

    def _stop_ids(self) -> set[int]:
        stops = self.model.generation_config.eos_token_id
        found = set(stops if isinstance(stops, list) else [stops] if stops is not None else [])
        if self.tokenizer.eos_token_id is not None:
            found.add(self.tokenizer.eos_token_id)
        if not found:
            raise ValueError(f"{self.name}: the model and tokenizer define no eos token")
        return found
