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
returns a :class:`Report` with ``errors`` / ``warnings`` lists of strings.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from libs.core import ConfigError, load_config, max_div_factor  # noqa: E402
from libs.datasets import read_annotation_json  # noqa: E402
from libs.datasets.validation import validate_database  # noqa: E402
from libs.utils.annotations import remove_duplicate_annotations  # noqa: E402
from libs.utils.cli import run_main  # noqa: E402
from libs.video.manifest import check_folder_manifest  # noqa: E402

__all__ = ["Report", "check_dataset", "main"]

SHOW = 5  # offending ids listed per message
NAN_SAMPLE = 20  # videos scanned for NaN/inf without --full-scan
T_RATIO_TOL = 1.25  # feature length vs duration: tolerated ratio either way


def _first(ids: Sequence[str], n: int = SHOW) -> str:
    ids = list(ids)
    return ", ".join(ids[:n]) + (f", ... ({len(ids) - n} more)" if len(ids) > n else "")


@dataclass
class Report:
    """Findings of :func:`check_dataset`, grouped in sections (in the order they were made).

    Attributes:
        errors: what would crash training/evaluation or make it wrong.
        warnings: what runs but deserves a look.
        sections: section title -> printed lines (information, warnings and errors).
    """

    errors: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    sections: Dict[str, List[str]] = field(default_factory=dict)

    def info(self, section: str, msg: str) -> None:
        self.sections.setdefault(section, []).append(f"  {msg}")

    def warn(self, section: str, msg: str) -> None:
        self.warnings.append(msg)
        self.sections.setdefault(section, []).append(f"  WARNING: {msg}")

    def error(self, section: str, msg: str) -> None:
        self.errors.append(msg)
        self.sections.setdefault(section, []).append(f"  ERROR: {msg}")

    @property
    def ok(self) -> bool:
        return not self.errors

    def format(self) -> str:
        lines: List[str] = []
        for title, body in self.sections.items():
            lines.append(f"== {title} ==")
            lines.extend(body)
            lines.append("")
        verdict = ("errors found: fix them before training" if self.errors else
                   "no errors" + (" (see the warnings)" if self.warnings else ""))
        lines.append(f"== summary: {len(self.errors)} error(s), {len(self.warnings)} "
                     f"warning(s); {verdict} ==")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# feature files


class _Features:
    """Feature files of one config: paths, cheap shapes, full reads (docs/reference.md §2.4)."""

    def __init__(self, name: str, ds: Dict[str, Any]) -> None:
        self.name = name
        self.prefix = ds.get("file_prefix") or ""
        self.ext = ds.get("file_ext") or ""
        folder = ds["feat_folder"]
        self.h5_file = folder if name == "anet" and ".hdf5" in str(folder) else None
        if name == "ego4d" and isinstance(folder, (list, tuple)):
            self.folders = [str(f) for f in folder]
        else:
            self.folders = [str(folder)]
        self._h5 = None

    def close(self) -> None:
        if self._h5 is not None:
            self._h5.close()
            self._h5 = None

    def missing_locations(self) -> List[str]:
        return [f for f in self.folders if not os.path.exists(f)]

    def paths(self, video_id: str) -> List[str]:
        if self.h5_file:
            return [f"{self.h5_file}[{self.prefix + video_id}]"]
        return [os.path.join(f, self.prefix + video_id + self.ext) for f in self.folders]

    def _h5file(self):
        if self._h5 is None:
            import h5py  # only for this format
            self._h5 = h5py.File(self.h5_file, "r")
        return self._h5

    def exists(self, video_id: str) -> bool:
        if self.h5_file:
            return (self.prefix + video_id) in self._h5file()
        return all(os.path.isfile(p) for p in self.paths(video_id))

    def stored_ids(self) -> List[str]:
        """Video ids of the stored files (files present in every folder for ego4d)."""
        if self.h5_file:
            keys = list(self._h5file().keys())
            return [k[len(self.prefix):] for k in keys if k.startswith(self.prefix)]
        per_folder = []
        for folder in self.folders:
            names = [n for n in os.listdir(folder)
                     if n.startswith(self.prefix) and n.endswith(self.ext)]
            per_folder.append({n[len(self.prefix):len(n) - len(self.ext)] for n in names})
        return sorted(set.union(*per_folder)) if per_folder else []

    def shapes(self, video_id: str) -> List[Tuple[int, ...]]:
        """Array shapes without reading the data where the format allows it (one per folder)."""
        if self.h5_file:
            return [tuple(self._h5file()[self.prefix + video_id].shape)]
        return [_file_shape(p) for p in self.paths(video_id)]

    def load(self, video_id: str) -> np.ndarray:
        """All values, (T, sum C) for ego4d's folders (only used for the NaN/inf scan)."""
        if self.h5_file:
            return np.asarray(self._h5file()[self.prefix + video_id][()])
        parts = [_file_array(p) for p in self.paths(video_id)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


# what a corrupt, truncated or object-holding feature file raises (allow_pickle stays False)
_READ_ERRORS = (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, RuntimeError)


def _finite(feats: "_Features", video_id: str) -> bool:
    """Whether every value is finite; an unreadable file counts as not finite."""
    try:
        return bool(np.isfinite(feats.load(video_id)).all())
    except _READ_ERRORS:
        return False


def _file_shape(path: str) -> Tuple[int, ...]:
    if path.endswith(".npz"):
        # read the header of the 'feats' member only, not the (maybe compressed) data
        with zipfile.ZipFile(path) as zf, zf.open("feats.npy") as member:
            version = np.lib.format.read_magic(member)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)(member)
            return tuple(header[0])
    if path.endswith(".pt"):
        return tuple(_file_array(path).shape)
    return tuple(np.load(path, mmap_mode="r", allow_pickle=False).shape)


def _file_array(path: str) -> np.ndarray:
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as data:
            return np.asarray(data["feats"])
    if path.endswith(".pt"):
        import torch  # ego4d may store torch tensors
        return torch.load(path, map_location="cpu", weights_only=True).numpy()
    return np.load(path, allow_pickle=False)


# ---------------------------------------------------------------------------------------------
# the checks


def _class_rule(name: str, found: int, num_classes: int) -> Optional[str]:
    """The dataset class's class-count assertion (docs/reference.md §2.3); a message on failure."""
    if name == "epic":
        ok, rule = found <= num_classes, "at most num_classes"
    elif name == "anet":
        ok, rule = num_classes == 1 or found == num_classes, "num_classes, or num_classes 1"
    else:
        ok, rule = found == num_classes, "exactly num_classes"
    if ok:
        return None
    return (f"{found} classes in the annotations, but dataset.num_classes is {num_classes} "
            f"(the '{name}' data set needs {rule})")


def _check_annotations(rep: Report, cfg: Dict[str, Any], database: Dict[str, Any],
                       splits: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """JSON checks; returns the videos of ``splits`` with their fps/duration/segments."""
    sec = "annotations"
    name, ds = cfg["dataset_name"], cfg["dataset"]
    num_classes = ds["num_classes"]
    not_obj = [vid for vid, v in database.items() if not isinstance(v, dict)]
    if not_obj:
        rep.error(sec, f"{len(not_obj)} video record(s) are not objects: {_first(not_obj)}")
        database = {k: v for k, v in database.items() if isinstance(v, dict)}
    subsets = Counter(str(v.get("subset", "<none>")) for v in database.values())
    rep.info(sec, f"{len(database)} videos; subsets: "
             + ", ".join(f"{s} ({n})" for s, n in sorted(subsets.items())))
    lowered = Counter()
    for s, n in subsets.items():
        lowered[s.lower()] += n
    for role, names in (("train_split", cfg["train_split"]), ("val_split", cfg["val_split"])):
        for s in names:
            if s not in lowered:
                hint = (" (splits must be lower-case)" if s.lower() in lowered and s != s.lower()
                        else "")
                rep.error(sec, f"{role} '{s}' matches no video: the JSON 'subset' values, "
                          f"lower-cased, are {sorted(lowered)}{hint}")
    if len(cfg["val_split"]) > 1:
        rep.warn(sec, f"val_split has {len(cfg['val_split'])} entries; evaluation scores "
                 f"only the first, '{cfg['val_split'][0]}'")
    for s in splits:
        if s not in lowered and s not in list(cfg["train_split"]) + list(cfg["val_split"]):
            rep.error(sec, f"split '{s}' (--split) matches no video")

    # the data sets' own rules (libs/datasets/validation.py): what they refuse is an error
    # here, what they warn about a warning
    dedup = remove_duplicate_annotations if name == "anet" else None
    for finding in validate_database(
            database, splits, (lambda v: dedup(v.get("annotations") or [])) if dedup else None):
        (rep.error if finding.severity == "error" else rep.warn)(sec, finding.message(SHOW))

    # label dictionary over all videos of all subsets, as the datasets build it
    ids_of: Dict[str, set] = defaultdict(set)
    labels_of: Dict[Any, set] = defaultdict(set)
    no_ann = [vid for vid, video in database.items() if "annotations" not in video]
    if no_ann and name != "ego4d":
        rep.warn(sec, f"{len(no_ann)} video(s) have no 'annotations' key (the original "
                 f"'{name}' loader needs it; use [] for no actions): {_first(no_ann)}")
    for vid, video in database.items():
        for act in video.get("annotations") or []:
            if isinstance(act, dict) and {"label", "label_id", "segment"} <= set(act):
                ids_of[str(act["label"])].add(act["label_id"])
                labels_of[act["label_id"]].add(str(act["label"]))
    class_agnostic = name == "anet" and num_classes == 1
    bad_ids = sorted((i for i in labels_of
                      if not (isinstance(i, int) and not isinstance(i, bool)
                              and 0 <= i < num_classes)), key=str)
    if bad_ids and not class_agnostic:
        rep.error(sec, f"label_id(s) {_first([repr(i) for i in bad_ids])} outside "
                  f"[0, {num_classes}) (dataset.num_classes {num_classes}; ids are 0-based)")
    msg = _class_rule(name, len(ids_of), num_classes)
    if msg:
        rep.error(sec, msg)
    elif name == "epic" and len(ids_of) < num_classes:
        used = {i for v in ids_of.values() for i in v}
        empty = [i for i in range(num_classes) if i not in used]
        rep.warn(sec, f"{len(empty)} class id(s) have no annotation ({_first(map(str, empty))});"
                 " their classifier bias is set very negative")
    rep.info(sec, f"{len(ids_of)} classes (dataset.num_classes {num_classes}"
             + (", class-agnostic: every label becomes 0" if class_agnostic else "") + ")")

    # per video of the checked splits
    videos: Dict[str, Dict[str, Any]] = {}
    no_fps, no_dur = [], []
    for vid, video in database.items():
        subset = str(video.get("subset", "")).lower()
        if subset not in splits:
            continue
        fps = ds["default_fps"] if ds["default_fps"] is not None else video.get("fps")
        if fps is None:
            no_fps.append(vid)
        duration = video.get("duration")
        if duration is None:
            no_dur.append(vid)
        segs = []
        for act in video.get("annotations") or []:
            seg = act.get("segment") if isinstance(act, dict) else None
            if (isinstance(seg, (list, tuple)) and len(seg) == 2
                    and all(isinstance(x, (int, float)) for x in seg)):
                segs.append((float(seg[0]), float(seg[1])))  # rules: validate_database
        videos[vid] = {"subset": subset, "fps": fps, "duration": duration, "segments": segs}
    if no_fps:
        rep.error(sec, f"{len(no_fps)} video(s) have no 'fps' and dataset.default_fps is not "
                  f"set: {_first(no_fps)}")
    if no_dur:
        if name == "anet":
            rep.error(sec, f"{len(no_dur)} video(s) have no 'duration' (required by anet): "
                      f"{_first(no_dur)}")
        else:
            rep.info(sec, f"{len(no_dur)} video(s) have no 'duration': the segment-end and "
                     f"feature-length checks skip them ({_first(no_dur)})")
    per_split = Counter(v["subset"] for v in videos.values())
    acts = Counter()
    for v in videos.values():
        acts[v["subset"]] += len(v["segments"])
    for s in splits:
        rep.info(sec, f"split '{s}': {per_split[s]} videos, {acts[s]} actions")
    return videos


def _expected_len(video: Dict[str, Any], ds: Dict[str, Any]) -> Optional[float]:
    """Feature steps the annotations imply: duration * fps / feat_stride (None if unknown)."""
    if video["duration"] is None or video["fps"] is None or ds["feat_stride"] <= 0:
        return None
    return float(video["duration"]) * float(video["fps"]) / ds["feat_stride"]


def _check_features(rep: Report, cfg: Dict[str, Any], database: Dict[str, Any],
                    videos: Dict[str, Dict[str, Any]], full_scan: bool) -> Dict[str, int]:
    """Feature-file checks; returns the length T of every readable video."""
    sec = "features"
    name, ds = cfg["dataset_name"], cfg["dataset"]
    feats = _Features(name, ds)
    lengths: Dict[str, int] = {}
    missing_loc = feats.missing_locations()
    if missing_loc:
        what = "feature file" if feats.h5_file else "feature folder"
        rep.error(sec, f"{what} not found: {', '.join(missing_loc)}")
        return lengths
    try:
        dim_cfg = ds["input_dim"]
        dim = int(sum(dim_cfg)) if isinstance(dim_cfg, (list, tuple)) else int(dim_cfg)
        if feats.h5_file:
            rep.info(sec, f"location: HDF5 file {feats.h5_file}; dataset name = "
                     f"{feats.prefix!r} + video id")
        else:
            rep.info(sec, "location: " + " + ".join(feats.folders)
                     + f"; file name = {feats.prefix!r} + video id + {feats.ext!r}")

        # missing / extra files
        missing = [v for v in videos if not feats.exists(v)]
        missing_set = set(missing)
        stored = feats.stored_ids()
        extra = [v for v in stored if v not in database]
        rep.info(sec, f"{len(stored)} feature files, {len(videos) - len(missing)} of "
                 f"{len(videos)} videos of the checked splits have them")
        if missing:
            val = set(cfg["val_split"])
            in_val = [v for v in missing if videos[v]["subset"] in val]
            example = feats.paths(missing[0])[0]
            if name in ("thumos", "ego4d") and not in_val:
                rep.warn(sec, f"{len(missing)} video(s) have no feature file and are skipped "
                         f"by the '{name}' data set: {_first(missing)} (e.g. {example})")
            else:
                why = ("their ground truth still counts in the evaluation (lower mAP)"
                       if name in ("thumos", "ego4d") else f"the '{name}' data set needs them")
                rep.error(sec, f"{len(missing)} video(s) have no feature file; {why}: "
                          f"{_first(missing)} (e.g. {example})")
        if extra:
            rep.warn(sec, f"{len(extra)} feature file(s) belong to no video of the JSON: "
                     f"{_first(extra)} (check file_prefix / file_ext or the video ids)")

        # shapes
        transposed, wrong_dim, not_2d, zero, unequal, unreadable = [], [], [], [], [], []
        for vid in videos:
            if vid in missing_set:
                continue
            try:
                shapes = feats.shapes(vid)
            except _READ_ERRORS as err:  # e.g. pickled objects in an .npy: never unpickled
                unreadable.append(f"{vid} ({feats.paths(vid)[0]}: {err})")
                continue
            if any(len(s) != 2 for s in shapes):
                not_2d.append(f"{vid} {shapes}")
                continue
            if len({s[0] for s in shapes}) != 1:
                unequal.append(f"{vid} {shapes}")
                continue
            num_steps, width = shapes[0][0], sum(s[1] for s in shapes)
            if num_steps == 0:
                zero.append(vid)
                continue
            if width != dim:
                if num_steps == dim:
                    transposed.append(f"{vid} {shapes[0]}")
                else:
                    wrong_dim.append(f"{vid} {tuple(shapes[0]) if len(shapes) == 1 else shapes}")
                continue
            lengths[vid] = num_steps
        if unreadable:
            rep.error(sec, f"{len(unreadable)} video(s) have feature files that cannot be "
                      f"read as numeric arrays: {_first(unreadable)}")
        if not_2d:
            rep.error(sec, f"{len(not_2d)} video(s) have features that are not 2-d (T, C): "
                      f"{_first(not_2d)}")
        if unequal:
            rep.error(sec, f"{len(unequal)} video(s) have different lengths T in the folders "
                      f"(they must share T): {_first(unequal)}")
        if zero:
            rep.error(sec, f"{len(zero)} video(s) have zero-length features: {_first(zero)}")
        if transposed:
            rep.error(sec, f"{len(transposed)} video(s) have features stored transposed (C, T) "
                      f"with C = input_dim {dim} first; save them as (T, C), e.g. "
                      f"np.save(path, feats.T): {_first(transposed)}")
        if wrong_dim:
            rep.error(sec, f"{len(wrong_dim)} video(s) have a feature width other than "
                      f"dataset.input_dim {dim_cfg}: {_first(wrong_dim)}")
        if lengths:
            ts = np.array(list(lengths.values()))
            rep.info(sec, f"feature length T: min {ts.min()}, median {int(np.median(ts))}, "
                     f"max {ts.max()}")

        # NaN / inf
        ids = list(lengths)
        if not full_scan and len(ids) > NAN_SAMPLE:
            pick = np.random.default_rng(0).choice(len(ids), NAN_SAMPLE, replace=False)
            ids = [ids[i] for i in sorted(pick)]
            scope = (f"a sample of {len(ids)} of {len(lengths)} videos (--full-scan checks "
                     "all)")
        else:
            scope = f"all {len(ids)} videos"
        bad = [v for v in ids if not _finite(feats, v)]
        if bad:
            rep.error(sec, f"NaN/inf values in {len(bad)} video(s) of {scope}: {_first(bad)}")
        else:
            rep.info(sec, f"NaN/inf: none in {scope}")
    finally:
        feats.close()

    # T vs duration * fps / feat_stride
    if not (name == "anet" and ds["feat_stride"] <= 0):
        off = []
        for vid, num_steps in lengths.items():
            exp = _expected_len(videos[vid], ds)
            if exp is None or exp <= 0:
                continue
            ratio = num_steps / exp
            slack = ds["num_frames"] / ds["feat_stride"] + 2  # the last window, rounding
            if (ratio > T_RATIO_TOL or ratio < 1 / T_RATIO_TOL) and abs(num_steps - exp) > slack:
                off.append((vid, exp, num_steps, ratio))
        if off:
            guess = ds["feat_stride"] / float(np.median([r for *_, r in off]))
            guess_txt = (f"{round(guess)}" if abs(guess - round(guess)) < 0.1 * guess
                         else f"{guess:.3g}")
            examples = _first([f"{v}: expected T ~{e:.0f}, found T {t} (ratio {r:.2f})"
                               for v, e, t, r in off], 3)
            rep.warn(sec, f"{len(off)} video(s) have a feature length far from duration * fps "
                     f"/ feat_stride ({ds['feat_stride']}): {examples}; if most videos are "
                     f"off by the same ratio, feat_stride is probably "
                     f"{guess_txt} (or fps / default_fps is wrong)")
    return lengths


def _check_grid(rep: Report, cfg: Dict[str, Any], videos: Dict[str, Dict[str, Any]],
                lengths: Dict[str, int]) -> None:
    """Sequence lengths vs max_seq_len, and action lengths vs the regression ranges."""
    name, ds, model = cfg["dataset_name"], cfg["dataset"], cfg["model"]
    sec = "sequence lengths"
    max_len, rate = ds["max_seq_len"], ds["downsample_rate"]
    div = max_div_factor(model)
    buffer_len = max_len * model["max_buffer_len_factor"]
    upsample = name == "anet" and ds["force_upsampling"]
    rep.info(sec, f"max_seq_len {max_len}, max_div_factor {div}, point buffer "
             f"{buffer_len:g} (max_seq_len * max_buffer_len_factor)")
    train, val = set(cfg["train_split"]), set(cfg["val_split"])
    grid_len = {v: (max_len if upsample else math.ceil(t / rate)) for v, t in lengths.items()}
    if upsample:
        rep.info(sec, f"anet force_upsampling: every video is resized to {max_len} steps")
        if ds["feat_stride"] <= 0:
            longer = [v for v, t in lengths.items() if t > max_len]
            if longer:
                rep.error(sec, f"{len(longer)} video(s) have more fixed-length features than "
                          f"max_seq_len {max_len}: {_first(longer)}")
    else:
        tr = [v for v in grid_len if videos[v]["subset"] in train]
        cropped = [v for v in tr if grid_len[v] > max_len]
        if tr:
            pct = 100.0 * len(cropped) / len(tr)
            line = (f"training: {len(cropped)} of {len(tr)} videos ({pct:.0f}%) are longer "
                    f"than max_seq_len and randomly cropped to it each epoch")
            (rep.warn if pct > 50 else rep.info)(sec, line + (
                "; consider a larger max_seq_len" if pct > 50 else ""))
        ev = [v for v in grid_len if videos[v]["subset"] in val]
        padded = {v: max_len if grid_len[v] <= max_len else
                  math.ceil(grid_len[v] / div) * div for v in ev}
        if ev:
            n_long = sum(1 for v in ev if grid_len[v] > max_len)
            rep.info(sec, f"inference: {len(ev) - n_long} videos padded to {max_len}, {n_long} "
                     f"longer ones padded to a multiple of {div} (up to {max(padded.values())})")
        over = [f"{v} (T {grid_len[v]} -> {p})" for v, p in padded.items() if p > buffer_len]
        if over:
            rep.error(sec, f"{len(over)} evaluation video(s) are longer than the point buffer "
                      f"{buffer_len:g}; raise model.max_buffer_len_factor: {_first(over)}")

    # actions in grid units (§2.5) vs the regression ranges (§4.1)
    sec = "actions vs regression ranges"
    ranges = model["regression_range"]
    strides = [model["scale_factor"] ** i
               for i in range(model["fpn_start_level"], model["backbone_arch"][-1] + 1)]
    per_level: Counter = Counter()
    lengths_grid: List[float] = []
    too_long, no_level, too_short, lost = [], [], [], []
    offset_frames = 0.5 * ds["num_frames"]
    for vid, video in videos.items():
        if video["fps"] is None or not video["segments"]:
            continue
        if upsample:
            if vid not in lengths or ds["feat_stride"] <= 0:
                if video["duration"] is None:
                    continue
                stride = float(video["duration"]) * float(video["fps"]) / max_len
            else:
                stride = ((lengths[vid] - 1) * ds["feat_stride"] + ds["num_frames"]) / max_len
            offset = 0.5
        else:
            stride = ds["feat_stride"] * rate
            offset = offset_frames / stride
        for start, end in video["segments"]:
            length = (end - start) * float(video["fps"]) / stride
            if length <= 0:
                continue
            lengths_grid.append(length)
            half = length / 2.0  # the centre point's regression target max(left, right)
            level = next((i for i, (lo, hi) in enumerate(ranges) if lo <= half <= hi), None)
            if level is None:
                no_level.append(vid)
            else:
                per_level[level] += 1
            if length > ranges[-1][1]:
                too_long.append(vid)
            if length < 1.0:
                too_short.append(vid)
            if (video["subset"] in train and not upsample
                    and ds["trunc_thresh"] * length > max_len + 2 * offset):
                lost.append(vid)
    if not lengths_grid:
        rep.info(sec, "no actions in the checked splits")
        return
    g = np.array(lengths_grid)
    rep.info(sec, f"{len(g)} actions, length in grid steps: min {g.min():.2f}, median "
             f"{np.median(g):.1f}, max {g.max():.1f}")
    for i, ((lo, hi), s) in enumerate(zip(ranges, strides)):
        rep.info(sec, f"level {i} (stride {s}, range [{lo}, {hi}]): {per_level[i]} actions")
    if no_level:
        rep.warn(sec, f"{len(no_level)} action(s) fall in no regression range (half their "
                 f"length is outside every [lo, hi]) and can never be positives: "
                 f"{_first(sorted(set(no_level)))}")
    if too_long:
        rep.warn(sec, f"{len(too_long)} action(s) are longer than the largest regression "
                 f"range's upper bound {ranges[-1][1]} grid steps: "
                 f"{_first(sorted(set(too_long)))}")
    if too_short:
        rep.warn(sec, f"{len(too_short)} action(s) are shorter than one feature step (the "
                 f"finest level, stride 1) and may get no positive point: "
                 f"{_first(sorted(set(too_short)))}")
    if lost:
        rep.warn(sec, f"{len(lost)} training action(s) are so long that trunc_thresh "
                 f"{ds['trunc_thresh']} of them never fits in max_seq_len {max_len}; they are "
                 f"dropped whenever their video is cropped: {_first(sorted(set(lost)))}")


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
    sec = "config"
    try:
        cfg = load_config(config_path)
    except (ConfigError, FileNotFoundError) as err:
        rep.error(sec, str(err))
        return rep
    ds = cfg["dataset"]
    name = cfg["dataset_name"]
    rep.info(sec, f"{config_path}: dataset_name '{name}', train_split "
             f"{list(cfg['train_split'])}, val_split {list(cfg['val_split'])}")
    rep.info(sec, f"input_dim {ds['input_dim']}, num_classes {ds['num_classes']}, feat_stride "
             f"{ds['feat_stride']}, num_frames {ds['num_frames']}, default_fps "
             f"{ds['default_fps']}, downsample_rate {ds['downsample_rate']}")
    for key in ("json_file", "feat_folder", "file_ext"):
        if ds.get(key) is None:
            rep.error(sec, f"dataset.{key} is not set")
    if rep.errors:
        return rep
    try:
        database = read_annotation_json(ds["json_file"])
    except (FileNotFoundError, ValueError) as err:
        rep.error("annotations", str(err))
        return rep
    if splits is None:
        splits = list(dict.fromkeys(list(cfg["train_split"]) + list(cfg["val_split"])))
    splits = [s.lower() for s in splits]
    videos = _check_annotations(rep, cfg, database, splits)
    lengths = _check_features(rep, cfg, database, videos, full_scan)
    _check_grid(rep, cfg, videos, lengths)
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
