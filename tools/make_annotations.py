#!/usr/bin/env python
"""Writes the annotation JSON of your own data set from a label table and a folder of videos.

    python tools/make_annotations.py LABELS.csv --videos DIR --out annotations.json
        [--classes FILE] [--split train=0.8 [--seed N]] [--unlabeled-subset NAME]

``LABELS.csv``: a header row naming ``video, start, end, label`` (and optionally ``subset``),
then one action per row, times in seconds. Durations and fps are read from the video files
(PyAV, ``libs.video.probe_video``). Label ids: the sorted label names, or the line order of
``--classes``. Subsets: the table's column, or ``--split`` (seeded), or all ``training``;
videos of DIR without a row go to ``--unlabeled-subset`` (default ``unlabeled``).
Every bad row is reported with its line number, all at once, and the exit code is 1; nothing
is dropped. The logic lives in ``libs/datasets/annotations_builder.py``; docs/own_videos.md.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.datasets.annotations_builder import (AnnotationTableError,  # noqa: E402
                                               build_annotations, parse_split, read_class_list)
from libs.utils.atomic import write_json_atomic  # noqa: E402


def default_probe(path: str):
    """The project's video probe (PyAV); imported when first needed."""
    try:
        from libs.video.probe import probe_video
    except ImportError as err:
        raise RuntimeError(f"reading videos needs libs.video.probe and PyAV (pip install "
                           f"'av>=18'): {err}") from None
    return probe_video(path)


def main(argv: Optional[Sequence[str]] = None, probe=default_probe) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table", help="CSV: video, start, end, label[, subset] (header row)")
    p.add_argument("--videos", required=True, help="folder of the video files")
    p.add_argument("--out", required=True, help="annotation JSON to write")
    p.add_argument("--classes", default=None,
                   help="class names, one per line (label id = line order)")
    p.add_argument("--split", default=None,
                   help="seeded split of the labelled videos, e.g. train=0.8 (rest: "
                        "validation) or train=0.7,val=0.15,test=0.15")
    p.add_argument("--seed", type=int, default=0, help="seed of --split (default 0)")
    p.add_argument("--unlabeled-subset", default="unlabeled",
                   help="subset of videos without rows (default 'unlabeled': in no split; "
                        "'test' makes them background-only evaluation videos)")
    args = p.parse_args(argv)
    try:
        classes = read_class_list(args.classes) if args.classes else None
        split = parse_split(args.split) if args.split else None
        data, notes = build_annotations(args.table, args.videos, probe, classes, split,
                                        args.seed, args.unlabeled_subset)
    except (AnnotationTableError, FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    write_json_atomic(data, args.out, indent=1)
    for note in notes:
        print(note)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
