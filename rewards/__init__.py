"""Decomposed rewards: small pure named functions combined by a weighted spec."""
