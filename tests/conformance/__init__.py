"""Conformance tests: the model against tensors the original produced (tests/assets/conformance)."""
