"""Typed, sandboxed tools: schemas, call parsing, the per-episode sandbox and standard tools."""
