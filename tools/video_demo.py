#!/usr/bin/env python
"""The offline video demo (``python tools/demo.py --video``): from generated video files to
detections on a held-out video, every step a command a user types, run as a subprocess.

1. writes event videos (libs/video/synthetic.py: one class per colour, a coloured square over
   grey noise while an action lasts) and their label table ``labels.csv``, plus one held-out
   video that no step but the last sees;
2. ``tools/make_annotations.py`` (the table -> annotation JSON), and a second JSON from the
   same table with the training rows' labels shuffled (the control: a detector that can learn
   where actions are but nothing about their classes);
3. ``tools/extract_features.py`` with ``r3d_18`` and RANDOM weights at 32 px (``GRID``): no
   weights file is needed offline; random 3D-conv features still separate the colours at this
   size (measured: 16 px does not reliably);
4. ``tools/make_config.py`` for each JSON, then the demo shortens the schedule (``SCHEDULE``),
   ``tools/check_dataset.py``, ``train.py`` and ``eval.py`` for both;
5. ``tools/infer.py`` on the held-out video file with ``--plot`` (a PNG when matplotlib is
   installed) and prints the average mAP of the real and the shuffled-label pipeline.

Everything is written to ``--work-dir`` (default ``ckpt/video_demo``; ``--dry-run``: a tiny run
in a temporary folder). ``report.json`` there holds the numbers.
"""
from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
for _p in (REPO, TOOLS):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from demo import _fmt_time, _log, _run  # noqa: E402  (the feature demo's subprocess helpers)
from libs.video.synthetic import event_video, random_events  # noqa: E402

CLASSES = ("red", "green", "blue")  # class i is drawn in libs.video.synthetic.CLASS_COLOURS[i]
# the video generator: seconds per video, frames per second, frame size (w, h), action lengths
FULL = {"train": 24, "val": 12, "seconds": 24.0, "epochs": 80, "warmup": 5}
DRY_RUN = {"train": 4, "val": 2, "seconds": 12.0, "epochs": 1, "warmup": 1}
VIDEO = {"fps": 10.0, "size": (64, 48), "min_len": 2.0, "max_len": 6.0, "max_events": 3}
# what the demo changes in the derived config: a smaller network and batch, so that ~1,000
# iterations (the EMA, decay 0.999, needs about that many) fit in a few CPU minutes
MODEL_DIM, BATCH_SIZE = 64, 2
# feature extraction: backbone, weights, fps, clip length, stride, crop
GRID = {"backbone": "r3d_18", "weights": "none", "fps": 10, "clip_len": 8, "stride": 4,
        "size": 32}
SHUFFLE_TRIES = 200  # permutations tried for the control's labels (independent_permutation)
MAP_RE = re.compile(r"Average mAP: *([0-9.]+) \(%\)")
MAP50_RE = re.compile(r"tIoU = 0\.50: mAP = *([0-9.]+) \(%\)")


def balanced_events(rng: np.random.Generator, count: int, sizes: Dict[str, Any]
                    ) -> List[List[Tuple[float, float, int]]]:
    """Event lists of ``count`` videos whose classes are balanced (equal counts, random order),
    so a shuffle of the labels keeps a class only by chance (1 / classes)."""
    lists = [random_events(rng, sizes["seconds"], len(CLASSES), VIDEO["min_len"],
                           VIDEO["max_len"], VIDEO["max_events"]) for _ in range(count)]
    total = sum(len(events) for events in lists)
    labels = iter(rng.permutation(np.arange(total) % len(CLASSES)).tolist())
    return [[(s, e, next(labels)) for s, e, _ in events] for events in lists]


def write_videos(work: str, sizes: Dict[str, Any], seed: int) -> Tuple[str, str, List[Dict]]:
    """Event videos in ``work/videos``, the held-out one in ``work/heldout``, the label rows."""
    rng = np.random.default_rng(seed)
    videos, heldout = os.path.join(work, "videos"), os.path.join(work, "heldout")
    os.makedirs(videos, exist_ok=True)
    os.makedirs(heldout, exist_ok=True)
    rows: List[Dict[str, Any]] = []
    plan = ([("training", i) for i in range(sizes["train"])]
            + [("validation", i) for i in range(sizes["val"])] + [("heldout", 0)])
    for k, ((subset, i), events) in enumerate(zip(plan, balanced_events(rng, len(plan),
                                                                        sizes))):
        name = f"{subset}_{i:03d}"
        folder = heldout if subset == "heldout" else videos
        event_video(os.path.join(folder, name + ".mp4"), sizes["seconds"], events,
                    fps=VIDEO["fps"], size=VIDEO["size"], seed=seed * 1000 + k)
        rows += [{"video": name, "start": s, "end": e, "label": CLASSES[c], "subset": subset}
                 for s, e, c in events]
    return videos, os.path.join(heldout, "heldout_000.mp4"), rows


def label_agreement(labels: str, shuffled: str) -> Tuple[int, int]:
    """(training rows whose label the shuffle left unchanged, training rows)."""
    with open(labels, newline="", encoding="utf-8") as f1, \
            open(shuffled, newline="", encoding="utf-8") as f2:
        pairs = [(a["label"], b["label"]) for a, b in zip(csv.DictReader(f1), csv.DictReader(f2))
                 if a["subset"] == "training"]
    return sum(a == b for a, b in pairs), len(pairs)


def independent_permutation(labels: Sequence[str], seed: int, tries: int = SHUFFLE_TRIES
                            ) -> np.ndarray:
    """Of ``tries`` seeded permutations of ``labels``, the one whose (true, shuffled) label
    counts are closest to independence (``n_a * n_b / n``): on a few dozen actions a plain
    shuffle keeps, by chance, noticeably more than 1 / classes of the labels."""
    rng = np.random.default_rng(seed)
    names = sorted(set(labels))
    codes = np.array([names.index(x) for x in labels])
    counts = np.bincount(codes, minlength=len(names)).astype(float)
    expected = np.outer(counts, counts) / max(1, len(codes))
    best, best_err = np.arange(len(codes)), float("inf")
    for _ in range(tries):
        perm = rng.permutation(len(codes))
        table = np.zeros((len(names), len(names)))
        np.add.at(table, (codes, codes[perm]), 1.0)
        err = float(np.abs(table - expected).sum())
        if err < best_err:
            best, best_err = perm, err
    return best


def write_tables(work: str, rows: List[Dict[str, Any]], seed: int) -> Tuple[str, str, str]:
    """``labels.csv``, ``labels_shuffled.csv`` (training labels permuted, independently of the
    true ones: ``independent_permutation``), ``classes.txt``."""
    table = [r for r in rows if r["subset"] != "heldout"]
    shuffled = [dict(r) for r in table]
    train = [i for i, r in enumerate(shuffled) if r["subset"] == "training"]
    perm = independent_permutation([table[i]["label"] for i in train], seed + 1)
    for i, j in zip(train, perm):
        shuffled[i]["label"] = table[train[j]]["label"]
    paths = (os.path.join(work, "labels.csv"), os.path.join(work, "labels_shuffled.csv"))
    for path, data in zip(paths, (table, shuffled)):
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["video", "start", "end", "label", "subset"])
            writer.writeheader()
            writer.writerows(data)
    classes = os.path.join(work, "classes.txt")
    with open(classes, "w", encoding="utf-8") as f:
        f.write("\n".join(CLASSES) + "\n")
    return paths[0], paths[1], classes


def schedule_config(derived: str, out: str, sizes: Dict[str, Any], ckpt_dir: str,
                    json_file: Optional[str] = None) -> str:
    """The derived config with the demo's schedule, network width (``MODEL_DIM``), batch, no
    loader workers (one process is fastest on a small CPU), experiment folder and, optionally,
    another annotation JSON."""
    with open(derived, "r", encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    raw["opt"]["epochs"], raw["opt"]["warmup_epochs"] = sizes["epochs"], sizes["warmup"]
    for key in ("embd_dim", "fpn_dim", "head_dim"):
        raw["model"][key] = MODEL_DIM
    raw.setdefault("loader", {}).update(batch_size=BATCH_SIZE, num_workers=0)
    raw["output_folder"] = ckpt_dir
    changes = (f"opt.epochs {sizes['epochs']}, warmup {sizes['warmup']}, model embd/fpn/head "
               f"dim {MODEL_DIM}, batch_size {BATCH_SIZE}, num_workers 0")
    if json_file is not None:
        raw["dataset"]["json_file"] = json_file
        changes += f", dataset.json_file {os.path.basename(json_file)}"
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"# {os.path.basename(derived)} (tools/make_config.py, see its comments) with "
                f"the demo's changes: {changes}\n")
        yaml.safe_dump(raw, f, sort_keys=False)
    return out


class Steps:
    """Runs the pipeline's commands, stopping at the first failure, and times them."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.env, self.times = env, {}  # type: Dict[str, float]

    def run(self, name: str, cmd: List[str]) -> str:
        t0 = time.time()
        status, out = _run([sys.executable] + cmd, self.env)
        self.times[name] = self.times.get(name, 0.0) + time.time() - t0
        if status != 0:
            raise RuntimeError(f"{cmd[0]} failed (exit status {status})")
        return out


def make_configs(steps: Steps, work: str, tables: Tuple[str, str, str], videos: str,
                 sizes: Dict[str, Any]) -> Dict[str, str]:
    """make_annotations for both tables, make_config once, check_dataset: {name: config}.

    The shuffled table has the same actions with other labels, so make_config derives the same
    values from it; its config is the derived one reading the shuffled annotations.
    """
    labels, shuffled, classes = tables
    anns = {}
    for name, table in (("labels", labels), ("shuffled", shuffled)):
        anns[name] = os.path.join(work, f"annotations_{name}.json")
        steps.run("annotations", ["tools/make_annotations.py", table, "--videos", videos,
                                  "--out", anns[name], "--classes", classes])
    derived = os.path.join(work, "configs", "derived.yaml")
    steps.run("config", ["tools/make_config.py", "--annotations", anns["labels"], "--features",
                         os.path.join(work, "features"), "--out", derived])
    configs = {name: schedule_config(derived, os.path.join(work, "configs",
                                                           f"video_demo_{name}.yaml"),
                                     sizes, os.path.join(work, "ckpt"), anns[name])
               for name in anns}
    steps.run("check", ["tools/check_dataset.py", configs["labels"]])
    return configs


def train_and_eval(steps: Steps, work: str, name: str, config: str, sizes: Dict[str, Any]
                   ) -> Tuple[str, float, Optional[float]]:
    """train.py then eval.py on the validation videos: (experiment, average mAP, mAP@0.5)."""
    steps.run("train", ["train.py", config, "--output", "demo", "--device", "cpu",
                        "-p", "50", "-c", str(sizes["epochs"] + sizes["warmup"])])
    exp = os.path.join(work, "ckpt", f"video_demo_{name}_demo")
    out = steps.run("eval", ["eval.py", config, exp, "--device", "cpu"])
    match, at50 = MAP_RE.search(out), MAP50_RE.search(out)
    if match is None:
        raise RuntimeError("eval.py printed no 'Average mAP' line")
    return exp, float(match.group(1)), float(at50.group(1)) if at50 else None


def extract(steps: Steps, work: str, videos: str) -> None:
    """tools/extract_features.py with the demo's backbone and grid (``GRID``)."""
    cmd = ["tools/extract_features.py", videos, "--out-dir", os.path.join(work, "features"),
           "--backbone", GRID["backbone"], "--weights", GRID["weights"],
           "--fps", str(GRID["fps"]), "--clip-len", str(GRID["clip_len"]),
           "--stride", str(GRID["stride"]), "--size", str(GRID["size"])]
    steps.run("extract", cmd)


def infer_heldout(steps: Steps, work: str, config: str, exp: str, video: str
                  ) -> Tuple[List[Dict[str, Any]], List[str]]:
    """tools/infer.py on the held-out video file: its detections and the PNG(s) written."""
    dets, plots = os.path.join(work, "heldout_detections.json"), os.path.join(work, "plots")
    cmd = ["tools/infer.py", config, exp, video, "--out", dets, "--topk", "10"]
    if importlib.util.find_spec("matplotlib") is not None:  # optional extra: the PNG needs it
        cmd += ["--plot", plots]
    else:
        _log("matplotlib is not installed: no PNG timeline (pip install matplotlib)")
    steps.run("infer", cmd)
    with open(dets, "r", encoding="utf-8") as f:
        results = json.load(f)
    pngs = sorted(os.path.join(plots, p) for p in os.listdir(plots)) \
        if os.path.isdir(plots) else []
    return results, pngs


def report(work: str, maps: Dict[str, float], rows: List[Dict[str, Any]],
           results: List[Dict[str, Any]], pngs: List[str], times: Dict[str, float],
           total: float, agree: Tuple[int, int]) -> Dict[str, Any]:
    """Prints the numbers and writes ``report.json``."""
    truth = [r for r in rows if r["subset"] == "heldout"]
    top = results[0]["detections"][: max(3, len(truth))]
    print()
    _log(f"features: {GRID['backbone']} with RANDOM weights (no pretrained network), "
         f"{GRID['size']} px, {GRID['clip_len']}-frame clips every {GRID['stride']} frames at "
         f"{GRID['fps']} fps")
    _log(f"Average mAP: {maps['labels']:.2f} (%) with the true training labels "
         f"(tIoU 0.5: {maps['labels@0.5']} %)")
    _log(f"Average mAP: {maps['shuffled']:.2f} (%) with shuffled training labels (tIoU 0.5: "
         f"{maps['shuffled@0.5']} %; the control: the shuffle left {agree[0]} of {agree[1]} "
         f"training labels unchanged, chance 1/{len(CLASSES)})")
    _log("held-out video: true actions " + ", ".join(
        f"{r['label']} {r['start']:.1f}-{r['end']:.1f} s" for r in truth))
    _log("held-out video: top detections " + ", ".join(
        f"{d['label']} {d['start']:.1f}-{d['end']:.1f} s ({d['score']:.2f})" for d in top))
    if pngs:
        _log(f"timeline: {pngs[0]}")
    _log(f"total time {_fmt_time(total)} (" + ", ".join(
        f"{k} {_fmt_time(v)}" for k, v in times.items()) + ")")
    out = {"average_map": maps["labels"], "average_map_shuffled_labels": maps["shuffled"],
           "map_at_0.5": maps["labels@0.5"], "map_at_0.5_shuffled_labels": maps["shuffled@0.5"],
           "shuffle_unchanged_training_labels": list(agree),
           "features": dict(GRID), "heldout_truth": truth, "heldout_detections": top,
           "plots": pngs, "times_s": {k: round(v, 1) for k, v in times.items()},
           "total_s": round(total, 1)}
    with open(os.path.join(work, "report.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1)
    return out


def pipeline(work: str, sizes: Dict[str, Any], seed: int, env: Dict[str, str]) -> int:
    """The whole demo in ``work`` (module docstring); returns the exit status."""
    start, steps = time.time(), Steps(env)
    t0 = time.time()
    videos, heldout, rows = write_videos(work, sizes, seed)
    tables = write_tables(work, rows, seed)
    steps.times["videos"] = time.time() - t0
    _log(f"wrote {sizes['train'] + sizes['val']} videos to {videos} and {tables[0]}; held out "
         f"{heldout}")
    try:
        extract(steps, work, videos)
        configs = make_configs(steps, work, tables, videos, sizes)
        maps, exps = {}, {}
        for name in ("labels", "shuffled"):
            exps[name], maps[name], maps[name + "@0.5"] = train_and_eval(
                steps, work, name, configs[name], sizes)
        results, pngs = infer_heldout(steps, work, configs["labels"], exps["labels"], heldout)
    except RuntimeError as err:
        _log(str(err))
        return 1
    report(work, maps, rows, results, pngs, steps.times, time.time() - start,
           label_agreement(tables[0], tables[1]))
    return 0


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="tools/demo.py --video",
        description="Offline video demo: generated videos -> annotations -> features -> "
                    "config -> train -> eval -> detections on a held-out video file.")
    p.add_argument("--work-dir", default=os.path.join("ckpt", "video_demo"),
                   help="where videos, features, configs and checkpoints go (replaced)")
    p.add_argument("--seed", type=int, default=0, help="video generator seed")
    p.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs")
    p.add_argument("--dry-run", action="store_true",
                   help=f"tiny run ({DRY_RUN['train'] + DRY_RUN['val']} videos, "
                        f"{DRY_RUN['epochs'] + DRY_RUN['warmup']} epochs) in a temporary folder")
    p.add_argument("--keep", action="store_true", help="with --dry-run: keep the folder")
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    os.chdir(REPO)
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if args.dry_run:
        work = tempfile.mkdtemp(prefix="actionformer_video_demo_")
    else:
        work = args.work_dir
        if os.path.isdir(work) and not os.path.isfile(os.path.join(work, "labels.csv")):
            raise FileExistsError(f"'{work}' exists and is not a video demo folder; move it "
                                  "away or pick another --work-dir")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    try:
        return pipeline(work, DRY_RUN if args.dry_run else FULL, args.seed, env)
    finally:
        if args.dry_run and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif args.dry_run:
            _log(f"kept {work}")


if __name__ == "__main__":
    sys.exit(main())
