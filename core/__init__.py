"""Shared records and the env registry: the bottom of the import graph."""
