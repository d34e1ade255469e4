"""Point generator literal tables (docs/reference.md §3.8)."""
from __future__ import annotations

import pytest
import torch

from libs.modeling import make_generator


def test_point_tables_for_a_small_case():
    gen = make_generator("point", max_seq_len=8.0, fpn_strides=[1, 2, 4],
                         regression_range=[(0, 4), (4, 8), (8, 10000)])
    feats = [torch.zeros(1, 3, 8), torch.zeros(1, 3, 4), torch.zeros(1, 3, 2)]
    p0, p1, p2 = gen(feats)
    assert p0.dtype == torch.float32
    assert p0.tolist() == [[float(t), 0.0, 4.0, 1.0] for t in range(8)]
    assert p1.tolist() == [[0, 4, 8, 2], [2, 4, 8, 2], [4, 4, 8, 2], [6, 4, 8, 2]]
    assert p2.tolist() == [[0, 8, 10000, 4], [4, 8, 10000, 4]]
    # shorter levels take a prefix of the buffer
    short = gen([torch.zeros(1, 3, 3), torch.zeros(1, 3, 2), torch.zeros(1, 3, 1)])
    assert [p.shape[0] for p in short] == [3, 2, 1]
    assert torch.equal(short[1], p1[:2])


def test_point_buffers_are_non_persistent_and_bounded():
    gen = make_generator("point", max_seq_len=8.0, fpn_strides=[1, 2],
                         regression_range=[(0, 4), (4, 8)])
    assert len(gen.state_dict()) == 0
    assert [name for name, _ in gen.named_buffers()] == ["buffer_points.0", "buffer_points.1"]
    with pytest.raises(AssertionError, match="max buffer length"):
        gen([torch.zeros(1, 1, 9), torch.zeros(1, 1, 4)])
