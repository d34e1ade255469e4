"""Configuration: YAML loading with the original merge rules, derived keys, saving.

Behaviour follows the original's ``libs/core/config.py`` (docs/reference.md §1):

* ``DEFAULTS`` holds the same keys and values (tuples where the original has tuples); it is
  built from the one declarative table of keys in :mod:`libs.core.schema`;
* the YAML is parsed with PyYAML's implicit types, exactly as the original's ``FullLoader``
  (so ``1.e-4`` is a float, ``1e-4`` a string, ``~`` None), but by a safe loader: only plain
  scalars, lists, mappings and ``!!python/tuple`` are constructed; a tag naming a Python object
  or function is refused with the file named (a config file cannot run or reference code);
* defaults are merged *into* the YAML dict (the YAML wins, sub-dicts recurse, YAML-only keys stay);
* the derived keys ``model.{input_dim, num_classes, max_seq_len}`` are copied from ``dataset``
  and ``model.train_cfg`` / ``model.test_cfg`` are the ``train_cfg`` / ``test_cfg`` dicts
  themselves, so code that edits ``cfg['train_cfg']`` before building the model (as the
  original ``train.py`` does with ``head_empty_cls``) keeps working.

What is new (none of it changes a loaded value):

* defaults are deep-copied: loading twice or mutating a result never changes ``DEFAULTS``;
* an unknown key raises :class:`ConfigError` naming the file, the dotted key and the closest
  valid names, and types and ranges are checked up front (:mod:`libs.core.validate`);
* :func:`save_config` writes the resolved config as YAML that :func:`load_config` reads back to
  an equal dict; :func:`format_config` gives the original's ``config.txt`` text.

This package imports nothing from the rest of ``libs`` and does not import torch.
"""
from __future__ import annotations

import copy
import os
import pprint
from typing import Any, Dict, Mapping, Optional

import yaml

from .atomic import atomic_open
from .schema import DEFAULTS, DERIVED_MODEL_KEYS
from .validate import ConfigError, check_known_keys, max_div_factor, validate_config

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
    """Fills the derived keys of docs/reference.md §1.3 in place and returns ``cfg``.

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


class _ConfigLoader(yaml.SafeLoader):
    """``SafeLoader`` (same implicit resolvers as ``FullLoader``) plus ``!!python/tuple``, the
    one Python tag :func:`save_config` writes."""


_ConfigLoader.add_constructor(
    "tag:yaml.org,2002:python/tuple",
    lambda loader, node: tuple(loader.construct_sequence(node, deep=True)))


def _read_yaml(path: str) -> Dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file does not exist: {path}")
    with open(path, "r", encoding="utf-8") as f:
        try:
            data = yaml.load(f, Loader=_ConfigLoader)
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
    defaults = DEFAULTS if defaults is None else dict(defaults)
    if validate:
        # unknown keys are checked before merging so the message points at the file's own key
        check_known_keys(cfg, defaults, config_file)
    _merge(copy.deepcopy(defaults), cfg)
    derive_keys(cfg)
    if validate:
        validate_config(cfg, source=config_file)
    return cfg


def _canonical(cfg: Mapping[str, Any]) -> Dict[str, Any]:
    """A deep copy without the derived model keys (they are recomputed on load)."""
    out = copy.deepcopy(dict(cfg))
    out["model"] = {k: v for k, v in out["model"].items() if k not in DERIVED_MODEL_KEYS}
    return out


def save_config(cfg: Mapping[str, Any], path: str) -> None:
    """Writes the resolved config as YAML; ``load_config(path)`` returns an equal dict.

    Tuples are kept as tuples (PyYAML ``!!python/tuple`` tags, which the config loader reads).
    The file is written atomically (libs.core.atomic).
    """
    text = yaml.dump(_canonical(cfg), Dumper=yaml.Dumper, sort_keys=False,
                     default_flow_style=None, width=100)
    with atomic_open(path, "w") as f:
        f.write("# resolved ActionFormer config (defaults merged); "
                "load with libs.core.load_config\n")
        f.write(text)


def format_config(cfg: Mapping[str, Any]) -> str:
    """The original's ``config.txt`` text: ``pprint`` of the config with sorted keys."""
    return pprint.pformat(cfg)
