"""Feature-file checks of a data-set check: presence, shapes, NaN/inf, length vs duration."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from .feature_files import READ_ERRORS, FeatureFiles
from .report import Report, first_ids

SEC = "features"
NAN_SAMPLE = 20  # videos scanned for NaN/inf without --full-scan
T_RATIO_TOL = 1.25  # feature length vs duration: tolerated ratio either way
Videos = Dict[str, Dict[str, Any]]


def check_features(rep: Report, cfg: Dict[str, Any], database: Dict[str, Any],
                   videos: Videos, full_scan: bool) -> Dict[str, int]:
    """Feature-file checks; returns the length T of every readable video."""
    name, ds = cfg["dataset_name"], cfg["dataset"]
    feats = FeatureFiles(name, ds)
    lengths: Dict[str, int] = {}
    missing_loc = feats.missing_locations()
    if missing_loc:
        what = "feature file" if feats.h5_file else "feature folder"
        rep.error(SEC, f"{what} not found: {', '.join(missing_loc)}")
        return lengths
    try:
        _report_location(rep, feats)
        missing = _check_presence(rep, cfg, feats, database, videos)
        lengths = _check_shapes(rep, ds["input_dim"], feats,
                                [v for v in videos if v not in missing])
        _check_finite(rep, feats, list(lengths), full_scan)
    finally:
        feats.close()
    if not (name == "anet" and ds["feat_stride"] <= 0):
        _check_lengths(rep, ds, videos, lengths)
    return lengths


def _report_location(rep: Report, feats: FeatureFiles) -> None:
    """Where the features are read from and how a file is named."""
    if feats.h5_file:
        rep.info(SEC, f"location: HDF5 file {feats.h5_file}; dataset name = "
                 f"{feats.prefix!r} + video id")
    else:
        rep.info(SEC, "location: " + " + ".join(feats.folders)
                 + f"; file name = {feats.prefix!r} + video id + {feats.ext!r}")


def _check_presence(rep: Report, cfg: Dict[str, Any], feats: FeatureFiles,
                    database: Dict[str, Any], videos: Videos) -> set:
    """Missing and extra feature files; returns the ids of the videos without features."""
    name = cfg["dataset_name"]
    missing = [v for v in videos if not feats.exists(v)]
    stored = feats.stored_ids()
    extra = [v for v in stored if v not in database]
    rep.info(SEC, f"{len(stored)} feature files, {len(videos) - len(missing)} of "
             f"{len(videos)} videos of the checked splits have them")
    if missing:
        val = set(cfg["val_split"])
        in_val = [v for v in missing if videos[v]["subset"] in val]
        example = feats.paths(missing[0])[0]
        if name in ("thumos", "ego4d") and not in_val:
            rep.warn(SEC, f"{len(missing)} video(s) have no feature file and are skipped "
                     f"by the '{name}' data set: {first_ids(missing)} (e.g. {example})")
        else:
            why = ("their ground truth still counts in the evaluation (lower mAP)"
                   if name in ("thumos", "ego4d") else f"the '{name}' data set needs them")
            rep.error(SEC, f"{len(missing)} video(s) have no feature file; {why}: "
                      f"{first_ids(missing)} (e.g. {example})")
    if extra:
        rep.warn(SEC, f"{len(extra)} feature file(s) belong to no video of the JSON: "
                 f"{first_ids(extra)} (check file_prefix / file_ext or the video ids)")
    return set(missing)


def _classify_shapes(feats: FeatureFiles, vid: str, dim: int, bad: Dict[str, List[str]],
                     lengths: Dict[str, int]) -> None:
    """Files a video under one problem in ``bad``, or its length T in ``lengths``."""
    try:
        shapes = feats.shapes(vid)
    except READ_ERRORS as err:  # e.g. pickled objects in an .npy: never unpickled
        bad["unreadable"].append(f"{vid} ({feats.paths(vid)[0]}: {err})")
        return
    if any(len(s) != 2 for s in shapes):
        bad["not_2d"].append(f"{vid} {shapes}")
    elif len({s[0] for s in shapes}) != 1:
        bad["unequal"].append(f"{vid} {shapes}")
    elif shapes[0][0] == 0:
        bad["zero"].append(vid)
    elif sum(s[1] for s in shapes) != dim:
        if shapes[0][0] == dim:
            bad["transposed"].append(f"{vid} {shapes[0]}")
        else:
            bad["wrong_dim"].append(f"{vid} {tuple(shapes[0]) if len(shapes) == 1 else shapes}")
    else:
        lengths[vid] = shapes[0][0]


def _check_shapes(rep: Report, dim_cfg: Any, feats: FeatureFiles,
                  present: List[str]) -> Dict[str, int]:
    """Shapes (readable, 2-d, equal T across folders, non-empty, width, not transposed)."""
    dim = int(sum(dim_cfg)) if isinstance(dim_cfg, (list, tuple)) else int(dim_cfg)
    bad: Dict[str, List[str]] = {k: [] for k in ("unreadable", "not_2d", "unequal", "zero",
                                                 "transposed", "wrong_dim")}
    lengths: Dict[str, int] = {}
    for vid in present:
        _classify_shapes(feats, vid, dim, bad, lengths)
    messages = {
        "unreadable": "have feature files that cannot be read as numeric arrays",
        "not_2d": "have features that are not 2-d (T, C)",
        "unequal": "have different lengths T in the folders (they must share T)",
        "zero": "have zero-length features",
        "transposed": f"have features stored transposed (C, T) with C = input_dim {dim} first;"
                      f" save them as (T, C), e.g. np.save(path, feats.T)",
        "wrong_dim": f"have a feature width other than dataset.input_dim {dim_cfg}",
    }
    for key, text in messages.items():
        if bad[key]:
            rep.error(SEC, f"{len(bad[key])} video(s) {text}: {first_ids(bad[key])}")
    if lengths:
        ts = np.array(list(lengths.values()))
        rep.info(SEC, f"feature length T: min {ts.min()}, median {int(np.median(ts))}, "
                 f"max {ts.max()}")
    return lengths


def _check_finite(rep: Report, feats: FeatureFiles, ids: List[str], full_scan: bool) -> None:
    """NaN / inf in a sample of the videos (all with ``full_scan``)."""
    total = len(ids)
    if not full_scan and total > NAN_SAMPLE:
        pick = np.random.default_rng(0).choice(total, NAN_SAMPLE, replace=False)
        ids = [ids[i] for i in sorted(pick)]
        scope = f"a sample of {len(ids)} of {total} videos (--full-scan checks all)"
    else:
        scope = f"all {len(ids)} videos"
    bad = [v for v in ids if not feats.finite(v)]
    if bad:
        rep.error(SEC, f"NaN/inf values in {len(bad)} video(s) of {scope}: {first_ids(bad)}")
    else:
        rep.info(SEC, f"NaN/inf: none in {scope}")


def expected_len(video: Dict[str, Any], ds: Dict[str, Any]) -> Optional[float]:
    """Feature steps the annotations imply: duration * fps / feat_stride (None if unknown)."""
    if video["duration"] is None or video["fps"] is None or ds["feat_stride"] <= 0:
        return None
    return float(video["duration"]) * float(video["fps"]) / ds["feat_stride"]


def _check_lengths(rep: Report, ds: Dict[str, Any], videos: Videos,
                   lengths: Dict[str, int]) -> None:
    """T vs duration * fps / feat_stride; a common ratio hints at the right feat_stride."""
    off = []
    for vid, num_steps in lengths.items():
        exp = expected_len(videos[vid], ds)
        if exp is None or exp <= 0:
            continue
        ratio = num_steps / exp
        slack = ds["num_frames"] / ds["feat_stride"] + 2  # the last window, rounding
        if (ratio > T_RATIO_TOL or ratio < 1 / T_RATIO_TOL) and abs(num_steps - exp) > slack:
            off.append((vid, exp, num_steps, ratio))
    if not off:
        return
    guess = ds["feat_stride"] / float(np.median([r for *_, r in off]))
    guess_txt = (f"{round(guess)}" if abs(guess - round(guess)) < 0.1 * guess
                 else f"{guess:.3g}")
    examples = first_ids([f"{v}: expected T ~{e:.0f}, found T {t} (ratio {r:.2f})"
                          for v, e, t, r in off], 3)
    rep.warn(SEC, f"{len(off)} video(s) have a feature length far from duration * fps "
             f"/ feat_stride ({ds['feat_stride']}): {examples}; if most videos are "
             f"off by the same ratio, feat_stride is probably "
             f"{guess_txt} (or fps / default_fps is wrong)")
