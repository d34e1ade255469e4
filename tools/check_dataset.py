#!/usr/bin/env python
"""Check a data set against a config before training: ``python tools/check_dataset.py CONFIG``.

    python tools/check_dataset.py CONFIG [--split NAME ...] [--full-scan]

Reads the annotation JSON (docs/reference.md §2.3) and the feature files (§2.4) itself, the way
the config's dataset class would, and reports what would crash training or evaluation
(errors) and what would silently hurt it (warnings):

* config: ``load_config`` validation (unknown keys, ``max_seq_len`` not divisible by
  stride x window, §3.10);
* annotations: subsets vs ``train_split`` / ``val_split``; missing ``fps`` when
  ``default_fps`` is None; ``label_id`` outside ``[0, num_classes)``; the class count vs
  ``num_classes`` (thumos/ego4d: equal, epic: at most, anet: 1 or equal); and the data sets'
  own consistency rules (``libs/datasets/validation.py``, the loaders refuse / warn the same):
  malformed annotations, one label with two ids or one id with two labels, segments not
  longer than zero (errors), starting before 0 s, starting or ending after the duration
  (warnings);
* features: missing and extra files; files that cannot be read as numeric arrays (pickled
  objects are never unpickled); width vs ``input_dim``; (C, T) files stored transposed;
  zero length; NaN/inf (a sample of videos, all with ``--full-scan``); the length T vs the
  ``duration * fps / feat_stride`` the annotations imply (a wrong ``feat_stride`` shows as
  every video off by the same ratio);
* grid (§2.5, §3.10, §4.1): how many training videos are cropped to ``max_seq_len``, how
  inference pads long videos (multiples of ``max_div_factor``, bounded by the point buffer
  ``max_seq_len * max_buffer_len_factor``), and, in grid units, which pyramid level each action
  falls on (the first level whose regression range holds the centre point's target, half the
  action length), with the actions longer than the last range or shorter than one step;
* manifest: when the feature folder holds the ``manifest.json`` of tools/extract_features.py,
  its stride, clip length, fps, dimension and feature counts vs the config and durations.

Exit code 1 when there are errors, 0 otherwise. From Python, ``check_dataset(config_path)``
returns a :class:`Report` with ``errors`` / ``warnings`` lists of strings. The checks
themselves live in ``libs/datasets/checks/`` (one module a concern); this file runs them.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.core import ConfigError, load_config  # noqa: E402
from libs.datasets import read_annotation_json  # noqa: E402
from libs.datasets.checks import (NAN_SAMPLE, SHOW, Report, check_annotations,  # noqa: E402,F401
                                  check_features, check_grid)
from libs.utils.cli import run_main  # noqa: E402
from libs.video.manifest import check_folder_manifest  # noqa: E402

__all__ = ["Report", "check_dataset", "main"]


def _report_config(rep: Report, config_path: str, cfg: Dict[str, Any]) -> None:
    """The config section: what the checks read; the dataset keys that must be set."""
    sec, ds = "config", cfg["dataset"]
    rep.info(sec, f"{config_path}: dataset_name '{cfg['dataset_name']}', train_split "
             f"{list(cfg['train_split'])}, val_split {list(cfg['val_split'])}")
    rep.info(sec, f"input_dim {ds['input_dim']}, num_classes {ds['num_classes']}, feat_stride "
             f"{ds['feat_stride']}, num_frames {ds['num_frames']}, default_fps "
             f"{ds['default_fps']}, downsample_rate {ds['downsample_rate']}")
    for key in ("json_file", "feat_folder", "file_ext"):
        if ds.get(key) is None:
            rep.error(sec, f"dataset.{key} is not set")


def check_dataset(config_path: str, splits: Optional[Sequence[str]] = None,
                  full_scan: bool = False) -> Report:
    """Checks the data set a config points at (see the module docstring).

    Args:
        config_path: YAML config (as for train.py).
        splits: subsets to check (lower-case); default: ``train_split`` + ``val_split``.
        full_scan: scan every video for NaN/inf instead of a sample.

    Returns:
        The :class:`Report`; ``report.errors`` is empty when training can start.
    """
    rep = Report()
    try:
        cfg = load_config(config_path)
    except (ConfigError, FileNotFoundError) as err:
        rep.error("config", str(err))
        return rep
    _report_config(rep, config_path, cfg)
    if rep.errors:
        return rep
    try:
        database = read_annotation_json(cfg["dataset"]["json_file"])
    except (FileNotFoundError, ValueError) as err:
        rep.error("annotations", str(err))
        return rep
    if splits is None:
        splits = list(dict.fromkeys(list(cfg["train_split"]) + list(cfg["val_split"])))
    splits = [s.lower() for s in splits]
    videos = check_annotations(rep, cfg, database, splits)
    lengths = check_features(rep, cfg, database, videos, full_scan)
    check_grid(rep, cfg, videos, lengths)
    for problem in check_folder_manifest(cfg, database, lengths):
        rep.error("manifest", problem)
    return rep


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="config YAML (as for train.py)")
    p.add_argument("--split", nargs="+", default=None, metavar="NAME",
                   help="subsets to check (default: train_split + val_split)")
    p.add_argument("--full-scan", action="store_true",
                   help=f"scan every video for NaN/inf (default: {NAN_SAMPLE} sampled videos)")
    args = p.parse_args(argv)
    rep = check_dataset(args.config, args.split, full_scan=args.full_scan)
    print(rep.format())
    return 1 if rep.errors else 0


if __name__ == "__main__":
    sys.exit(run_main(main))
