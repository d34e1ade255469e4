"""Tests of libs/core: config schema, loading, validation, round trip."""
