"""Tests of libs/video and tools/extract_features.py: decoding, clip grid, backbones, manifest."""
