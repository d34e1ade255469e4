"""Configuration: defaults, YAML loading with the original merge rules, validation, derived keys.

Behaviour follows the original's ``libs/core/config.py`` (REFERENCE.md §1):

* ``DEFAULTS`` holds the same keys and values (tuples where the original has tuples);
* the YAML is parsed with PyYAML's ``FullLoader`` (so ``1.e-4`` is a float, ``~`` is None);
* defaults are merged *into* the YAML dict (the YAML wins, sub-dicts recurse, YAML-only keys stay);
* the derived keys ``model.{input_dim, num_classes, max_seq_len}`` are copied from ``dataset``
  and ``model.train_cfg`` / ``model.test_cfg`` are the ``train_cfg`` / ``test_cfg`` dicts
  themselves, so code that edits ``cfg['train_cfg']`` before building the model (as the
  original ``train.py`` does with ``head_empty_cls``) keeps working.

What is new (none of it changes a loaded value):

* defaults are deep-copied: loading twice or mutating a result never changes ``DEFAULTS``;
* an unknown key raises :class:`ConfigError` naming the file, the dotted key and the closest
  valid names (the original crashed with a ``TypeError`` for ``dataset``/``model``/``loader``
  and silently ignored typos elsewhere);
* types and ranges are checked up front with messages that name the key (``nms_method``,
  ``center_sample``, ``regression_range`` vs the pyramid levels, ``max_seq_len`` divisibility,
  window sizes, ...), where the original asserted deep inside the model;
* :func:`save_config` writes the resolved config as YAML that :func:`load_config` reads back to
  an equal dict; :func:`format_config` gives the original's ``config.txt`` text.

This module imports nothing from ``libs`` and does not import torch.
"""
from __future__ import annotations

import copy
import difflib
import os
import pprint
from numbers import Number
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Tuple

import yaml

__all__ = [
    "DEFAULTS",
    "ConfigError",
    "load_default_config",
    "load_config",
    "derive_keys",
    "validate_config",
    "save_config",
    "format_config",
    "max_div_factor",
]

DEFAULTS: Dict[str, Any] = {
    # random seed for reproducibility, a large number is preferred
    "init_rand_seed": 1234567891,
    # dataset loader, specify the dataset here
    "dataset_name": "epic",
    "devices": ["cuda:0"],  # default: single gpu (falls back to CPU when there is none)
    "train_split": ("training",),
    "val_split": ("validation",),
    "model_name": "LocPointTransformer",
    "dataset": {
        # temporal stride of the feats
        "feat_stride": 16,
        # number of frames for each feat
        "num_frames": 32,
        # default fps, may vary across datasets; set to None to read from the json file
        "default_fps": None,
        # input feat dim
        "input_dim": 2304,
        # number of classes
        "num_classes": 97,
        # downsampling rate of features, 1 to use original resolution
        "downsample_rate": 1,
        # max sequence length during training
        "max_seq_len": 2304,
        # threshold for truncating an action
        "trunc_thresh": 0.5,
        # set to a tuple (e.g., (0.9, 1.0)) to enable random feature cropping
        # might not be implemented by the dataloader
        "crop_ratio": None,
        # if true, force upsampling of the input features into a fixed size
        # only used for ActivityNet
        "force_upsampling": False,
    },
    "loader": {
        "batch_size": 8,
        "num_workers": 4,
    },
    # network architecture
    "model": {
        # type of backbone (convTransformer | conv)
        "backbone_type": "convTransformer",
        # type of FPN (fpn | identity)
        "fpn_type": "identity",
        "backbone_arch": (2, 2, 5),
        # scale factor between pyramid levels
        "scale_factor": 2,
        # regression range for pyramid levels
        "regression_range": [(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)],
        # number of heads in self-attention
        "n_head": 4,
        # window size for self attention; <=1 to use full seq (ie global attention)
        "n_mha_win_size": -1,
        # kernel size for embedding network
        "embd_kernel_size": 3,
        # (output) feature dim for embedding network
        "embd_dim": 512,
        # if attach group norm to embedding network
        "embd_with_ln": True,
        # feat dim for FPN
        "fpn_dim": 512,
        # if add ln at the end of fpn outputs
        "fpn_with_ln": True,
        # starting level for fpn
        "fpn_start_level": 0,
        # feat dim for head
        "head_dim": 512,
        # kernel size for reg/cls/center heads
        "head_kernel_size": 3,
        # number of layers in the head (including the final one)
        "head_num_layers": 3,
        # if attach group norm to heads
        "head_with_ln": True,
        # defines the max length of the buffered points
        "max_buffer_len_factor": 6.0,
        # disable abs position encoding (added to input embedding)
        "use_abs_pe": False,
        # use rel position encoding (added to self-attention)
        "use_rel_pe": False,
    },
    "train_cfg": {
        # radius | none (if to use center sampling)
        "center_sample": "radius",
        "center_sample_radius": 1.5,
        "loss_weight": 1.0,  # on reg_loss, use -1 to enable auto balancing
        "cls_prior_prob": 0.01,
        "init_loss_norm": 2000,
        # gradient cliping, not needed for pre-LN transformer
        "clip_grad_l2norm": -1,
        # cls head without data (a fix to epic-kitchens / thumos)
        "head_empty_cls": [],
        # dropout ratios for tranformers
        "dropout": 0.0,
        # ratio for drop path
        "droppath": 0.1,
        # if to use label smoothing (>0.0)
        "label_smoothing": 0.0,
    },
    "test_cfg": {
        "pre_nms_thresh": 0.001,
        "pre_nms_topk": 5000,
        "iou_threshold": 0.1,
        "min_score": 0.01,
        "max_seg_num": 1000,
        "nms_method": "soft",  # soft | hard | none
        "nms_sigma": 0.5,
        "duration_thresh": 0.05,
        "multiclass_nms": True,
        "ext_score_file": None,
        "voting_thresh": 0.75,
    },
    # optimizer (for training)
    "opt": {
        # solver
        "type": "AdamW",  # SGD or AdamW
        # solver params
        "momentum": 0.9,
        "weight_decay": 0.0,
        "learning_rate": 1e-3,
        # excluding the warmup epochs
        "epochs": 30,
        # lr scheduler: cosine / multistep
        "warmup": True,
        "warmup_epochs": 5,
        "schedule_type": "cosine",
        # in #epochs excluding warmup
        "schedule_steps": [],
        "schedule_gamma": 0.1,
    },
}

# Keys that have no default but that the shipped configs set (dataset paths, output folder)
# or that train.py reads when present (early_stop_epochs). They are accepted, not inserted.
OPTIONAL_KEYS: Dict[str, Tuple[str, ...]] = {
    # 'faithful' is new: true selects the original's training procedure and arithmetic
    # everywhere at once (libs/utils/procedure.py)
    "": ("output_folder", "faithful"),
    "dataset": ("json_file", "feat_folder", "file_prefix", "file_ext"),
    # 'fused' is new: false restores the original's per-parameter optimizer loop
    "opt": ("early_stop_epochs", "fused"),
    # new (not in the original): padding rules of the model's forward (REFERENCE §3.10 is
    # 'original'); inference defaults to the exact 'minimal' rule, training to 'original'
    "train_cfg": ("padding",),
    "test_cfg": ("padding",),
}

# Keys of the model section filled in by derive_keys (never needed in a YAML file).
DERIVED_MODEL_KEYS = ("input_dim", "num_classes", "max_seq_len", "train_cfg", "test_cfg")


class ConfigError(ValueError):
    """A config file has an unknown key, a value of the wrong type, or an invalid value."""


# ----------------------------------------------------------------------------------------------
# loading and merging


def load_default_config() -> Dict[str, Any]:
    """Returns a deep copy of the defaults with the derived keys filled in."""
    return derive_keys(copy.deepcopy(DEFAULTS))


def _merge(src: Dict[str, Any], dst: Dict[str, Any]) -> None:
    """Merges ``src`` (defaults) into ``dst`` (the YAML); values already in ``dst`` win.

    The original inserts default sub-dicts by reference; we insert deep copies so that a
    loaded config never shares objects with ``DEFAULTS``.
    """
    for key, value in src.items():
        if key not in dst:
            dst[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(dst[key], dict):
            _merge(value, dst[key])


def derive_keys(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Fills the derived keys of REFERENCE.md §1.3 in place and returns ``cfg``.

    ``model.input_dim / num_classes / max_seq_len`` are copied from ``dataset``;
    ``model.train_cfg`` and ``model.test_cfg`` are set to the ``train_cfg`` and ``test_cfg``
    dicts themselves (as the original), so a later edit of ``cfg['train_cfg']`` reaches the
    model. Call it again after replacing a whole section.
    """
    model, dataset = cfg["model"], cfg["dataset"]
    model["input_dim"] = dataset["input_dim"]
    model["num_classes"] = dataset["num_classes"]
    model["max_seq_len"] = dataset["max_seq_len"]
    model["train_cfg"] = cfg["train_cfg"]
    model["test_cfg"] = cfg["test_cfg"]
    return cfg


def _read_yaml(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file does not exist: {path}")
    with open(path, "r", encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=yaml.FullLoader)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections at the top level, "
                          f"got {type(data).__name__}")
    return data


def load_config(config_file: str, defaults: Optional[Mapping[str, Any]] = None,
                validate: bool = True) -> Dict[str, Any]:
    """Loads a YAML config, merges the defaults into it and fills the derived keys.

    Args:
        config_file: path of the YAML file (the original's format; the shipped configs run
            unchanged).
        defaults: defaults to merge (a deep copy is used); ``DEFAULTS`` when omitted.
        validate: check keys, types and ranges (:func:`validate_config`).

    Returns:
        The resolved config as plain nested dicts.

    Raises:
        FileNotFoundError: the file does not exist.
        ConfigError: unknown key, wrong type or invalid value; the message names the file and
            the dotted key.
    """
    cfg = _read_yaml(config_file)
    if validate:
        # unknown keys are checked before merging so the message points at the file's own key
        _check_known_keys(cfg, DEFAULTS if defaults is None else defaults, config_file)
    _merge(copy.deepcopy(DEFAULTS if defaults is None else dict(defaults)), cfg)
    derive_keys(cfg)
    if validate:
        validate_config(cfg, source=config_file)
    return cfg


# ----------------------------------------------------------------------------------------------
# validation


def _check_known_keys(cfg: Mapping[str, Any], defaults: Mapping[str, Any], source: str) -> None:
    def known(section: str, ref: Mapping[str, Any]) -> Iterable[str]:
        names = list(ref) + list(OPTIONAL_KEYS.get(section, ()))
        if section == "model":
            names += list(DERIVED_MODEL_KEYS)
        return names

    def walk(node: Mapping[str, Any], ref: Mapping[str, Any], section: str) -> None:
        valid = known(section, ref)
        for key, value in node.items():
            dotted = f"{section}.{key}" if section else str(key)
            if key not in valid:
                close = difflib.get_close_matches(str(key), [str(v) for v in valid], n=3,
                                                  cutoff=0.6)
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                where = f"section '{section}'" if section else "the top level"
                raise ConfigError(
                    f"{source}: unknown config key '{dotted}'{hint} "
                    f"(valid keys in {where}: {', '.join(sorted(map(str, valid)))})")
            if isinstance(ref.get(key), dict):
                if not isinstance(value, dict):
                    raise ConfigError(f"{source}: '{dotted}' must be a mapping (a section), "
                                      f"got {value!r}")
                if section == "":
                    walk(value, ref[key], str(key))

    walk(cfg, defaults, "")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, Number) and not isinstance(v, bool)


def _is_seq(v: Any) -> bool:
    return isinstance(v, (list, tuple))


def _int_or_int_list(v: Any) -> bool:
    return _is_int(v) or (_is_seq(v) and len(v) > 0 and all(_is_int(x) for x in v))


def _str_or_str_list(v: Any) -> bool:
    return isinstance(v, str) or (_is_seq(v) and len(v) > 0 and all(isinstance(x, str) for x in v))


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: v is None or check(v)


# dotted key -> (predicate, description of what is expected)
_TYPES: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "init_rand_seed": (_is_int, "an integer"),
    "dataset_name": (lambda v: isinstance(v, str), "a dataset registry name (string)"),
    "devices": (_str_or_str_list, "a list of device strings such as ['cuda:0'] or ['cpu']"),
    "train_split": (_str_or_str_list, "a list of subset names such as ['training']"),
    "val_split": (_str_or_str_list, "a list of subset names such as ['validation']"),
    "model_name": (lambda v: isinstance(v, str), "a meta-architecture name (string)"),
    "output_folder": (lambda v: isinstance(v, str), "a folder path (string)"),
    "dataset.feat_stride": (_is_num, "a number (frames between features)"),
    "dataset.num_frames": (_is_num, "a number (frames per feature)"),
    "dataset.default_fps": (_optional(_is_num), "a number or ~ (read fps from the json)"),
    "dataset.input_dim": (_int_or_int_list, "an integer or a list of integers"),
    "dataset.num_classes": (_is_int, "an integer"),
    "dataset.downsample_rate": (_is_int, "an integer"),
    "dataset.max_seq_len": (_is_int, "an integer"),
    "dataset.trunc_thresh": (_is_num, "a number in [0, 1]"),
    "dataset.crop_ratio": (_optional(lambda v: _is_seq(v) and len(v) == 2
                                     and all(_is_num(x) for x in v)),
                           "~ or a list of two numbers [lo, hi]"),
    "dataset.force_upsampling": (lambda v: isinstance(v, bool), "true or false"),
    "dataset.json_file": (lambda v: isinstance(v, str), "a file path (string)"),
    "dataset.feat_folder": (_str_or_str_list, "a folder path or a list of folder paths"),
    "dataset.file_prefix": (_optional(lambda v: isinstance(v, str)), "a string or ~"),
    "dataset.file_ext": (lambda v: isinstance(v, str), "a file extension such as .npy"),
    "loader.batch_size": (_is_int, "an integer"),
    "loader.num_workers": (_is_int, "an integer"),
    "model.backbone_type": (lambda v: isinstance(v, str), "a backbone name"),
    "model.fpn_type": (lambda v: isinstance(v, str), "a neck name"),
    "model.backbone_arch": (lambda v: _is_seq(v) and len(v) == 3 and all(_is_int(x) for x in v),
                            "a list of three integers [#embd convs, #stem, #branch]"),
    "model.scale_factor": (_is_int, "an integer"),
    "model.regression_range": (lambda v: _is_seq(v) and all(
        _is_seq(r) and len(r) == 2 and all(_is_num(x) for x in r) for r in v),
        "a list of [lo, hi] pairs, one per pyramid level"),
    "model.n_head": (_is_int, "an integer"),
    "model.n_mha_win_size": (_int_or_int_list, "an integer or a list of integers"),
    "model.embd_kernel_size": (_is_int, "an integer"),
    "model.embd_dim": (_int_or_int_list, "an integer or a list of integers"),
    "model.embd_with_ln": (lambda v: isinstance(v, bool), "true or false"),
    "model.fpn_dim": (_is_int, "an integer"),
    "model.fpn_with_ln": (lambda v: isinstance(v, bool), "true or false"),
    "model.fpn_start_level": (_is_int, "an integer"),
    "model.head_dim": (_is_int, "an integer"),
    "model.head_kernel_size": (_is_int, "an integer"),
    "model.head_num_layers": (_is_int, "an integer"),
    "model.head_with_ln": (lambda v: isinstance(v, bool), "true or false"),
    "model.max_buffer_len_factor": (_is_num, "a number"),
    "model.use_abs_pe": (lambda v: isinstance(v, bool), "true or false"),
    "model.use_rel_pe": (lambda v: isinstance(v, bool), "true or false"),
    "train_cfg.center_sample": (lambda v: isinstance(v, str), "'radius' or 'none'"),
    "train_cfg.center_sample_radius": (_is_num, "a number"),
    "train_cfg.loss_weight": (_is_num, "a number (<= 0 selects the adaptive weight)"),
    "train_cfg.cls_prior_prob": (_is_num, "a number"),
    "train_cfg.init_loss_norm": (_is_num, "a number"),
    "train_cfg.clip_grad_l2norm": (_is_num, "a number (<= 0 disables clipping)"),
    "train_cfg.head_empty_cls": (lambda v: _is_seq(v) and all(_is_int(x) for x in v),
                                 "a list of class ids"),
    "train_cfg.dropout": (_is_num, "a number in [0, 1)"),
    "train_cfg.droppath": (_is_num, "a number in [0, 1)"),
    "train_cfg.label_smoothing": (_is_num, "a number in [0, 1)"),
    "test_cfg.pre_nms_thresh": (_is_num, "a number"),
    "test_cfg.pre_nms_topk": (_is_int, "an integer"),
    "test_cfg.iou_threshold": (_is_num, "a number"),
    "test_cfg.min_score": (_is_num, "a number"),
    "test_cfg.max_seg_num": (_is_int, "an integer"),
    "test_cfg.nms_method": (lambda v: isinstance(v, str), "'soft', 'hard' or 'none'"),
    "test_cfg.nms_sigma": (_is_num, "a number"),
    "test_cfg.duration_thresh": (_is_num, "a number"),
    "test_cfg.multiclass_nms": (lambda v: isinstance(v, bool), "true or false"),
    "test_cfg.ext_score_file": (_optional(lambda v: isinstance(v, str)), "a file path or ~"),
    "test_cfg.voting_thresh": (_is_num, "a number (<= 0 disables voting)"),
    "opt.type": (lambda v: isinstance(v, str), "'AdamW' or 'SGD'"),
    "opt.momentum": (_is_num, "a number"),
    "opt.weight_decay": (_is_num, "a number"),
    "opt.learning_rate": (_is_num, "a number"),
    "opt.epochs": (_is_int, "an integer"),
    "opt.warmup": (lambda v: isinstance(v, bool), "true or false"),
    "opt.warmup_epochs": (_is_int, "an integer"),
    "opt.schedule_type": (lambda v: isinstance(v, str), "'cosine' or 'multistep'"),
    "opt.schedule_steps": (lambda v: _is_seq(v) and all(_is_num(x) for x in v),
                           "a list of epochs"),
    "opt.schedule_gamma": (_is_num, "a number"),
    "opt.early_stop_epochs": (_is_int, "an integer"),
    "opt.fused": (lambda v: isinstance(v, bool), "true or false"),
    "faithful": (lambda v: isinstance(v, bool), "true or false"),
    "train_cfg.padding": (lambda v: isinstance(v, str), "'minimal' or 'original'"),
    "test_cfg.padding": (lambda v: isinstance(v, str), "'minimal' or 'original'"),
}

_CHOICES: Dict[str, Tuple[str, ...]] = {
    "model.backbone_type": ("convTransformer", "conv"),
    "model.fpn_type": ("fpn", "identity"),
    "train_cfg.center_sample": ("radius", "none"),
    "test_cfg.nms_method": ("soft", "hard", "none"),
    "opt.type": ("AdamW", "SGD"),
    "opt.schedule_type": ("cosine", "multistep"),
    "train_cfg.padding": ("minimal", "original"),
    "test_cfg.padding": ("minimal", "original"),
}


def _get(cfg: Mapping[str, Any], dotted: str) -> Tuple[bool, Any]:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def max_div_factor(model_cfg: Mapping[str, Any]) -> int:
    """The number every inference input length is padded to a multiple of (REFERENCE §3.10).

    For each pyramid level ``l`` (stride ``s = scale_factor**l``) with window ``w``: ``w > 1``
    needs ``s * 2 * (w // 2)``, global attention needs ``s``; the factor is the maximum.
    """
    arch = model_cfg["backbone_arch"]
    strides = [model_cfg["scale_factor"] ** i
               for i in range(model_cfg.get("fpn_start_level", 0), arch[-1] + 1)]
    windows = model_cfg["n_mha_win_size"]
    if _is_int(windows):
        windows = [windows] * (1 + arch[-1])
    factor = 1
    for s, w in zip(strides, windows):
        factor = max(factor, s * (w // 2) * 2 if w > 1 else s)
    return factor


def validate_config(cfg: Mapping[str, Any], source: str = "<config>") -> None:
    """Checks types and values of a merged config; raises :class:`ConfigError` naming the key."""

    def fail(key: str, msg: str) -> None:
        raise ConfigError(f"{source}: '{key}' {msg}")

    for key, (pred, expected) in _TYPES.items():
        present, value = _get(cfg, key)
        if not present:
            continue
        if not pred(value):
            note = ""
            if isinstance(value, str) and _looks_like_number(value):
                note = (" (PyYAML reads a number like 1e-4 without a dot as a string; "
                        "write 1.0e-4)")
            fail(key, f"must be {expected}, got {value!r}{note}")
    for key, choices in _CHOICES.items():
        present, value = _get(cfg, key)
        if present and value not in choices:
            fail(key, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")

    ds, model, opt = cfg["dataset"], cfg["model"], cfg["opt"]
    for key in ("dataset.num_classes", "dataset.max_seq_len", "dataset.downsample_rate",
                "loader.batch_size", "model.n_head", "model.fpn_dim", "model.head_dim",
                "model.scale_factor", "model.head_num_layers"):
        value = _get(cfg, key)[1]
        if value < 1:
            fail(key, f"must be >= 1, got {value}")
    if cfg["loader"]["num_workers"] < 0:
        fail("loader.num_workers", f"must be >= 0, got {cfg['loader']['num_workers']}")
    if not 0 <= ds["trunc_thresh"] <= 1:
        fail("dataset.trunc_thresh", f"must be in [0, 1], got {ds['trunc_thresh']}")
    if ds["crop_ratio"] is not None:
        lo, hi = ds["crop_ratio"]
        if not 0 < lo <= hi:
            fail("dataset.crop_ratio", f"must be [lo, hi] with 0 < lo <= hi, got {[lo, hi]}")
    for key in ("dropout", "droppath", "label_smoothing"):
        if not 0 <= cfg["train_cfg"][key] < 1:
            fail(f"train_cfg.{key}", f"must be in [0, 1), got {cfg['train_cfg'][key]}")
    if opt["epochs"] < 0 or opt["warmup_epochs"] < 0:
        fail("opt.epochs", "and 'opt.warmup_epochs' must be >= 0")

    # dimensions of the multi-input projection
    if _is_seq(ds["input_dim"]):
        if not _is_seq(model["embd_dim"]) or len(model["embd_dim"]) != len(ds["input_dim"]):
            fail("model.embd_dim", f"must be a list of {len(ds['input_dim'])} integers when "
                 f"dataset.input_dim is a list ({list(ds['input_dim'])}), got "
                 f"{model['embd_dim']!r}")
    elif _is_seq(model["embd_dim"]):
        fail("model.embd_dim", "can only be a list when dataset.input_dim is a list")
    embd_total = sum(model["embd_dim"]) if _is_seq(model["embd_dim"]) else model["embd_dim"]
    if model["backbone_type"] == "convTransformer" and embd_total % model["n_head"] != 0:
        fail("model.embd_dim", f"(total {embd_total}) must be divisible by model.n_head "
             f"({model['n_head']})")
    if model["fpn_type"] == "identity" and embd_total != model["fpn_dim"]:
        fail("model.fpn_dim", f"must equal the embedding dim ({embd_total}) with the "
             f"'identity' neck, got {model['fpn_dim']}")
    for key in ("embd_kernel_size", "head_kernel_size"):
        if model[key] % 2 != 1:
            fail(f"model.{key}", f"must be odd, got {model[key]}")

    # pyramid levels
    arch = model["backbone_arch"]
    if min(arch) < 0:
        fail("model.backbone_arch", f"entries must be >= 0, got {list(arch)}")
    n_levels = arch[2] + 1
    if not 0 <= model["fpn_start_level"] <= arch[2]:
        fail("model.fpn_start_level", f"must be in [0, {arch[2]}], got "
             f"{model['fpn_start_level']}")
    n_fpn_levels = n_levels - model["fpn_start_level"]
    if len(model["regression_range"]) != n_fpn_levels:
        fail("model.regression_range",
             f"must have one [lo, hi] pair per pyramid level: backbone_arch {list(arch)} gives "
             f"{n_fpn_levels} levels, got {len(model['regression_range'])} pairs")
    for lo, hi in model["regression_range"]:
        if lo > hi:
            fail("model.regression_range", f"has a pair with lo > hi: {[lo, hi]}")
    windows = model["n_mha_win_size"]
    if _is_seq(windows):
        if len(windows) != n_levels:
            fail("model.n_mha_win_size", f"must be one integer or a list of {n_levels} "
                 f"(one per level, backbone_arch[2] + 1), got {len(windows)} values")
        windows = list(windows)
    else:
        windows = [windows] * n_levels
    if model["use_rel_pe"]:
        for w in windows:
            if w > 1 and w % 2 == 0:
                fail("model.n_mha_win_size", f"must be odd when use_rel_pe is true, got {w}")
    if model["backbone_type"] == "convTransformer":
        strides = [model["scale_factor"] ** i for i in range(n_levels)]
        for level, (s, w) in enumerate(zip(strides, windows)):
            need = s * (w // 2) * 2 if w > 1 else s
            if ds["max_seq_len"] % need != 0:
                fail("dataset.max_seq_len",
                     f"({ds['max_seq_len']}) must be divisible by fpn stride x window size: "
                     f"level {level} (stride {s}, window {w}) needs a multiple of {need}")
    else:
        top = model["scale_factor"] ** arch[2]
        if ds["max_seq_len"] % top != 0:
            fail("dataset.max_seq_len", f"({ds['max_seq_len']}) must be divisible by the "
                 f"largest fpn stride ({top})")


def _looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------
# writing


def _canonical(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """A deep copy without the derived model keys (they are recomputed on load)."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = {k: v for k, v in out["model"].items() if k not in DERIVED_MODEL_KEYS}
    return out


def save_config(cfg: Mapping[str, Any], path: str) -> None:
    """Writes the resolved config as YAML; ``load_config(path)`` returns an equal dict.

    Tuples are kept as tuples (PyYAML ``!!python/tuple`` tags, which ``FullLoader`` reads).
    The file is written atomically (temporary file, then rename).
    """
    text = yaml.dump(_canonical(cfg), Dumper=yaml.Dumper, sort_keys=False,
                     default_flow_style=None, width=100)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("# resolved ActionFormer config (defaults merged); load with libs.core.load_config\n")
        f.write(text)
    os.replace(tmp, path)


def format_config(cfg: Mapping[str, Any]) -> str:
    """The original's ``config.txt`` text: ``pprint`` of the config with sorted keys."""
    return pprint.pformat(cfg)
