"""Fixtures of the video tests: the shipped I3D and R(2+1)D / R3D reference files (loaded once
per module; tests/assets/spec)."""
from __future__ import annotations

import pytest

from tests.video._deterministic import load_reference


@pytest.fixture(scope="module")
def i3d_ref():
    return load_reference("i3d/i3d_reference.pt")


@pytest.fixture(scope="module")
def resnet_ref():
    return load_reference("video_backbones/video_backbones_reference.pt")
