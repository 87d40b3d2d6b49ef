"""Policies: what plays the agent's side of an episode.

Every policy follows one batched contract (`policies.base`, defined in `core.policy`):
many `PolicyRequest`s in, one `PolicyResponse` each out. Scripted policies live in
`policies.scripted`; model-backed ones (Hugging Face, OpenAI-compatible HTTP) import their
heavy frameworks inside their own modules only. `policies.sft_export` turns expert
trajectories into chat-format SFT records.
"""
