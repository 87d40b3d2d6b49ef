"""Evaluation: metrics with confidence intervals, paired deltas, promotion rules, the gate."""
