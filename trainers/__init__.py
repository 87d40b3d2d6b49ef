"""Trainers: GRPO and SFT backends (TRL, verl), the tiny default model and run manifests."""
