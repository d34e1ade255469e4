"""The test suite (run pytest from the repository root; tests/conftest.py: shared fixtures)."""
