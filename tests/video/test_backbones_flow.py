"""Optical flow of the I3D flow stream: grey conversion, clipping / scaling, T fields per clip,
TV-L1 where OpenCV contrib imports, and the optional extra's error where it does not.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from libs.video import make_backbone
from libs.video.flow import TVL1Flow, clip_flow, clips_to_flow, to_gray_uint8


def _has_tvl1() -> bool:
    try:
        import cv2
        cv2.optflow.DualTVL1OpticalFlow_create()
    except (ImportError, AttributeError):
        return False
    return True


def test_grey_is_601_luma_rounded():
    clip = torch.zeros(3, 4, 1, 1)
    clip[0, 0] = 1.0                 # red   -> 0.299 * 255 = 76.2
    clip[1, 1] = 1.0                 # green -> 149.7
    clip[2, 2] = 1.0                 # blue  -> 29.1
    clip[:, 3] = 1.0                 # white -> 255
    assert to_gray_uint8(clip).reshape(-1).tolist() == [76, 150, 29, 255]


def test_clip_flow_orders_pairs_repeats_the_last_and_scales():
    """Field t comes from frames (t, t + 1); x, y clipped to [-20, 20] px, then / 20."""
    grey = np.stack([np.full((2, 3), v, dtype=np.uint8) for v in (0, 10, 30, 70)])

    def pair(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        step = float(b[0, 0]) - float(a[0, 0])            # 10, 20, 40
        return np.stack([np.full(a.shape, step), np.full(a.shape, -step / 4)], axis=-1)

    flow = clip_flow(grey, pair)
    assert flow.shape == (2, 4, 2, 3) and flow.dtype == np.float32
    assert flow[0, :, 0, 0].tolist() == [0.5, 1.0, 1.0, 1.0]          # 40 clipped to 20
    assert flow[1, :, 1, 2].tolist() == [-0.125, -0.25, -0.5, -0.5]   # last repeats the one before


def test_one_frame_clip_has_zero_flow():
    flow = clip_flow(np.zeros((1, 2, 2), dtype=np.uint8), lambda a, b: np.ones(a.shape + (2,)))
    assert flow.shape == (2, 1, 2, 2) and not flow.any()


def test_clips_to_flow_keeps_batch_device_and_dtype():
    rgb = torch.rand(2, 3, 3, 4, 5, dtype=torch.float64)
    flow = clips_to_flow(rgb, lambda a, b: np.full(a.shape + (2,), 4.0, dtype=np.float32))
    assert flow.shape == (2, 2, 3, 4, 5) and flow.dtype == torch.float64
    assert torch.allclose(flow, torch.full_like(flow, 0.2))


@pytest.mark.skipif(_has_tvl1(), reason="OpenCV contrib is installed here")
@pytest.mark.parametrize("name", ["i3d_flow", "i3d"])
def test_flow_stream_without_opencv_contrib_names_the_extra(name):
    with pytest.warns(UserWarning):
        model = make_backbone(name)
    with pytest.raises(ImportError, match=r"needs TV-L1 optical flow from OpenCV's contrib module "
                                          r"\(cv2\.optflow\).*pip install opencv-contrib-python-headless$"):
        model.clip_features(torch.rand(1, 3, 16, 224, 224))


def _moving_square(frames: int, size: int, step: int) -> torch.Tensor:
    clip = torch.zeros(1, 3, frames, size, size)
    for t in range(frames):
        x0 = 8 + step * t
        clip[0, :, t, 12:28, x0:x0 + 16] = 1.0
    return clip


@pytest.mark.skipif(not _has_tvl1(), reason="OpenCV contrib (cv2.optflow) is not installed")
def test_tvl1_sees_a_square_move_right():
    flow = clips_to_flow(_moving_square(4, 48, 2), TVL1Flow())
    inside = flow[0, :, :, 16:24, 14:20]                   # the square's inside, every field
    assert flow.shape == (1, 2, 4, 48, 48)
    assert abs(inside[0].mean().item() - 2 / 20) < 0.03    # x: 2 px per frame to the right
    assert abs(inside[1].mean().item()) < 0.03             # y: no vertical motion
    assert torch.equal(flow[:, :, 3], flow[:, :, 2])


@pytest.mark.skipif(not _has_tvl1(), reason="OpenCV contrib (cv2.optflow) is not installed")
def test_two_stream_is_rgb_then_flow_stream():
    with pytest.warns(UserWarning):
        model = make_backbone("i3d")
    rgb = _moving_square(16, 224, 3)
    with torch.inference_mode():
        both = model.clip_features(rgb)
        alone = model.rgb.clip_features(rgb)
        flow = model.flow.clip_features(rgb)
    assert both.shape == (1, 2048)
    assert torch.allclose(both[:, :1024], alone, atol=1e-5)
    assert torch.allclose(both[:, 1024:], flow, atol=1e-5)
