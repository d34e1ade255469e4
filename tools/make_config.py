#!/usr/bin/env python
"""Writes a commented, validated training config derived from your annotations and features.

    python tools/make_config.py --annotations annotations.json --features DIR \
        --out configs/my_data.yaml [--compare configs/thumos_i3d.yaml]
    python tools/make_config.py --annotations A.json --features DIR --out C.yaml \
        --feat-stride 4 --num-frames 16 --fps 30 --input-dim 2048      # no manifest

The feature grid (feat_stride, num_frames, fps, input_dim) and the per-video feature counts come
from DIR's manifest.json (tools/extract_features.py writes it); without one, from the four
flags (counts are then estimated from the durations). Every derived value (max_seq_len, the
pyramid, regression ranges, window, buffer factor, crops, thresholds) is written with a comment
saying why; docs/own_videos.md states the rules. The file is checked with load_config before
it is kept; ``--compare`` prints it side by side with another config. Logic:
libs/datasets/config_stats.py, config_builder.py, config_writer.py.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.core import ConfigError, load_config  # noqa: E402
from libs.utils.atomic import atomic_open  # noqa: E402
from libs.datasets import read_annotation_json  # noqa: E402
from libs.datasets.config_builder import derive_config  # noqa: E402
from libs.datasets.config_stats import FeatureGrid, collect_stats, default_splits  # noqa: E402
from libs.datasets.config_writer import compare_rows, format_compare, render_yaml  # noqa: E402

GRID_FLAGS = ("feat_stride", "num_frames", "fps", "input_dim")


def read_grid(args: argparse.Namespace) -> Tuple[FeatureGrid, Dict[str, int], str]:
    """(grid, features per video, where the grid came from): the manifest, else the flags."""
    flags = {k: getattr(args, k) for k in GRID_FLAGS}
    manifest_path = os.path.join(args.features, "manifest.json")
    if os.path.isfile(manifest_path):
        from libs.video.manifest import load_manifest  # needs nothing beyond the core install

        manifest = load_manifest(manifest_path)
        keys = manifest.config_keys()
        found = {"feat_stride": keys["feat_stride"], "num_frames": keys["num_frames"],
                 "fps": float(keys["default_fps"]), "input_dim": keys["input_dim"]}
        clash = [f"--{k.replace('_', '-')} {v} (manifest: {found[k]})"
                 for k, v in flags.items() if v is not None and float(v) != float(found[k])]
        if clash:
            raise ValueError(f"{manifest_path}: the flags disagree with the manifest: "
                             + ", ".join(clash))
        lengths = {vid: int(e["num_features"]) for vid, e in manifest.videos.items()}
        return FeatureGrid(**found), lengths, manifest_path
    missing = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is None]
    if missing:
        raise ValueError(f"no manifest.json in {args.features}: give {', '.join(missing)} "
                         "(how the features were made)")
    grid = FeatureGrid(int(flags["feat_stride"]), int(flags["num_frames"]), float(flags["fps"]),
                       int(flags["input_dim"]), args.file_ext)
    return grid, {}, "the command line"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--annotations", required=True, help="annotation JSON")
    p.add_argument("--features", required=True, help="feature folder (with manifest.json)")
    p.add_argument("--out", required=True, help="config YAML to write")
    p.add_argument("--feat-stride", dest="feat_stride", type=int, default=None)
    p.add_argument("--num-frames", dest="num_frames", type=int, default=None)
    p.add_argument("--fps", type=float, default=None)
    p.add_argument("--input-dim", dest="input_dim", type=int, default=None)
    p.add_argument("--file-ext", default=".npy", help="feature file extension (no manifest)")
    p.add_argument("--train-split", default=None, help="training subset (default: derived)")
    p.add_argument("--val-split", default=None, help="evaluation subset (default: derived)")
    p.add_argument("--mode", default="auto", choices=("auto", "per-video", "resize"),
                   help="video layout (default auto: resize when actions are long relative "
                        "to their videos, as ActivityNet)")
    p.add_argument("--compare", action="append", default=[],
                   help="print the derived values beside this config's (repeatable)")
    return p


def write_validated(text: str, path: str) -> None:
    """Writes ``text`` to ``path`` only if load_config accepts it (atomic: the temporary file
    of :func:`atomic_open` is validated before it replaces ``path``)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, "w") as f:
        f.write(text)
        f.flush()
        try:
            load_config(f.name)
        except ConfigError as err:
            raise ConfigError(f"the derived config does not validate (a bug; please report): "
                              f"{err}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        grid, lengths, source = read_grid(args)
        database = read_annotation_json(args.annotations)
        splits = None
        if args.train_split or args.val_split:
            train, val = default_splits(database)
            splits = ((args.train_split or train).lower(), (args.val_split or val).lower())
        stats = collect_stats(database, grid, lengths, splits, source=args.annotations)
        entries = derive_config(stats, grid, args.annotations, args.features, args.mode)
        header = [f"derived by tools/make_config.py from {os.path.basename(args.annotations)} "
                  f"and the feature grid of {source}",
                  f"(stride {grid.feat_stride}, {grid.num_frames} frames, {grid.fps:g} fps, "
                  f"{grid.input_dim} channels); each value's comment says why",
                  "(docs/own_videos.md). Check the data with tools/check_dataset.py."]
        write_validated(render_yaml(entries, header), args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out} ({stats.train_lengths.size} training / "
          f"{stats.eval_lengths.size} evaluation videos, {stats.action_steps.size} training "
          "actions)")
    for other in args.compare:
        print()
        print(format_compare(compare_rows(entries, load_config(other)), other))
    return 0


if __name__ == "__main__":
    sys.exit(main())
