"""Episode seeding, defined once: which reset seed an episode gets.

An episode is identified by the run's seed, the env, the scenario's content hash and its
epoch (the k-th sample of the same scenario). Evals, trainers and the audit all seed
episodes with `episode_seed`, so the same (run seed, env, scenario, epoch) is the same
episode everywhere, and renaming a scenario does not change it.
"""

from __future__ import annotations

import hashlib


def episode_seed(seed: int, env: str, content_hash: str, epoch: int = 0) -> int:
    """The reset seed of one episode: a hash of what identifies it, below 2**63."""
    digest = hashlib.sha256(f"{seed}|{env}|{content_hash}|{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
