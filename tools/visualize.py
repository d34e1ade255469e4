#!/usr/bin/env python
"""Draws detections against the ground truth: one PNG timeline per video.

    python tools/visualize.py RESULTS [--config CONFIG | --gt JSON] [--split NAME]
        [--videos ID ... | --num-videos 10] [--topk 3] [--min-score 0.0] [--out-dir vis]

(``--results RESULTS`` may be given instead of the positional argument.)

Needs matplotlib, an optional extra: ``pip install matplotlib`` (or ``pip install -e .[vis]``).

``RESULTS`` is either

* an ``eval_results.pkl`` written by ``eval.py --saveonly`` (docs/reference.md §7.8), read with
  the restricted unpickler (plain containers and NumPy arrays only; anything else is refused,
  so the file cannot run code): a pickled dict ``{'video-id': list of str (one per
  detection), 't-start': float32 array (seconds), 't-end': float32 array, 'label': int64
  array (class ids), 'score': float32 array}``; or
* an inference JSON written by ``tools/infer.py``: a list with one entry per video,
  ``{"video_id": str, "fps": float (optional), "duration": float seconds (optional),
  "detections": [{"start": s, "end": s, "label_id": int, "label": str, "score": float},
  ...]}``, detections sorted by score, highest first.

The ground truth (optional) comes from an ActivityNet-style annotation JSON (§2.3): ``--gt``,
or the ``dataset.json_file`` of ``--config`` (paths relative to the current folder, as for
train.py). Only videos of ``--split`` (default: the config's ``val_split``; with ``--gt``:
every subset) are candidates, plus the videos of the results; ``--videos`` picks some by id,
otherwise the first ``--num-videos`` (ground-truth order, then result-only videos) are drawn.
Class names come from the infer
JSON, else from the annotation JSON's ``label`` / ``label_id`` pairs, else ``class <id>``.
For a class-agnostic ActivityNet config (``num_classes: 1``) every ground-truth action is
shown as class 0, as the data set trains it.

Per video the figure has, for every class that has a ground-truth action or a drawn
detection, a ground-truth row (solid bars) and a detection row (the ``--topk`` highest-scoring
detections of that class with score >= ``--min-score``; bar opacity grows with the score and
the score is written on the bar, or next to a narrow one). Overlapping bars of one row are
spread over extra lanes. Colours are fixed per class id; a legend names the classes drawn.
The time axis is in seconds, up to the video duration (from the annotations or the infer
JSON; otherwise the last segment end).

From Python: ``visualize(results_path, gt_json=..., out_dir=...)`` returns the PNG paths.
Reading the inputs and laying out the rows (no matplotlib) live in libs/evaluation/timeline.py;
this file draws.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.evaluation.timeline import (Detection, Row, assign_lanes,  # noqa: E402,F401
                                      group_results, load_detections, load_ground_truth,
                                      prepare_videos, timeline_rows, top_per_class)

__all__ = ["MissingMatplotlib", "group_results", "load_detections", "load_ground_truth",
           "top_per_class", "prepare_videos", "assign_lanes", "plot_video", "visualize", "main"]

INSTALL_HINT = ("tools/visualize.py needs matplotlib, an optional extra. Install it with\n"
                "    pip install matplotlib\n"
                "(or `pip install -e .[vis]` from the repository root), then run it again.")

class MissingMatplotlib(ImportError):
    """matplotlib is not installed; the message says how to install it."""


def _pyplot():
    """Imports matplotlib with a file-only backend (no display needed)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise MissingMatplotlib(INSTALL_HINT) from err
    return plt


def _safe_name(video_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", video_id) or "video"


def _class_color(plt, label_id: int):
    # tab20 holds 10 hues as (dark, light) pairs: classes 0-9 take the dark shades and 10-19
    # the light ones, so neighbouring ids differ in hue; fixed per class across figures
    c = label_id % 20
    return plt.get_cmap("tab20")((2 * c) % 20 + c // 10)


def _draw_bars(plt, ax, rows: Sequence[Row], t_max: float) -> None:
    """The bars of every row: ground truth opaque with a dark edge, detections with an opacity
    growing with the score and the score written on the bar (or next to a narrow one)."""
    for y, (_, c, items) in enumerate(rows):
        color = _class_color(plt, c)
        for start, end, score in items:
            if score is None:  # ground truth: opaque with a dark edge
                ax.barh(y, end - start, left=start, height=0.7, color=color,
                        edgecolor="black", linewidth=0.8)
                continue
            ax.barh(y, max(end - start, 1e-9), left=start, height=0.7, color=color,
                    alpha=0.3 + 0.7 * min(max(score, 0.0), 1.0), edgecolor=color,
                    linewidth=0.8)
            if end - start >= 0.04 * t_max:  # wide enough: score on the bar
                ax.text(start + (end - start) / 2, y, f"{score:.2f}", ha="center",
                        va="center", fontsize=7, color="black", clip_on=True)
            else:  # next to it
                ax.text(end + 0.003 * t_max, y, f"{score:.2f}", ha="left",
                        va="center", fontsize=7, color="black", clip_on=True)


def _draw_frame(plt, ax, rows: Sequence[Row], classes: Sequence[int], names: Dict[int, str],
                t_max: float) -> None:
    """Class separators, the legend, the row labels and the time axis."""
    for y in range(1, len(rows)):
        if rows[y][1] != rows[y - 1][1]:
            ax.axhline(y - 0.5, color="0.6", linewidth=0.6)
    if classes:  # one legend entry per class drawn, in class-id order
        from matplotlib.patches import Patch
        handles = [Patch(facecolor=_class_color(plt, c), edgecolor="black", linewidth=0.5,
                         label=f"{c}: {names.get(c, f'class {c}')}") for c in classes]
        ax.legend(handles=handles, title="classes", loc="upper left",
                  bbox_to_anchor=(1.005, 1.0), fontsize=8, title_fontsize=8, frameon=False)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([r[0] for r in rows], fontsize=8)
    ax.set_ylim(len(rows) - 0.5, -0.5)  # first class on top
    ax.set_xlim(0, t_max)
    ax.set_xlabel("time (s)")
    ax.grid(axis="x", color="0.9", linewidth=0.6)
    ax.set_axisbelow(True)


def plot_video(video_id: str, gt_actions: Sequence[Tuple[float, float, int]],
               dets: Sequence[Detection], names: Dict[int, str], duration: Optional[float],
               out_path: str, title_note: str = "", num_detections: Optional[int] = None
               ) -> str:
    """Draws one video's timeline (module docstring) and saves it as a PNG.

    Args:
        video_id: shown in the title.
        gt_actions: ``(start, end, label_id)`` in seconds.
        dets: the detections to draw (already selected), seconds.
        names: class id -> name.
        duration: seconds; ``None`` uses the last segment end.
        out_path: PNG file to write.
        title_note: appended to the title (e.g. the selection rule).
        num_detections: all detections of the video before the selection (for the title).

    Returns:
        ``out_path``.
    """
    plt = _pyplot()
    classes, rows = timeline_rows(gt_actions, dets, names)
    ends = [a[1] for a in gt_actions] + [d["end"] for d in dets]
    t_max = duration if duration else (max(ends) if ends else 1.0)
    fig, ax = plt.subplots(figsize=(14, 1.2 + 0.32 * max(len(rows), 1)))
    _draw_bars(plt, ax, rows, t_max)
    _draw_frame(plt, ax, rows, classes, names, t_max)
    dur = f"{duration:.1f} s" if duration else "duration unknown"
    shown = (f"{len(dets)} of {num_detections} detections shown" if num_detections is not None
             else f"{len(dets)} detections")
    ax.set_title(f"{video_id}  ({dur}; {len(gt_actions)} GT actions; {shown}{title_note})",
                 fontsize=10)
    if not rows:
        ax.text(0.5, 0.5, "no ground truth and no detection", ha="center", va="center",
                transform=ax.transAxes)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    fig.savefig(out_path, dpi=110, bbox_inches="tight")  # keeps the outside legend
    plt.close(fig)
    return out_path


# ---------------------------------------------------------------------------------------------
# driver


def visualize(results_path: str, gt_json: Optional[str] = None, config: Optional[str] = None,
              split: Optional[Sequence[str]] = None, videos: Optional[Sequence[str]] = None,
              num_videos: int = 10, topk: int = 3, min_score: float = 0.0,
              out_dir: str = "vis", log=print) -> List[str]:
    """Writes one PNG per video to ``out_dir`` (module docstring) and returns their paths.

    Args:
        results_path: ``eval_results.pkl`` or infer JSON.
        gt_json: annotation JSON with the ground truth (overrides ``config``).
        config: a config whose ``dataset.json_file`` holds the ground truth.
        split: subsets of the ground truth to show (default: config ``val_split``, or all).
        videos: only these video ids.
        num_videos: without ``videos``, how many videos (``prepare_videos``); ``<= 0``: all.
        topk: detections per class and video; ``<= 0`` draws all.
        min_score: detections below this score are not drawn.
        out_dir: output folder (created).
        log: progress messages.

    Raises:
        MissingMatplotlib: matplotlib is not installed (raised before any file is read).
        FileNotFoundError, ValueError: unreadable inputs; an unknown ``videos`` id.
    """
    _pyplot()  # fail fast, before reading large inputs
    dets, durations = load_detections(results_path)
    gt: Dict[str, Dict[str, Any]] = {}
    names: Dict[int, str] = {}
    if config is not None and gt_json is None:
        from libs.core import load_config  # only needed with --config
        cfg = load_config(config)
        gt_json = cfg["dataset"]["json_file"]
        split = list(cfg["val_split"]) if split is None else split
        agnostic = cfg["dataset_name"] == "anet" and cfg["dataset"]["num_classes"] == 1
    else:
        agnostic = False
    if gt_json is not None:
        gt, names = load_ground_truth(gt_json, split, class_agnostic=agnostic)
    for vid_dets in dets.values():  # names written in an infer JSON win
        for d in vid_dets:
            if d["label"]:
                names[d["label_id"]] = str(d["label"])
    try:
        plan = prepare_videos(dets, gt, durations, videos, num_videos, topk, min_score)
    except ValueError as err:
        where = f" of split {list(split)}" if split else ""
        raise ValueError(f"{err} ({results_path}; ground truth: {gt_json or 'none'}{where})"
                         ) from None
    rule = f"; top {topk} per class" if topk > 0 else ""
    rule += f", score >= {min_score:g}" if min_score > 0 else ""
    paths = []
    for item in plan:
        out = os.path.join(out_dir, _safe_name(item["video_id"]) + ".png")
        paths.append(plot_video(item["video_id"], item["gt"], item["detections"], names,
                                item["duration"], out, title_note=rule,
                                num_detections=item["num_detections"]))
    log(f"wrote {len(paths)} PNG(s) to {out_dir}")
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", nargs="?", default=None,
                   help="eval_results.pkl (eval.py --saveonly) or infer JSON")
    p.add_argument("--results", dest="results_opt", default=None, metavar="RESULTS",
                   help="the same, as an option")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", help="config whose dataset.json_file holds the ground truth")
    src.add_argument("--gt", help="annotation JSON with the ground truth")
    p.add_argument("--split", nargs="+", default=None,
                   help="ground-truth subsets to draw (default: the config's val_split; "
                        "with --gt: all)")
    p.add_argument("--videos", nargs="+", default=None, help="only these video ids")
    p.add_argument("--num-videos", type=int, default=10,
                   help="without --videos: draw the first N videos (<= 0: all; default 10)")
    p.add_argument("--topk", type=int, default=3,
                   help="detections drawn per class and video (<= 0: all; default 3)")
    p.add_argument("--min-score", type=float, default=0.0,
                   help="do not draw detections below this score (default 0)")
    p.add_argument("--out-dir", default="vis", help="output folder (default: vis)")
    args = p.parse_args(argv)
    if (args.results is None) == (args.results_opt is None):
        p.error("give the results file once: RESULTS or --results RESULTS")
    try:
        visualize(args.results or args.results_opt, gt_json=args.gt, config=args.config,
                  split=args.split, videos=args.videos, num_videos=args.num_videos,
                  topk=args.topk, min_score=args.min_score, out_dir=args.out_dir)
    except MissingMatplotlib as err:
        print(str(err), file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from libs.utils.cli import run_main
    sys.exit(run_main(main))
