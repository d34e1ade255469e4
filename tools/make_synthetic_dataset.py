#!/usr/bin/env python
"""Writes a synthetic action-localization data set in the original on-disk layout.

The output is what every dataset class reads (docs/reference.md §2.3, §2.4): an ActivityNet-style
annotation JSON (``<out>/annotations/<name>.json``) plus one (T, C) float32 feature file per
video, so any dataset config can point at it. Deterministic for a seed.

Two modes:

* fully synthetic (default): ``--videos`` videos of ``--min-len``..``--max-len`` feature steps
  with 1..``--max-actions`` actions (``--min-action-len``..``--max-action-len`` steps) of
  ``--classes`` classes each; the last ``--test-fraction`` of the videos form the test subset.
  Subsets are named like THUMOS14's (``Validation`` for training, ``Test``), see
  ``--train-subset`` / ``--test-subset``; every class occurs in the training subset.
* ``--from-json FILE``: features for every video of an existing annotation file (e.g. the real
  THUMOS14 one, or a file written by tools/convert_annotations.py), with
  ``T = round(duration * fps / feat_stride)`` steps like real features (``fps``: ``--fps`` when
  given, as a config's ``default_fps``; else the video's own) and the file's actions placed at
  their annotated times. The annotation file is copied unchanged, or restricted to
  ``--subsets`` / the first ``--max-videos`` videos.

Signal model (per video, vectorised NumPy): each class has a random prototype direction of
norm ``0.5 * sqrt(dim)`` (per-channel amplitude ~0.5). Inside an action the prototype is added
with an envelope whose sigmoid ramps have a width of ``--ramp`` steps (soft boundaries) and a
random strength in [0.7, 1.3]. Everything is buried in i.i.d. Gaussian noise of std ``--noise``
(the difficulty knob; ``--difficulty`` is an alias) plus a slowly drifting background, and
``--distractors`` short bursts of a random class prototype at half strength are placed anywhere
in each video (false-positive bait). A small model learns to localise the actions well above
chance but not perfectly; raise ``--noise`` (or ``--ramp``, ``--distractors``) to make it harder.

Seconds and grid steps follow the datasets' convention (docs/reference.md §2.5): feature ``i`` is
centred at frame ``i * feat_stride + num_frames / 2``.

Formats (``--format``): ``npy`` (one ``<prefix><id>.npy`` per video in ``features/``;
thumos/anet/ego4d), ``npz`` (array ``feats``; epic), ``h5`` (one ``features.hdf5``, dataset
``<prefix><id>``; anet), ``ego4d`` (the channels split over ``--ego4d-splits`` folders
``features_<i>/``, one ``.npy`` per video in each; point ``feat_folder`` at the list and
``input_dim`` at their sum, or the list for multi-input projection).

The generator lives in libs/datasets/synthetic.py (``make_synthetic_dataset``,
``synthesise_features``); this file is its command line.

Examples:
    python tools/make_synthetic_dataset.py data/synthetic --videos 120 --classes 5 --dim 64
    python tools/make_synthetic_dataset.py data/thumos_syn --dim 2048 \
        --from-json ../shared/data/thumos14/thumos14.json
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.datasets.synthetic import (FORMATS, make_synthetic_dataset,  # noqa: E402,F401
                                     synthesise_features)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("out_dir", help="output folder (annotations/ and features/ are created)")
    p.add_argument("--videos", type=int, default=100, help="number of videos (synthetic mode)")
    p.add_argument("--classes", type=int, default=5, help="number of classes")
    p.add_argument("--dim", type=int, default=64, help="feature channels")
    p.add_argument("--min-len", type=int, default=200, help="shortest video (feature steps)")
    p.add_argument("--max-len", type=int, default=800, help="longest video (feature steps)")
    p.add_argument("--max-actions", type=int, default=4, help="most actions per video")
    p.add_argument("--min-action-len", type=float, default=4.0, help="grid steps")
    p.add_argument("--max-action-len", type=float, default=60.0, help="grid steps")
    p.add_argument("--overlap", type=float, default=0.1,
                   help="probability of accepting an overlapping action")
    p.add_argument("--noise", "--difficulty", dest="noise", type=float, default=1.0,
                   help="std of the Gaussian noise (class signal ~0.5 per channel)")
    p.add_argument("--ramp", type=float, default=1.5, help="soft-boundary width (steps)")
    p.add_argument("--distractors", type=int, default=1, help="false-positive bursts / video")
    p.add_argument("--fps", type=float, default=None,
                   help="synthetic: fps of the videos (default 30); --from-json: overrides "
                        "the videos' fps, like a config's default_fps")
    p.add_argument("--feat-stride", type=float, default=4)
    p.add_argument("--num-frames", type=float, default=16)
    p.add_argument("--test-fraction", type=float, default=0.3)
    p.add_argument("--train-subset", default="Validation")
    p.add_argument("--test-subset", default="Test")
    p.add_argument("--format", default="npy", choices=FORMATS)
    p.add_argument("--prefix", default="", help="feature file prefix (e.g. v_ for anet)")
    p.add_argument("--ego4d-splits", type=int, default=2, help="folders for --format ego4d")
    p.add_argument("--from-json", default=None,
                   help="synthesise features for every video of this annotation file")
    p.add_argument("--subsets", nargs="+", default=None,
                   help="--from-json: keep only these subsets")
    p.add_argument("--max-videos", type=int, default=None,
                   help="--from-json: keep only the first N videos")
    p.add_argument("--json-name", default="synthetic.json")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    summary = make_synthetic_dataset(
        args.out_dir, num_videos=args.videos, num_classes=args.classes, dim=args.dim,
        min_len=args.min_len, max_len=args.max_len, max_actions=args.max_actions,
        min_action_len=args.min_action_len, max_action_len=args.max_action_len,
        overlap=args.overlap, noise=args.noise, ramp=args.ramp, distractors=args.distractors,
        fps=args.fps, feat_stride=args.feat_stride, num_frames=args.num_frames,
        test_fraction=args.test_fraction, train_subset=args.train_subset,
        test_subset=args.test_subset, fmt=args.format, prefix=args.prefix,
        ego4d_splits=args.ego4d_splits, from_json=args.from_json, subsets=args.subsets,
        max_videos=args.max_videos, seed=args.seed, json_name=args.json_name)
    print(f"wrote {summary['num_videos']} videos: {summary['json_file']}, features in "
          f"{summary['feat_folder']} (input_dim {summary['input_dim']})")
    return 0


if __name__ == "__main__":
    from libs.utils.cli import run_main  # noqa: E402  (one-line errors, --debug)
    sys.exit(run_main(main))
