#!/usr/bin/env python
"""Extract clip features from raw videos: one (T, C) float32 ``.npy`` per video + a manifest.

    python tools/extract_features.py VIDEO_OR_FOLDER... --out-dir DIR --backbone NAME
        [--weights FILE|none [--seed N]] [--fps F] [--clip-len N] [--stride S] [--size PX]
        [--batch-size B] [--device DEV]

Defaults follow the THUMOS14 features: 30 fps, 16-frame clips, stride 4, and the backbone's
crop (224 px for the I3D backbones). ``DIR/manifest.json`` records how the features were made
(docs/features.md); the config keys they need are printed at the end. A rerun skips the videos
already extracted with the same settings. Exit code: 0 when every video was extracted, 1 when
some could not be (listed with their reason; the others are extracted), 2 on a usage error
(unknown backbone, weights of another architecture, a size the backbone cannot take, ...).
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.video import list_backbones, make_backbone  # noqa: E402
from libs.video.extract import ExtractResult, extract_features  # noqa: E402
from libs.video.manifest import Manifest  # noqa: E402

__all__ = ["main", "config_snippet"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FOLDER",
                   help="video files, or folders (their .mp4/.mkv/.avi/.mov/... files)")
    p.add_argument("--out-dir", required=True, metavar="DIR",
                   help="where the .npy files and manifest.json go")
    p.add_argument("--backbone", required=True, metavar="NAME",
                   help="video backbone: " + ", ".join(list_backbones()) +
                        " (or torchvision:NAME where torchvision imports)")
    p.add_argument("--weights", default="none", metavar="FILE|none",
                   help="state_dict file ('rgb.pt,flow.pt' for i3d); 'none' = random weights "
                        "(tests and demos only)")
    p.add_argument("--seed", type=int, default=0,
                   help="with --weights none: seed of the random weights, recorded in the "
                        "manifest (0)")
    p.add_argument("--fps", type=float, default=30.0, help="frames per second sampled (30)")
    p.add_argument("--clip-len", type=int, default=16, metavar="N", help="frames per clip (16)")
    p.add_argument("--stride", type=int, default=4, metavar="S",
                   help="frames between consecutive clips (4)")
    p.add_argument("--size", type=int, default=None, metavar="PX",
                   help="crop side in pixels (default: the backbone's, 224 for I3D)")
    p.add_argument("--batch-size", type=int, default=8, metavar="B", help="clips per batch (8)")
    p.add_argument("--device", default="cpu", metavar="DEV", help="device (default: cpu)")
    return p


def config_snippet(manifest: Manifest, out_dir: str) -> str:
    """The ``dataset:`` YAML lines a config needs to read these features."""
    lines = ["dataset:", f"  feat_folder: {out_dir}", "  file_prefix: null", "  file_ext: .npy"]
    lines += [f"  {key}: {value}" for key, value in manifest.config_keys().items()]
    return "\n".join(lines)


def _report(result: ExtractResult, out_dir: str) -> List[str]:
    manifest = result.manifest
    lines = [f"{len(result.extracted)} video(s) extracted, {len(result.skipped)} already done, "
             f"{len(result.failed)} failed -> {out_dir} (manifest: {result.manifest_path})"]
    if result.warnings:
        lines.append("warnings:")
        lines += [f"  {w}" for w in result.warnings]
    if result.failed:
        lines.append("videos that could not be extracted:")
        lines += [f"  {reason}" for _path, reason in sorted(result.failed.items())]
    lines.append("config keys for these features (put them in the config's dataset section):")
    lines.append(config_snippet(manifest, out_dir))
    s = manifest.settings
    lines.append(f"feature i is centred at (i * {s['stride']} + {s['clip_len']} / 2) / "
                 f"{manifest.config_keys()['default_fps']} seconds")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        backbone = make_backbone(args.backbone, weights=args.weights, seed=args.seed)
        result = extract_features(args.inputs, args.out_dir, backbone, fps=args.fps,
                                  clip_len=args.clip_len, stride=args.stride, size=args.size,
                                  batch_size=args.batch_size, device=args.device)
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(_report(result, args.out_dir)))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
