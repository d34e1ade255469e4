"""The config schema: every key with its default, type, choices, range and meaning, in one table.

``DEFAULTS`` (the original's ``libs/core/config.py`` values, docs/reference.md §1.1; tuples where
the
original has tuples) is built from this table, as are the lists of optional keys, types and
choices that validate.py checks. Keys are dotted (``section.key``) in the original's order.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from .checks import (Constraint, Predicate, at_least, crop_range, in_unit_interval, int_or_int_list,
                     is_bool, is_int, is_num, is_str, odd, optional, seq_of,
                     str_or_str_list)

__all__ = ["Key", "SCHEMA", "DEFAULTS", "DERIVED_MODEL_KEYS", "SECTIONS", "build_defaults",
           "optional_keys"]

BOOL = "true or false"
INT = "an integer"
NUM = "a number"


@dataclass(frozen=True)
class Key:
    """One config key.

    ``inserted`` keys are merged into every loaded config with ``default``; the others are
    optional: accepted and checked when a YAML file sets them, never inserted (``default`` then
    says what the code assumes when the key is absent, ``None`` for "nothing").
    """

    check: Predicate
    expected: str
    default: Any = None
    inserted: bool = True
    choices: Tuple[Any, ...] = ()
    constraint: Optional[Constraint] = None
    doc: str = ""


def _k(default: Any, check: Predicate, expected: str, doc: str = "", **kw: Any) -> Key:
    return Key(check, expected, default, True, doc=doc, **kw)


def _opt(check: Predicate, expected: str, doc: str, absent: Any = None, **kw: Any) -> Key:
    return Key(check, expected, absent, False, doc=doc, **kw)


def _choice(default: str, choices: Tuple[str, ...], expected: str, doc: str = "") -> Key:
    return _k(default, is_str, expected, doc, choices=choices)


_PAIR = seq_of(is_num, 2)
_PADDING = ("minimal", "original")

SCHEMA: Dict[str, Key] = {
    "init_rand_seed": _k(1234567891, is_int, INT, "random seed; a large number is preferred"),
    "dataset_name": _k("epic", is_str, "a dataset registry name (string)"),
    "devices": _k(["cuda:0"], str_or_str_list,
                  "a list of device strings such as ['cuda:0'] or ['cpu']",
                  "single gpu by default (falls back to CPU when there is none)"),
    "train_split": _k(("training",), str_or_str_list,
                      "a list of subset names such as ['training']"),
    "val_split": _k(("validation",), str_or_str_list,
                    "a list of subset names such as ['validation']"),
    "model_name": _k("LocPointTransformer", is_str, "a meta-architecture name (string)"),
    "output_folder": _opt(is_str, "a folder path (string)",
                          "where train.py writes (the shipped configs set it)"),
    "faithful": _opt(is_bool, BOOL, "true selects the original's training procedure and "
                     "arithmetic everywhere at once", absent=False),
    # dataset
    "dataset.feat_stride": _k(16, is_num, "a number (frames between features)",
                              "temporal stride of the feats"),
    "dataset.num_frames": _k(32, is_num, "a number (frames per feature)",
                             "number of frames for each feat"),
    "dataset.default_fps": _k(None, optional(is_num), "a number or ~ (read fps from the json)",
                              "default fps; None reads it from the json file"),
    "dataset.input_dim": _k(2304, int_or_int_list, "an integer or a list of integers",
                            "input feat dim"),
    "dataset.num_classes": _k(97, is_int, INT, "number of classes", constraint=at_least(1)),
    "dataset.downsample_rate": _k(1, is_int, INT, "feature downsampling, 1 = original resolution",
                                  constraint=at_least(1)),
    "dataset.max_seq_len": _k(2304, is_int, INT, "max sequence length during training",
                              constraint=at_least(1)),
    "dataset.trunc_thresh": _k(0.5, is_num, "a number in [0, 1]", "threshold for truncating an "
                               "action", constraint=in_unit_interval(closed=True)),
    "dataset.crop_ratio": _k(None, optional(_PAIR), "~ or a list of two numbers [lo, hi]",
                             "e.g. (0.9, 1.0) enables random feature cropping",
                             constraint=crop_range),
    "dataset.force_upsampling": _k(False, is_bool, BOOL, "resize the features to max_seq_len "
                                   "(ActivityNet)"),
    "dataset.json_file": _opt(is_str, "a file path (string)", "the annotation file"),
    "dataset.feat_folder": _opt(str_or_str_list, "a folder path or a list of folder paths",
                                "where the feature files are"),
    "dataset.file_prefix": _opt(optional(is_str), "a string or ~", "feature file name prefix"),
    "dataset.file_ext": _opt(is_str, "a file extension such as .npy", "feature file extension"),
    # loader
    "loader.batch_size": _k(8, is_int, INT, constraint=at_least(1)),
    "loader.num_workers": _k(4, is_int, INT, constraint=at_least(0)),
    # model (network architecture)
    "model.backbone_type": _choice("convTransformer", ("convTransformer", "conv"),
                                   "a backbone name"),
    "model.fpn_type": _choice("identity", ("fpn", "identity"), "a neck name"),
    "model.backbone_arch": _k((2, 2, 5), seq_of(is_int, 3),
                              "a list of three integers [#embd convs, #stem, #branch]"),
    "model.scale_factor": _k(2, is_int, INT, "scale factor between pyramid levels",
                             constraint=at_least(1)),
    "model.regression_range": _k([(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)],
                                 seq_of(_PAIR), "a list of [lo, hi] pairs, one per pyramid level",
                                 "regression range for pyramid levels"),
    "model.n_head": _k(4, is_int, INT, "number of heads in self-attention", constraint=at_least(1)),
    "model.n_mha_win_size": _k(-1, int_or_int_list, "an integer or a list of integers",
                               "window size for self attention; <= 1 for global attention"),
    "model.embd_kernel_size": _k(3, is_int, INT, "kernel size of the embedding convs",
                                 constraint=odd),
    "model.embd_dim": _k(512, int_or_int_list, "an integer or a list of integers",
                         "(output) feature dim of the embedding network"),
    "model.embd_with_ln": _k(True, is_bool, BOOL, "norm after the embedding convs"),
    "model.fpn_dim": _k(512, is_int, INT, "feat dim for FPN", constraint=at_least(1)),
    "model.fpn_with_ln": _k(True, is_bool, BOOL, "layer norm at the end of the fpn outputs"),
    "model.fpn_start_level": _k(0, is_int, INT, "starting level for fpn"),
    "model.head_dim": _k(512, is_int, INT, "feat dim for head", constraint=at_least(1)),
    "model.head_kernel_size": _k(3, is_int, INT, "kernel size for reg/cls heads", constraint=odd),
    "model.head_num_layers": _k(3, is_int, INT, "layers in a head (including the last)",
                                constraint=at_least(1)),
    "model.head_with_ln": _k(True, is_bool, BOOL, "layer norm in the heads"),
    "model.max_buffer_len_factor": _k(6.0, is_num, NUM, "max length of the buffered points"),
    "model.use_abs_pe": _k(False, is_bool, BOOL, "absolute position encoding on the embedding"),
    "model.use_rel_pe": _k(False, is_bool, BOOL, "relative position encoding in attention"),
    # train_cfg
    "train_cfg.center_sample": _choice("radius", ("radius", "none"), "'radius' or 'none'",
                                       "center sampling"),
    "train_cfg.center_sample_radius": _k(1.5, is_num, NUM),
    "train_cfg.loss_weight": _k(1.0, is_num, "a number (<= 0 selects the adaptive weight)",
                                "weight of the regression loss"),
    "train_cfg.cls_prior_prob": _k(0.01, is_num, NUM),
    "train_cfg.init_loss_norm": _k(2000, is_num, NUM),
    "train_cfg.clip_grad_l2norm": _k(-1, is_num, "a number (<= 0 disables clipping)",
                                     "gradient clipping, not needed for pre-LN transformer"),
    "train_cfg.head_empty_cls": _k([], seq_of(is_int), "a list of class ids",
                                   "cls head without data (a fix to epic-kitchens / thumos)"),
    "train_cfg.dropout": _k(0.0, is_num, "a number in [0, 1)", "dropout ratio of transformers",
                            constraint=in_unit_interval(closed=False)),
    "train_cfg.droppath": _k(0.1, is_num, "a number in [0, 1)", "drop path ratio",
                             constraint=in_unit_interval(closed=False)),
    "train_cfg.label_smoothing": _k(0.0, is_num, "a number in [0, 1)", "label smoothing (> 0)",
                                    constraint=in_unit_interval(closed=False)),
    "train_cfg.padding": _opt(is_str, "'minimal' or 'original'", "padding rule of a training "
                              "forward (new)", absent="minimal", choices=_PADDING),
    # test_cfg
    "test_cfg.pre_nms_thresh": _k(0.001, is_num, NUM),
    "test_cfg.pre_nms_topk": _k(5000, is_int, INT),
    "test_cfg.iou_threshold": _k(0.1, is_num, NUM),
    "test_cfg.min_score": _k(0.01, is_num, NUM),
    "test_cfg.max_seg_num": _k(1000, is_int, INT),
    "test_cfg.nms_method": _choice("soft", ("soft", "hard", "none"), "'soft', 'hard' or 'none'"),
    "test_cfg.nms_sigma": _k(0.5, is_num, NUM),
    "test_cfg.duration_thresh": _k(0.05, is_num, NUM),
    "test_cfg.multiclass_nms": _k(True, is_bool, BOOL),
    "test_cfg.ext_score_file": _k(None, optional(is_str), "a file path or ~"),
    "test_cfg.voting_thresh": _k(0.75, is_num, "a number (<= 0 disables voting)"),
    "test_cfg.padding": _opt(is_str, "'minimal' or 'original'", "padding rule of an inference "
                             "forward (new; docs/reference.md §3.10 is 'original')",
                             absent="minimal", choices=_PADDING),
    # opt (optimizer and schedule)
    "opt.type": _choice("AdamW", ("AdamW", "SGD"), "'AdamW' or 'SGD'"),
    "opt.momentum": _k(0.9, is_num, NUM),
    "opt.weight_decay": _k(0.0, is_num, NUM),
    "opt.learning_rate": _k(1e-3, is_num, NUM),
    "opt.epochs": _k(30, is_int, INT, "excluding the warmup epochs"),
    "opt.warmup": _k(True, is_bool, BOOL),
    "opt.warmup_epochs": _k(5, is_int, INT),
    "opt.schedule_type": _choice("cosine", ("cosine", "multistep"), "'cosine' or 'multistep'"),
    "opt.schedule_steps": _k([], seq_of(is_num), "a list of epochs",
                             "multistep milestones, in epochs excluding warmup"),
    "opt.schedule_gamma": _k(0.1, is_num, NUM),
    "opt.early_stop_epochs": _opt(is_int, INT, "train.py stops after this many epochs"),
    "opt.fused": _opt(is_bool, BOOL, "false restores the original's per-parameter optimizer "
                      "loop (new)", absent=True),
}

# Keys of the model section filled in by derive_keys (never needed in a YAML file).
DERIVED_MODEL_KEYS = ("input_dim", "num_classes", "max_seq_len", "train_cfg", "test_cfg")


def _sections() -> Tuple[str, ...]:
    names = []
    for dotted in SCHEMA:
        section = dotted.rpartition(".")[0]
        if section and section not in names:
            names.append(section)
    return tuple(names)


SECTIONS = _sections()


def build_defaults(schema: Mapping[str, Key] = SCHEMA) -> Dict[str, Any]:
    """The nested defaults dict (inserted keys only, in schema order; fresh objects)."""
    out: Dict[str, Any] = {}
    for dotted, key in schema.items():
        if not key.inserted:
            continue
        section, _, name = dotted.rpartition(".")
        node = out.setdefault(section, {}) if section else out
        node[name] = copy.deepcopy(key.default)
    return out


def optional_keys(section: str) -> Tuple[str, ...]:
    """Names of the optional (accepted, never inserted) keys of ``section`` ('' = top level)."""
    return tuple(dotted.rpartition(".")[2] for dotted, key in SCHEMA.items()
                 if not key.inserted and dotted.rpartition(".")[0] == section)


DEFAULTS: Dict[str, Any] = build_defaults()
