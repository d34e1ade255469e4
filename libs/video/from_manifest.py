"""Features of new videos made exactly as a feature manifest says (tools/infer.py on video files).

``backbone_from_manifest`` rebuilds the manifest's backbone: the same random weights (its
recorded seed) or a weights file whose sha256 matches the recorded one. ``ManifestFeatures``
then extracts one video at a time with the manifest's fps, clip grid and frame size through
``extract_features`` itself, so the features equal those of ``tools/extract_features.py``.
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, List, Optional, TextIO, Tuple, Union

import numpy as np
import torch

from .base import VideoBackbone
from .extract import extract_features
from .manifest import MANIFEST_NAME, Manifest
from .registry import make_backbone
from .weights import file_info, split_weight_files

__all__ = ["backbone_from_manifest", "comparable_settings", "ManifestFeatures"]


def _check_files(weights: str, recorded: List[Dict[str, str]], source: str) -> None:
    """Raises ValueError unless ``weights`` are the recorded files (same count, same sha256)."""
    paths = split_weight_files(weights)
    names = ", ".join(r.get("name", "?") for r in recorded)
    if len(paths) != len(recorded):
        raise ValueError(f"--backbone-weights {weights}: {len(paths)} file(s), but the features "
                         f"were made with {len(recorded)} ({names}; {source})")
    for path, rec in zip(paths, recorded):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--backbone-weights: weights file not found: {path}")
        got = file_info(path)["sha256"]
        if got != rec.get("sha256"):
            raise ValueError(f"{path}: sha256 {got[:16]}... is not that of the weights the "
                             f"features were made with ({rec.get('name')}, sha256 "
                             f"{str(rec.get('sha256'))[:16]}...; {source})")


def backbone_from_manifest(manifest: Manifest, weights: Optional[str] = None,
                           source: str = MANIFEST_NAME) -> VideoBackbone:
    """The backbone the manifest's features were made with.

    Args:
        manifest: the training features' manifest.
        weights: the weights file(s) (``"rgb.pt,flow.pt"`` for two) when the manifest records
            files; must be None when it records random weights.
        source: the manifest's path, for messages.

    Raises:
        ValueError / FileNotFoundError: missing, extra or different weights, or random weights
        without a recorded seed (manifests written before seeds were recorded).
    """
    name = str(manifest.settings["backbone"])
    info: Dict[str, Any] = dict(manifest.settings["weights"])
    kind = info.get("kind")
    if kind == "random":
        if weights is not None:
            raise ValueError(f"{source}: the features were made with random weights (seed "
                             f"{info.get('seed')}); do not pass --backbone-weights")
        if "seed" not in info:
            raise ValueError(f"{source}: the features were made with random weights but the "
                             "manifest records no seed, so they cannot be rebuilt; re-extract "
                             "the training features with tools/extract_features.py")
        return make_backbone(name, weights="none", seed=int(info["seed"]))
    if kind == "file":
        recorded = list(info.get("files") or [])
        if weights is None:
            names = ", ".join(r.get("name", "?") for r in recorded)
            raise ValueError(f"{source}: the features were made with backbone '{name}' and the "
                             f"weights file(s) {names}; pass them with --backbone-weights FILE")
        _check_files(weights, recorded, source)
        return make_backbone(name, weights=weights)
    if kind == "torchvision":
        return make_backbone(name, weights=str(info["name"]).rsplit(".", 1)[-1])
    raise ValueError(f"{source}: unknown weights record {info!r} (expected kind random, file "
                     "or torchvision)")


def comparable_settings(settings: Dict[str, Any]) -> Dict[str, Any]:
    """Settings with weights files by sha256 only (renamed files with the same bytes match)."""
    out = dict(settings)
    weights = dict(out.get("weights") or {})
    if "files" in weights:
        weights["files"] = [f.get("sha256") for f in weights["files"]]
    out["weights"] = weights
    return out


class ManifestFeatures:
    """Extracts videos one at a time exactly as ``manifest`` says (fps, grid, frames, backbone)."""

    def __init__(self, manifest: Manifest, backbone: VideoBackbone, source: str = MANIFEST_NAME,
                 device: Union[str, torch.device, None] = "cpu", batch_size: int = 8,
                 keep_dir: Optional[str] = None, log: Optional[TextIO] = None) -> None:
        self.manifest, self.backbone, self.source = manifest, backbone, source
        self.device, self.batch_size, self.keep_dir, self.log = device, batch_size, keep_dir, log

    def _extract(self, video: str, out_dir: str) -> Tuple[np.ndarray, float]:
        s = self.manifest.settings
        result = extract_features([video], out_dir, self.backbone, fps=float(s["fps"]),
                                  clip_len=int(s["clip_len"]), stride=int(s["stride"]),
                                  size=s["frames"].get("crop_size"), batch_size=self.batch_size,
                                  device=self.device, log=self.log)
        if result.failed:
            raise ValueError("; ".join(result.failed.values()))
        got, want = comparable_settings(result.manifest.settings), comparable_settings(s)
        diff = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
        if diff:
            raise ValueError(f"{video}: features would not be made as the training features "
                             f"({self.source}): settings {', '.join(diff)} differ")
        stem = os.path.splitext(os.path.basename(video))[0]
        feats = np.load(os.path.join(out_dir, stem + ".npy"), allow_pickle=False)
        return feats, float(result.manifest.videos[stem]["duration_s"])

    def features(self, video: str) -> Tuple[np.ndarray, float]:
        """``(T, C)`` float32 features of ``video`` and its duration in seconds (probed).

        Written to ``keep_dir`` (kept, with its manifest; a rerun reuses them) or to a
        temporary folder removed before returning.
        """
        if self.keep_dir is not None:
            return self._extract(video, self.keep_dir)
        with tempfile.TemporaryDirectory(prefix="actionformer_infer_") as tmp:
            return self._extract(video, tmp)
