"""Synthetic copy pretraining: the induction heads a tiny model needs to copy ids.

Why: a tool call is only right when it carries the exact id the context gave (the session
id in the system prompt, a customer id from a tool result, the order number the customer
wrote). A freshly initialised 2-layer model trained only on the SFT demonstrations learns
the format (99% of non-digit tokens) but predicts the digits of those ids at chance: the
few digit tokens per episode never make it form an induction head. Small transformers do
form one on data where copying is the *only* way to lower the loss, so the build trains
the fresh model for a few hundred steps on such data, built from the real tokenizer's
ids, before SFT ever sees it:

* **primed previous-token head** (`prime_previous_token_head`): the slow half of an
  induction head, set by construction (without it 1000 steps did not form one; with it
  ~200 do).
* **repeat**: a random span of tokens, a few filler tokens, the same span again; the loss
  is on the repeat. The first half of the steps use filler spans only (the quickest way
  to the induction head), the second half mixes in digit-heavy spans and:
* **lookup**: random filler holding a few `key value` records (keys: real key texts such
  as `"customer_id": ` or `Chat session id: `, or a random token; values: random 3-6
  digit numbers), then one of the keys again; the loss is on its value only.

Measured (default build, 300 steps, ~85 s on one CPU thread): 87% on held-out copy data;
after the default SFT, 95% of the id digits in held-out tool calls are predicted right
(`trainers.copy_probe`), against 11% without this stage.

Everything is drawn from a `numpy` generator seeded by the build seed, and training runs
under the caller's torch seed, so the same seed gives the same weights (CPU, same thread
count). Kept cheap: sequences of 112 tokens, batch 32.
"""

from __future__ import annotations

from typing import Any

import numpy as np

KEY_TEXTS = (
    ("Chat session id: ", '{"session_id": '),
    ('{"customer_id": ', '"customer_id": '),
    ("order number ", '"order_id": '),
    ('"order_id": ', '"order_id": '),
    ("order #", '"order_id": '),
    ("Customer ", '"customer_id": '),
)
IGNORE = -100


class CopyData:
    """Seeded generator of copy sequences over one tokenizer's ids (see module docstring)."""

    def __init__(self, tokenizer: Any, seed: int, seq_len: int = 112) -> None:
        """Token ids of the digits, keys and filler, read from `tokenizer` (its own ids, so
        what is learnt here is what the chat's tokens mean)."""

        def ids(text: str) -> list[int]:
            """`text`'s ids, no special tokens added."""
            return tokenizer(text, add_special_tokens=False)["input_ids"]

        self.rng = np.random.default_rng(seed)
        self.seq_len = seq_len
        self.digits = [ids(str(d))[0] for d in range(10)]
        self.keys = [(ids(a), ids(b)) for a, b in KEY_TEXTS]
        special = set(tokenizer.all_special_ids) | set(self.digits)
        self.filler = np.array([i for i in range(len(tokenizer)) if i not in special])
        self.sep = ids("\n")

    def _number(self) -> list[int]:
        """A random 3-6 digit number (ids are tokenized one digit a token)."""
        n = int(self.rng.integers(3, 7))
        return [self.digits[int(d)] for d in self.rng.integers(0, 10, n)]

    def _noise(self, lo: int, hi: int) -> list[int]:
        """Between `lo` and `hi` - 1 random filler tokens (copying is the only signal)."""
        return self.rng.choice(self.filler, int(self.rng.integers(lo, hi))).tolist()

    def lookup(self) -> tuple[list[int], list[int]]:
        """Records `key value` in filler, then a key again: the loss is on its value."""
        n = int(self.rng.integers(2, 5))
        real = self.rng.permutation(len(self.keys))[:n]
        pairs = []
        for k in range(n):
            if self.rng.random() < 0.5:
                pairs.append(self.keys[int(real[k])])
            else:
                token = self._noise(1, 2)
                pairs.append((token, token))
        values = [self._number() for _ in range(n)]
        seq: list[int] = []
        for (src, _), value in zip(pairs, values, strict=True):
            seq += self._noise(0, 12) + src + value
        pick = int(self.rng.integers(0, n))
        seq += self._noise(0, 12) + self.sep + pairs[pick][1]
        labels = [IGNORE] * len(seq) + values[pick]
        return seq + values[pick], labels

    def repeat(self, digit_share: float) -> tuple[list[int], list[int]]:
        """A random span, a few filler tokens, the same span: the loss is on the repeat."""
        n = int(self.rng.integers(4, 20))
        span = [
            self.digits[int(self.rng.integers(0, 10))]
            if self.rng.random() < digit_share
            else int(self.rng.choice(self.filler))
            for _ in range(n)
        ]
        gap = self._noise(0, 12)
        return span + gap + span, [IGNORE] * (n + len(gap)) + span

    def sample(self, mixed: bool) -> tuple[list[int], list[int]]:
        """One sequence of `seq_len` tokens: repeats of filler spans (the quickest way to an
        induction head) or, `mixed`, also digit-heavy repeats and key lookups."""
        ids: list[int] = []
        labels: list[int] = []
        while len(ids) < self.seq_len:
            if not mixed:
                part = self.repeat(0.0)
            elif self.rng.random() < 0.5:
                part = self.lookup()
            else:
                part = self.repeat(0.5)
            ids += part[0]
            labels += part[1]
        return ids[: self.seq_len], labels[: self.seq_len]

    def batch(self, size: int, mixed: bool = True) -> tuple[Any, Any]:
        """`size` sequences as (input_ids, labels) tensors."""
        import torch

        rows = [self.sample(mixed) for _ in range(size)]
        return (
            torch.tensor([r[0] for r in rows]),
            torch.tensor([r[1] for r in rows]),
        )


def prime_previous_token_head(model: Any, scale: float = 80.0) -> None:
    """Make layer 0's first attention head attend to the previous token, by construction.

    Why: an induction head needs a previous-token head below it, and that head is the slow
    part to learn (on 2 CPU cores, 1000 steps of copy data were not enough without it;
    ~200 are with it). With the head's query and key weights zeroed, its (Qwen2) biases
    alone set the scores, which under RoPE then depend only on the distance d between
    query and key: sum_m scale * cos(theta_m * (d - 1)), highest at d = 1 by a margin of
    ~0.7 * scale / sqrt(head_dim) logits. Its value and output weights stay random: copy
    training learns what to carry. (With grouped-query attention the key is shared with
    the other query heads of its group; they keep their own queries.)"""
    import torch

    att = model.model.layers[0].self_attn
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    theta = model.config.rope_parameters.get("rope_theta", 10000.0)
    freqs = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    a = scale**0.5
    with torch.no_grad():
        att.q_proj.weight[:head_dim] = 0.0
        att.k_proj.weight[:head_dim] = 0.0
        att.q_proj.bias[:head_dim] = torch.cat([a * torch.cos(freqs), -a * torch.sin(freqs)])
        att.k_proj.bias[:head_dim] = torch.cat([a * torch.ones_like(freqs), 0 * freqs])


def copy_pretrain(
    model: Any,
    tokenizer: Any,
    *,
    steps: int,
    seed: int,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
) -> list[float]:
    """Train `model` in place on `steps` batches of copy data; returns the losses."""
    import torch

    if steps <= 0:
        return []
    data = CopyData(tokenizer, seed)
    prime_previous_token_head(model)
    optim = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.0)
    model.train()
    losses = []
    for step in range(steps):  # first filler repeats only (curriculum), then the mix
        ids, labels = data.batch(batch_size, mixed=step >= steps // 2)
        loss = model(input_ids=ids, labels=labels).loss
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def copy_accuracy(
    model: Any, tokenizer: Any, *, seed: int = 12345, n: int = 64, mixed: bool = True
) -> float:
    """Greedy accuracy on the labelled tokens of `n` fresh copy sequences (a quick probe of
    whether the model copies at all; `trainers.copy_probe` measures the real ids)."""
    import torch

    ids, labels = CopyData(tokenizer, seed).batch(n, mixed=mixed)
    with torch.no_grad():
        pred = model(input_ids=ids).logits.argmax(-1)[:, :-1]
    mask = labels[:, 1:] != IGNORE
    return float((pred[mask] == labels[:, 1:][mask]).float().mean())
