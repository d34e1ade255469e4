"""truncate_feats: the original's reference vectors, its random-call order, invariants.

Oracles: tiny_expected.pt['truncate_feats'] (made by the original), hand-derived windows that
replay Python's ``random`` in the documented order (docs/reference.md §2.7), properties.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from libs.datasets import truncate_feats


def _item(T: int, segments, C: int = 3):
    return {"video_id": "x", "feats": torch.arange(C * T, dtype=torch.float32).view(C, T),
            "segments": torch.tensor(segments, dtype=torch.float32),
            "labels": torch.arange(len(segments)), "fps": 30.0, "duration": 10.0,
            "feat_stride": 4, "feat_num_frames": 16}


def test_replays_the_reference_vectors(conformance_dir):
    inputs = {v["video_id"]: v for v in torch.load(conformance_dir / "tiny_inputs.pt")["videos"]}
    vectors = torch.load(conformance_dir / "tiny_expected.pt")["truncate_feats"]
    assert len(vectors) == 5
    for vec in vectors:
        random.seed(vec["python_random_seed"])
        out = truncate_feats(dict(inputs[vec["input_video_id"]]), vec["max_seq_len"],
                             vec["trunc_thresh"], vec["offset"], vec["crop_ratio"])
        assert torch.equal(out["feats"], vec["feats"])
        assert torch.equal(out["segments"], vec["segments"])
        assert torch.equal(out["labels"], vec["labels"])


def test_long_input_is_cut_at_the_first_drawn_window():
    # one segment over the whole video: every window keeps it, so trial 1 succeeds
    item = _item(10, [[0.0, 10.0]])
    random.seed(11)
    st = random.randint(0, 10 - 4)
    random.seed(11)
    out = truncate_feats(item, 4, 0.3, 0.0)
    assert torch.equal(out["feats"], item["feats"][:, st:st + 4])
    assert out["segments"].tolist() == [[0.0, 4.0]] and out["labels"].tolist() == [0]


def test_short_input_draws_the_crop_length_first():
    item = _item(10, [[0.0, 10.0]])
    random.seed(5)
    length = random.randint(5, 8)  # round(0.5 * 10) .. round(0.8 * 10)
    st = random.randint(0, 10 - length)
    random.seed(5)
    out = truncate_feats(item, 20, 0.3, 0.0, crop_ratio=[0.5, 0.8])
    assert out["feats"].shape == (3, length)
    assert torch.equal(out["feats"], item["feats"][:, st:st + length])


def test_short_input_without_crop_ratio_is_returned_as_is():
    item = _item(10, [[2.0, 4.0]])
    state = random.getstate()
    assert truncate_feats(item, 10, 0.5, 2.0) is item
    assert random.getstate() == state  # nothing drawn


def test_offset_widens_the_window_and_segments_are_window_relative():
    # window [st, st + 4] widened by offset 1 on both sides; the action [0, 3] lies before it
    item = _item(12, [[0.0, 3.0], [6.0, 20.0]])
    random.seed(0)
    out = truncate_feats(item, 4, 0.1, 1.0)
    st = int(torch.nonzero(item["feats"][0] == out["feats"][0, 0])[0])
    for (left, right), label in zip(out["segments"].tolist(), out["labels"].tolist()):
        seg = item["segments"][label].tolist()
        assert left == max(st - 1.0, seg[0]) - st and right == min(st + 5.0, seg[1]) - st


def test_invariants_and_the_input_is_untouched():
    rng = np.random.default_rng(0)
    for trial in range(30):
        T = int(rng.integers(50, 400))
        starts = rng.uniform(-2, T - 5, size=4)
        segs = torch.tensor(np.stack([starts, starts + rng.uniform(1, 40, size=4)], 1),
                            dtype=torch.float32)
        item = {"feats": torch.randn(3, T), "segments": segs, "labels": torch.arange(4)}
        random.seed(trial)
        out = truncate_feats(item, 100, 0.5, 2.0, [0.9, 1.0])
        n = out["feats"].shape[1]
        assert n == 100 if T > 100 else round(0.9 * T) <= n <= T
        if out is not item:
            assert len(out["segments"]) == len(out["labels"]) >= 1  # an action was kept
            assert (out["segments"][:, 0] >= -2.0).all()
            assert (out["segments"][:, 1] <= n + 2.0).all()
        assert torch.equal(item["segments"], segs)  # the input is never modified


@pytest.mark.parametrize("no_trunc", [False, True])
def test_no_kept_action_falls_back_to_the_last_window(no_trunc):
    # an action of 1 step can never keep trunc_thresh 2.0 (ratio <= 1): all trials fail
    item = _item(30, [[10.0, 11.0]])
    random.seed(3)
    draws = [random.randint(0, 20) for _ in range(200)]
    random.seed(3)
    out = truncate_feats(item, 10, 2.0, 0.0, no_trunc=no_trunc)
    assert torch.equal(out["feats"], item["feats"][:, draws[-1]:draws[-1] + 10])
    assert out["segments"].shape == (0, 2) and out["labels"].shape == (0,)
