"""Helpers shared by the test folders, importable as ``helpers`` (pyproject.toml puts tests/ on
pytest's ``pythonpath``): exact analytic scenes and view pairs, provenance render folders, tiny
training overrides and the fault suite's process helpers."""
