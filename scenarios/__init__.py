"""Scenarios as data: the schema, YAML loading with precise errors, seeded generators."""
