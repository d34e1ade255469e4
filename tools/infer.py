#!/usr/bin/env python
"""Detect actions in one or more videos from their feature files.

    python tools/infer.py CONFIG CKPT FEATURES... [--fps F] [--duration S] [--out FILE]

``FEATURES`` are ``.npy`` files of (T, C) features (``.npz`` with an array ``feats``, or
``.pt`` tensors, also work), or folders of them; ``CKPT`` is a checkpoint file or an
experiment folder (the last ``epoch_NNN.pth.tar``, as eval.py). The EMA weights are used.

Each video's fps and duration come from, in this order: ``--fps`` / ``--duration``; the
config's ``dataset.default_fps``; the config's annotation JSON if it lists the video (by file
name without prefix and extension); otherwise fps is an error and the duration is what the
features cover, ``((T - 1) * feat_stride + num_frames) / fps``. The features are put on the
grid exactly as the config's dataset class does (subsampling, ActivityNet resizing).

Output (``--out``, default stdout): a JSON list, one entry per video,
``{"video_id", "fps", "duration", "windows", "detections": [{"start", "end", "label_id",
"label", "score"}, ...]}`` with start/end in seconds, sorted by score (highest first);
``windows`` is 1 for a video run whole, else the number of overlapping windows it was decoded
in (videos longer than the model's point buffers, ``max_seq_len * max_buffer_len_factor``
steps, or ``--window``; libs/modeling/windowed.py). Class names come
from the config's annotation JSON when it exists, else ``class_<id>``.

From Python: ``detect(config_path, ckpt, ["video.npy"], fps=30.0)`` returns the same list.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.core import load_config  # noqa: E402
from libs.datasets.anet import anet_feature_grid, resize_features  # noqa: E402
from libs.datasets.base import read_annotation_json  # noqa: E402
from libs.engine import find_checkpoint, load_checkpoint, load_model_weights  # noqa: E402
from libs.modeling import make_meta_arch  # noqa: E402
from libs.modeling.windowed import detect_video  # noqa: E402
from libs.utils import resolve_device  # noqa: E402
from libs.utils.procedure import configure_process, procedure_from_config  # noqa: E402

FEATURE_EXTS = (".npy", ".npz", ".pt")


def list_feature_files(paths: Sequence[str]) -> List[str]:
    """Expands folders into their feature files (sorted); checks that every path exists."""
    files: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, f) for f in os.listdir(path)
                           if f.endswith(FEATURE_EXTS))
            if not found:
                raise FileNotFoundError(f"no feature files ({', '.join(FEATURE_EXTS)}) in "
                                        f"folder {path}")
            files.extend(found)
        elif os.path.isfile(path):
            files.append(path)
        else:
            raise FileNotFoundError(f"feature file or folder not found: {path}")
    return files


def read_features(path: str, input_dim: int) -> np.ndarray:
    """(T, C) float32 features of one file, checked against the model's input width."""
    if path.endswith(".npz"):
        with np.load(path) as data:
            feats = data["feats"]
    elif path.endswith(".pt"):
        feats = torch.load(path, map_location="cpu", weights_only=True).numpy()
    else:
        feats = np.load(path)
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] != input_dim:
        hint = " (it looks transposed: store (T, C))" if feats.ndim == 2 and \
            feats.shape[0] == input_dim else ""
        raise ValueError(f"{path}: features of shape {feats.shape}, expected (T, {input_dim})"
                         f"{hint}")
    if feats.shape[0] == 0 or not np.isfinite(feats).all():
        raise ValueError(f"{path}: features are empty or contain NaN/inf")
    return feats


def _video_id(path: str, prefix: str) -> str:
    name = os.path.splitext(os.path.basename(path))[0]
    return name[len(prefix):] if prefix and name.startswith(prefix) else name


def _annotation_db(cfg: Dict[str, Any]) -> Dict[str, Any]:
    json_file = cfg["dataset"].get("json_file")
    if json_file and os.path.isfile(json_file):
        return read_annotation_json(json_file)
    return {}


def make_item(feats: np.ndarray, video_id: str, cfg: Dict[str, Any], fps: Optional[float],
              duration: Optional[float]) -> Dict[str, Any]:
    """The model input for one video, on the grid of the config's dataset class."""
    ds = cfg["dataset"]
    if fps is None:
        raise ValueError(f"video '{video_id}': fps unknown; pass --fps (or set "
                         "dataset.default_fps, or list the video in the annotation JSON)")
    if cfg["dataset_name"] == "anet":
        if duration is None and ds["feat_stride"] <= 0:
            raise ValueError(f"video '{video_id}': --duration is needed for fixed-length "
                             "ActivityNet features")
        feats, stride, frames = anet_feature_grid(
            feats, ds["feat_stride"], ds["num_frames"], ds["downsample_rate"],
            ds["max_seq_len"], ds["force_upsampling"], duration or 0.0, fps, video_id)
        tensor = resize_features(torch.from_numpy(np.ascontiguousarray(feats.T)),
                                 ds["max_seq_len"] if ds["force_upsampling"] else None)
    else:
        feats = feats[::ds["downsample_rate"]]
        stride, frames = ds["feat_stride"] * ds["downsample_rate"], ds["num_frames"]
        tensor = torch.from_numpy(np.ascontiguousarray(feats.T))
    if duration is None:
        duration = ((feats.shape[0] - 1) * stride + frames) / fps
    return {"video_id": video_id, "feats": tensor, "segments": None, "labels": None,
            "fps": fps, "duration": duration, "feat_stride": stride, "feat_num_frames": frames}


@torch.no_grad()
def detect(config: str, ckpt: str, features: Sequence[str], fps: Optional[float] = None,
           duration: Optional[float] = None, device: Optional[str] = "cpu", epoch: int = -1,
           topk: int = -1, window: Optional[int] = None,
           faithful: Optional[bool] = None) -> List[Dict[str, Any]]:
    """Runs the model on feature files; returns one dict per video (see the module docstring).

    Args:
        config: YAML config the checkpoint was trained with.
        ckpt: checkpoint file or experiment folder.
        features: feature files or folders.
        fps, duration: override the per-video values (seconds).
        device: e.g. 'cpu' or a GPU; None takes the config's devices (CPU without a GPU).
        epoch: with a folder, load ``epoch_<epoch>.pth.tar`` (default: the last one).
        topk: keep at most this many detections per video (default: the config's max_seg_num).
        window: grid steps per window for videos decoded in overlapping windows (default:
            only videos longer than the model's point buffers, in the longest windows the
            buffers take; libs/modeling/windowed.py). A value forces windows on every video.
        faithful: the original's procedure (None: the config's ``faithful`` key).
    """
    cfg = load_config(config)
    procedure = procedure_from_config(cfg, faithful=faithful or None)
    configure_process(procedure)
    if topk > 0:
        cfg["test_cfg"]["max_seg_num"] = topk
    dev = resolve_device(device, cfg["devices"])
    model = make_meta_arch(cfg["model_name"], **cfg["model"], procedure=procedure).to(dev)
    load_model_weights(model, load_checkpoint(find_checkpoint(ckpt, epoch)), use_ema=True)
    model.eval()

    database = _annotation_db(cfg)
    names = {a["label_id"]: a["label"] for v in database.values()
             for a in v.get("annotations") or []}
    input_dim = cfg["dataset"]["input_dim"]
    input_dim = sum(input_dim) if isinstance(input_dim, (list, tuple)) else input_dim
    prefix = cfg["dataset"].get("file_prefix") or ""
    results = []
    for path in list_feature_files(features):
        video_id = _video_id(path, prefix)
        known = database.get(video_id, {})
        video_fps = fps if fps is not None else cfg["dataset"]["default_fps"]
        video_fps = video_fps if video_fps is not None else known.get("fps")
        video_duration = duration if duration is not None else known.get("duration")
        item = make_item(read_features(path, input_dim), video_id, cfg, video_fps,
                         video_duration)
        # videos longer than the point buffers go through overlapping windows (one NMS)
        out, num_windows = detect_video(model, item, cfg["model"], window=window)
        order = torch.argsort(out["scores"], descending=True, stable=True)
        dets = [{"start": float(out["segments"][i, 0]), "end": float(out["segments"][i, 1]),
                 "label_id": int(out["labels"][i]),
                 "label": names.get(int(out["labels"][i]), f"class_{int(out['labels'][i])}"),
                 "score": float(out["scores"][i])} for i in order.tolist()]
        results.append({"video_id": video_id, "fps": float(item["fps"]),
                        "duration": float(item["duration"]), "windows": num_windows,
                        "detections": dets})
    return results


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Detect actions from feature files.")
    p.add_argument("config", help="config the checkpoint was trained with")
    p.add_argument("ckpt", help="checkpoint file or experiment folder")
    p.add_argument("features", nargs="+", help="feature files (.npy/.npz/.pt) or folders")
    p.add_argument("--fps", type=float, default=None, help="frames per second of the videos")
    p.add_argument("--duration", type=float, default=None, help="video duration in seconds")
    p.add_argument("--out", default=None, help="output JSON (default: print)")
    p.add_argument("--device", default="cpu", help="device (default: cpu)")
    p.add_argument("-epoch", type=int, default=-1, help="epoch to load from a folder")
    p.add_argument("-t", "--topk", type=int, default=-1, help="max detections per video")
    p.add_argument("--window", type=int, default=None,
                   help="decode in overlapping windows of this many feature steps (default: "
                        "only videos longer than the model's buffers, automatically)")
    p.add_argument("--faithful", action="store_true",
                   help="the original's procedure (default: the config's 'faithful' key)")
    args = p.parse_args(argv)
    results = detect(args.config, args.ckpt, args.features, fps=args.fps,
                     duration=args.duration, device=args.device, epoch=args.epoch,
                     topk=args.topk, window=args.window, faithful=args.faithful)
    text = json.dumps(results, indent=1)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.out)
        n = sum(len(r["detections"]) for r in results)
        print(f"wrote {n} detections for {len(results)} video(s) to {args.out}")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    from libs.utils.cli import run_main
    sys.exit(run_main(main))
