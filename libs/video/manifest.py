"""The feature-grid contract: the manifest JSON an extraction writes beside its features.

It records how the features were made (backbone, weights, fps, clip grid, frame geometry, pixel
normalisation, short-video policy) and, per video, what was decoded; it states the config keys
that follow (``feat_stride``, ``num_frames``, ``default_fps``, ``input_dim``) and checks a config
against them (``check_against_config``, used by tools/check_dataset.py).
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Dict, List, Mapping, Optional

from libs.utils.atomic import atomic_open

from .clips import clip_center_time_s, num_clips

__all__ = ["MANIFEST_NAME", "SCHEMA", "SCHEMA_VERSION", "SHORT_VIDEO_POLICY", "Manifest",
           "settings_hash", "load_manifest", "find_manifest", "check_against_config",
           "check_folder_manifest"]

MANIFEST_NAME = "manifest.json"
SCHEMA = "actionformer-feature-manifest"
SCHEMA_VERSION = 1
SHORT_VIDEO_POLICY = ("pad_last_frame: a video shorter than one clip gives one feature whose "
                      "clip repeats the last frame (entry flag 'padded')")
# settings every manifest holds, with their types (checked on load)
_SETTINGS_TYPES = {"backbone": str, "weights": dict, "fps": (int, float), "clip_len": int,
                   "stride": int, "frames": dict, "pixel_normalisation": dict,
                   "feature_dim": int, "short_video_policy": str}
_VIDEO_TYPES = {"source": str, "decoded_frames": int, "sampled_frames": int,
                "duration_s": (int, float), "num_features": int, "padded": bool,
                "settings_hash": str}
COUNT_TOL = 0.02  # feature count vs annotated duration: tolerated relative difference ...
COUNT_TOL_MIN = 2  # ... and at least this many features


def settings_hash(settings: Mapping[str, Any]) -> str:
    """16 hex digits of the sha256 of the settings as canonical JSON (sorted keys)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


class Manifest:
    """A feature folder's manifest: the shared ``settings`` plus per-video entries.

    Attributes:
        settings: how every feature was made (see docs/features.md for each field).
        videos: ``{stem: entry}``; entry: source file name and size, decoded frame count,
            sampled frame count (on the fps grid), duration in seconds, number of features,
            ``padded`` (shorter than one clip), the settings hash it was made with.
        failed: ``{stem: {"source", "reason"}}`` of the videos the last run could not extract.
    """

    def __init__(self, settings: Dict[str, Any], videos: Optional[Dict[str, Any]] = None,
                 failed: Optional[Dict[str, Any]] = None) -> None:
        self.settings = dict(settings)
        self.videos: Dict[str, Dict[str, Any]] = dict(videos or {})
        self.failed: Dict[str, Dict[str, str]] = dict(failed or {})

    @property
    def hash(self) -> str:
        return settings_hash(self.settings)

    def config_keys(self) -> Dict[str, Any]:
        """The dataset config keys these features need (docs/reference.md §2.5)."""
        fps = float(self.settings["fps"])
        return {"feat_stride": int(self.settings["stride"]),
                "num_frames": int(self.settings["clip_len"]),
                "default_fps": int(fps) if fps.is_integer() else fps,
                "input_dim": int(self.settings["feature_dim"])}

    def feature_center_time(self, i: int) -> float:
        """Seconds at the centre of feature i: ``(i * stride + clip_len / 2) / fps``."""
        s = self.settings
        return clip_center_time_s(i, int(s["clip_len"]), int(s["stride"]), float(s["fps"]))

    def is_done(self, stem: str, source_bytes: int) -> bool:
        """True when ``stem`` has an entry made with these settings from a file of that size."""
        entry = self.videos.get(stem)
        return (entry is not None and entry["settings_hash"] == self.hash
                and entry.get("source_bytes") == source_bytes)

    def stale(self) -> List[str]:
        """Stems whose entry was made with other settings than the manifest's."""
        return sorted(k for k, v in self.videos.items() if v["settings_hash"] != self.hash)

    def to_json(self) -> Dict[str, Any]:
        s = self.settings
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "settings": s,
                "settings_hash": self.hash, "config_keys": self.config_keys(),
                "feature_center_time_s": f"(i * {s['stride']} + {s['clip_len']} / 2) / "
                                         f"{self.config_keys()['default_fps']}",
                "num_features": f"(sampled_frames - {s['clip_len']}) // {s['stride']} + 1, "
                                f"or 1 when sampled_frames < {s['clip_len']}",
                "videos": dict(sorted(self.videos.items())),
                "failed": dict(sorted(self.failed.items()))}

    def save(self, path: str) -> None:
        """Writes the manifest atomically (temporary file, then rename)."""
        with atomic_open(path, "w") as fh:
            json.dump(self.to_json(), fh, indent=1)
            fh.write("\n")


def _require(obj: Mapping[str, Any], types: Mapping[str, Any], where: str, path: str) -> None:
    for key, kind in types.items():
        if key not in obj:
            raise ValueError(f"{path}: malformed feature manifest: {where} has no '{key}'")
        if not isinstance(obj[key], kind) or (kind is int and isinstance(obj[key], bool)):
            raise ValueError(f"{path}: malformed feature manifest: {where}.{key} is "
                             f"{obj[key]!r}, expected {getattr(kind, '__name__', 'a number')}")


def load_manifest(path: str) -> Manifest:
    """Reads a manifest; ``ValueError`` naming the file and the key when it is malformed."""
    try:
        with open(path, "r", encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: malformed feature manifest: not JSON ({err})") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a feature manifest (expected \"schema\": \"{SCHEMA}\")")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"{path}: feature manifest schema_version "
                         f"{data.get('schema_version')!r}, this code reads {SCHEMA_VERSION}")
    _require(data, {"settings": dict, "videos": dict}, "the manifest", path)
    _require(data["settings"], _SETTINGS_TYPES, "settings", path)
    for stem, entry in data["videos"].items():
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: malformed feature manifest: videos.{stem} is not an object")
        _require(entry, _VIDEO_TYPES, f"videos.{stem}", path)
    return Manifest(data["settings"], data["videos"], data.get("failed") or {})


def find_manifest(feat_folder: Any) -> Optional[str]:
    """Path of the manifest in a feature folder, or None (also for non-folder feature stores)."""
    if not isinstance(feat_folder, (str, os.PathLike)) or not os.path.isdir(feat_folder):
        return None
    path = os.path.join(feat_folder, MANIFEST_NAME)
    return path if os.path.isfile(path) else None


def _key_problems(manifest: Manifest, ds: Mapping[str, Any]) -> List[str]:
    keys = manifest.config_keys()
    out = []
    for key in ("feat_stride", "num_frames", "input_dim"):
        if ds.get(key) is None or float(ds[key]) != float(keys[key]):
            out.append(f"dataset.{key} is {ds.get(key)} but the features were made with "
                       f"{key} {keys[key]} (manifest)")
    fps = ds.get("default_fps")
    if fps is not None and abs(float(fps) - float(manifest.settings["fps"])) > 1e-6:
        out.append(f"dataset.default_fps is {fps} but the frames were sampled at "
                   f"{manifest.settings['fps']} fps (manifest)")
    return out


def _video_problems(manifest: Manifest, ds: Mapping[str, Any], database: Mapping[str, Any],
                    lengths: Mapping[str, int]) -> List[str]:
    prefix = ds.get("file_prefix") or ""
    s = manifest.settings
    out = []
    for vid, video in database.items():
        entry = manifest.videos.get(prefix + vid)
        if entry is None:
            continue
        if ds.get("default_fps") is None and video.get("fps") is not None and \
                abs(float(video["fps"]) - float(s["fps"])) > 1e-6:
            out.append(f"video '{vid}': default_fps is not set, so the loader uses the "
                       f"annotated fps {video['fps']}, but its frames were sampled at {s['fps']}")
        if vid in lengths and lengths[vid] != entry["num_features"]:
            out.append(f"video '{vid}': the feature file holds {lengths[vid]} features, the "
                       f"manifest says {entry['num_features']}")
        if video.get("duration") is not None:
            frames = int(float(video["duration"]) * float(s["fps"]))
            expected = max(1, num_clips(frames, int(s["clip_len"]), int(s["stride"])))
            if abs(entry["num_features"] - expected) > max(COUNT_TOL_MIN, COUNT_TOL * expected):
                out.append(f"video '{vid}': {entry['num_features']} features, but its annotated "
                           f"duration {video['duration']} s gives {expected} on this grid")
    return out


def check_against_config(manifest: Manifest, cfg: Mapping[str, Any],
                         database: Optional[Mapping[str, Any]] = None,
                         lengths: Optional[Mapping[str, int]] = None) -> List[str]:
    """Problems of a config (and its annotations) against a feature manifest.

    Args:
        manifest: the feature folder's manifest.
        cfg: a loaded config (``cfg["dataset"]`` is read).
        database: optional annotation database ``{video id: {duration, fps, ...}}``.
        lengths: optional feature length T of each video id's file.

    Returns:
        One line per problem: a config key that disagrees with the manifest (stride, clip
        length, fps, dimension), entries made with other settings, and per video an annotated
        fps the loader would use instead of the manifest's, a file length that is not the
        manifest's count, or a count far from what the annotated duration gives.
    """
    ds = cfg["dataset"]
    out = _key_problems(manifest, ds)
    stale = manifest.stale()
    if stale:
        out.append(f"{len(stale)} manifest entries were made with other settings than the "
                   f"manifest's (re-extract them): {', '.join(stale[:5])}")
    if database:
        out += _video_problems(manifest, ds, database, lengths or {})
    return out


def check_folder_manifest(cfg: Mapping[str, Any], database: Optional[Mapping[str, Any]] = None,
                          lengths: Optional[Mapping[str, int]] = None) -> List[str]:
    """``check_against_config`` for the manifest in ``cfg``'s feature folder ([] if none)."""
    path = find_manifest(cfg["dataset"].get("feat_folder"))
    if path is None:
        return []
    try:
        manifest = load_manifest(path)
    except (OSError, ValueError) as err:
        return [str(err)]
    return [f"{path}: {p}" for p in check_against_config(manifest, cfg, database, lengths)]
