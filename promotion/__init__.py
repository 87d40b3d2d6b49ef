"""Promotion rules shipped with the built-in envs (package data: `promotion:<env>.rules`)."""
