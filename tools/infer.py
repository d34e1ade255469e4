#!/usr/bin/env python
"""Detect actions in one or more videos, from their feature files or from the video files.

    python tools/infer.py CONFIG CKPT INPUTS... [--fps F] [--duration S] [--out FILE]
        [--plot DIR] [--manifest FILE] [--backbone-weights FILE] [--keep-features DIR]

``INPUTS`` are ``.npy`` files of (T, C) features (``.npz`` with an array ``feats``, or
``.pt`` tensors, also work), video files (``.mp4``, ``.mkv``, ... : the extractor's
extensions), or folders of either; ``CKPT`` is a checkpoint file or an experiment folder (the
last ``epoch_NNN.pth.tar``, as eval.py). The EMA weights are used.

**Video files** are turned into features first, one at a time, streaming, exactly as the
training features were made: with the backbone, weights, fps, clip grid and frame size of the
feature manifest the model was trained on (``dataset.feat_folder/manifest.json``, or
``--manifest FILE``; libs/video/from_manifest.py). A manifest that disagrees with the config
(``check_against_config``) is refused. Weights: ``--backbone-weights FILE`` whose sha256 must
be the recorded one, or nothing when the manifest records random weights (rebuilt from its
seed). The features go to a temporary folder removed afterwards, or are kept in
``--keep-features DIR`` (with a manifest). A video's fps is the manifest's and its duration
the file's (probed); ``--fps`` applies to feature files only.

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

``--plot DIR`` draws one PNG timeline per video with tools/visualize.py (the config's
annotations as ground truth when they list the video); it needs matplotlib, an optional extra.

From Python: ``detect(config_path, ckpt, ["video.npy"], fps=30.0)`` or
``detect(config_path, ckpt, ["video.mp4"])`` returns the same list.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
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
from libs.core.atomic import write_json_atomic  # noqa: E402
from libs.utils.cli import ERROR_EXIT_CODE, add_debug_flag, add_faithful_flag  # noqa: E402
from libs.utils.procedure import configure_process, procedure_from_config  # noqa: E402
from libs.video.extract import VIDEO_EXTENSIONS  # noqa: E402

FEATURE_EXTS = (".npy", ".npz", ".pt")


def is_video_file(path: str) -> bool:
    """A video input (by extension, as the feature extractor decides), not a feature file."""
    return path.lower().endswith(VIDEO_EXTENSIONS)


def list_feature_files(paths: Sequence[str]) -> List[str]:
    """Expands folders into their feature and video files (sorted); checks every path exists."""
    files: List[str] = []
    for path in paths:
        if os.path.isdir(path):
            found = sorted(os.path.join(path, f) for f in os.listdir(path)
                           if f.endswith(FEATURE_EXTS) or is_video_file(f))
            if not found:
                raise FileNotFoundError(f"no feature files ({', '.join(FEATURE_EXTS)}) or video "
                                        f"files in folder {path}")
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


def video_source(cfg: Dict[str, Any], manifest: Optional[str] = None,
                 backbone_weights: Optional[str] = None, device: Any = "cpu",
                 keep_features: Optional[str] = None) -> Any:
    """A ``ManifestFeatures`` making features for video files as the training features were made.

    The manifest is ``manifest`` or the one in the config's ``dataset.feat_folder``; it must
    agree with the config (``check_against_config``) and the backbone is rebuilt from it
    (``backbone_from_manifest``: random weights from their seed, or ``backbone_weights`` with
    the recorded sha256). Raises FileNotFoundError / ValueError naming the manifest.
    """
    from libs.video.from_manifest import ManifestFeatures, backbone_from_manifest
    from libs.video.manifest import MANIFEST_NAME, check_against_config, find_manifest, \
        load_manifest
    path = manifest or find_manifest(cfg["dataset"].get("feat_folder"))
    if path is None:
        folder = cfg["dataset"].get("feat_folder")
        raise FileNotFoundError(f"video input needs the manifest of the features the model was "
                                f"trained on: there is no {folder}/{MANIFEST_NAME} (the "
                                "config's dataset.feat_folder); pass --manifest FILE")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--manifest: feature manifest not found: {path}")
    loaded = load_manifest(path)
    problems = check_against_config(loaded, cfg)
    if problems:
        raise ValueError(f"{path}: the feature manifest disagrees with the config: "
                         + "; ".join(problems))
    backbone = backbone_from_manifest(loaded, backbone_weights, source=path)
    if keep_features is not None:
        os.makedirs(keep_features, exist_ok=True)
    return ManifestFeatures(loaded, backbone, source=path, device=device,
                            keep_dir=keep_features)


def _load_visualize() -> Any:
    """tools/visualize.py as a module; MissingMatplotlib (naming the extra) without matplotlib."""
    spec = importlib.util.spec_from_file_location(
        "actionformer_visualize", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                               "visualize.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._pyplot()  # raises MissingMatplotlib with the install hint
    return module


def plot_results(results: List[Dict[str, Any]], cfg: Dict[str, Any], out_dir: str,
                 vis: Any = None) -> List[str]:
    """One PNG timeline per video (tools/visualize.py) in ``out_dir``; returns their paths.

    The config's annotation JSON is the ground truth when it exists (videos it lists are drawn
    with their actions).
    """
    vis = vis or _load_visualize()
    gt_json = cfg["dataset"].get("json_file")
    gt_json = gt_json if gt_json and os.path.isfile(gt_json) else None
    with tempfile.TemporaryDirectory(prefix="actionformer_plot_") as tmp:
        path = os.path.join(tmp, "detections.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(results, f)
        return vis.visualize(path, gt_json=gt_json, videos=[r["video_id"] for r in results],
                             num_videos=0, out_dir=out_dir, log=lambda msg: None)


def _video_item(path: str, source: Any, cfg: Dict[str, Any], video_id: str,
                duration: Optional[float]) -> Dict[str, Any]:
    """The model input of a video file: features extracted now, fps of the manifest."""
    feats, probed = source.features(path)
    fps = float(source.manifest.settings["fps"])
    return make_item(np.asarray(feats, dtype=np.float32), video_id, cfg, fps,
                     duration if duration is not None else probed)


@torch.no_grad()
def detect(config: str, ckpt: str, features: Sequence[str], fps: Optional[float] = None,
           duration: Optional[float] = None, device: Optional[str] = "cpu", epoch: int = -1,
           topk: int = -1, window: Optional[int] = None,
           faithful: Optional[bool] = None, manifest: Optional[str] = None,
           backbone_weights: Optional[str] = None, keep_features: Optional[str] = None
           ) -> List[Dict[str, Any]]:
    """Runs the model on feature or video files; returns one dict per video (module docstring).

    Args:
        config: YAML config the checkpoint was trained with.
        ckpt: checkpoint file or experiment folder.
        features: feature files, video files, or folders of them.
        fps, duration: override the per-video values (seconds; fps: feature files only).
        device: e.g. 'cpu' or a GPU; None takes the config's devices (CPU without a GPU).
        epoch: with a folder, load ``epoch_<epoch>.pth.tar`` (default: the last one).
        topk: keep at most this many detections per video (default: the config's max_seg_num).
        window: grid steps per window for videos decoded in overlapping windows (default:
            only videos longer than the model's point buffers, in the longest windows the
            buffers take; libs/modeling/windowed.py). A value forces windows on every video.
        faithful: the original's procedure (None: the config's ``faithful`` key).
        manifest: for video files, the training features' manifest (default: the one in the
            config's ``dataset.feat_folder``).
        backbone_weights: for video files, the backbone weights file(s) the manifest records.
        keep_features: for video files, keep their features (and a manifest) in this folder.
    """
    cfg = load_config(config)
    procedure = procedure_from_config(cfg, faithful=faithful or None)
    configure_process(procedure)
    if topk > 0:
        cfg["test_cfg"]["max_seg_num"] = topk
    dev = resolve_device(device, cfg["devices"])
    inputs = list_feature_files(features)
    source = None
    if any(is_video_file(p) for p in inputs):  # fail on the manifest before loading the model
        source = video_source(cfg, manifest, backbone_weights, dev, keep_features)
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
    for path in inputs:
        video_id = _video_id(path, prefix)
        known = database.get(video_id, {})
        if is_video_file(path):
            item = _video_item(path, source, cfg, video_id, duration)
        else:
            video_fps = fps if fps is not None else cfg["dataset"]["default_fps"]
            video_fps = video_fps if video_fps is not None else known.get("fps")
            video_duration = duration if duration is not None else known.get("duration")
            item = make_item(read_features(path, input_dim), video_id, cfg, video_fps,
                             video_duration)
        results.append(_detect_item(model, item, cfg, names, window))
    return results


def _detect_item(model: torch.nn.Module, item: Dict[str, Any], cfg: Dict[str, Any],
                 names: Dict[int, str], window: Optional[int]) -> Dict[str, Any]:
    """One video's result entry (detections in seconds, by score)."""
    # videos longer than the point buffers go through overlapping windows (one NMS)
    out, num_windows = detect_video(model, item, cfg["model"], window=window)
    order = torch.argsort(out["scores"], descending=True, stable=True)
    dets = [{"start": float(out["segments"][i, 0]), "end": float(out["segments"][i, 1]),
             "label_id": int(out["labels"][i]),
             "label": names.get(int(out["labels"][i]), f"class_{int(out['labels'][i])}"),
             "score": float(out["scores"][i])} for i in order.tolist()]
    return {"video_id": item["video_id"], "fps": float(item["fps"]),
            "duration": float(item["duration"]), "windows": num_windows, "detections": dets}


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description="Detect actions from feature or video files.")
    p.add_argument("config", help="config the checkpoint was trained with")
    p.add_argument("ckpt", help="checkpoint file or experiment folder")
    p.add_argument("features", nargs="+",
                   help="feature files (.npy/.npz/.pt), video files, or folders of them")
    p.add_argument("--fps", type=float, default=None,
                   help="frames per second of the feature files' videos")
    p.add_argument("--duration", type=float, default=None, help="video duration in seconds")
    p.add_argument("--out", default=None, help="output JSON (default: print)")
    p.add_argument("--device", default="cpu", help="device (default: cpu)")
    p.add_argument("-epoch", type=int, default=-1, help="epoch to load from a folder")
    p.add_argument("-t", "--topk", type=int, default=-1, help="max detections per video")
    p.add_argument("--window", type=int, default=None,
                   help="decode in overlapping windows of this many feature steps (default: "
                        "only videos longer than the model's buffers, automatically)")
    add_faithful_flag(p)
    add_debug_flag(p)
    _video_args(p)
    args = p.parse_args(argv)
    try:
        vis = _load_visualize() if args.plot else None  # before the slow part
        results = detect(args.config, args.ckpt, args.features, fps=args.fps,
                         duration=args.duration, device=args.device, epoch=args.epoch,
                         topk=args.topk, window=args.window, faithful=args.faithful,
                         manifest=args.manifest, backbone_weights=args.backbone_weights,
                         keep_features=args.keep_features)
    except (ImportError, ValueError, FileNotFoundError) as err:  # one line, naming the input
        print(f"error: {err}", file=sys.stderr)  # (MissingMatplotlib names the extra)
        return ERROR_EXIT_CODE
    if args.out:
        write_json_atomic(results, args.out, indent=1)
        n = sum(len(r["detections"]) for r in results)
        print(f"wrote {n} detections for {len(results)} video(s) to {args.out}")
    else:
        print(json.dumps(results, indent=1))
    if args.plot:
        pngs = plot_results(results, load_config(args.config), args.plot, vis)
        print(f"wrote {len(pngs)} PNG timeline(s) to {args.plot}", file=sys.stderr)
    return 0


def _video_args(p: argparse.ArgumentParser) -> None:
    """The options of video-file inputs and of the plots."""
    p.add_argument("--plot", default=None, metavar="DIR",
                   help="write one PNG timeline per video to DIR (needs matplotlib)")
    p.add_argument("--manifest", default=None, metavar="FILE",
                   help="video files: manifest of the training features (default: "
                        "dataset.feat_folder/manifest.json)")
    p.add_argument("--backbone-weights", default=None, metavar="FILE",
                   help="video files: the backbone weights file(s) the manifest records "
                        "(checked by sha256; not needed for random weights)")
    p.add_argument("--keep-features", default=None, metavar="DIR",
                   help="video files: keep their extracted features (and a manifest) in DIR")


if __name__ == "__main__":
    from libs.utils.cli import run_main
    sys.exit(run_main(main))
