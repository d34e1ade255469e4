"""Config validation: unknown keys, then the schema's types, choices and ranges, then the rules
that tie several keys together (dimensions, pyramid levels, window sizes, sequence length)."""
from __future__ import annotations

import difflib
from typing import Any, Iterable, List, Mapping, NoReturn, Tuple

from .checks import is_int, is_seq, looks_like_number
from .schema import DERIVED_MODEL_KEYS, SCHEMA, optional_keys

__all__ = ["ConfigError", "check_known_keys", "validate_config", "max_div_factor"]


class ConfigError(ValueError):
    """A config file has an unknown key, a value of the wrong type, or an invalid value."""


def _fail(source: str, key: str, msg: str) -> NoReturn:
    raise ConfigError(f"{source}: '{key}' {msg}")


# ----------------------------------------------------------------------------------------------
# unknown keys (checked on the YAML's own dict, before the defaults are merged in)


def _known(section: str, ref: Mapping[str, Any]) -> List[str]:
    names = list(ref) + list(optional_keys(section))
    if section == "model":
        names += list(DERIVED_MODEL_KEYS)
    return names


def _unknown_key(source: str, section: str, key: str, valid: List[str]) -> ConfigError:
    dotted = f"{section}.{key}" if section else key
    close = difflib.get_close_matches(key, [str(v) for v in valid], n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    where = f"section '{section}'" if section else "the top level"
    return ConfigError(f"{source}: unknown config key '{dotted}'{hint} "
                       f"(valid keys in {where}: {', '.join(sorted(map(str, valid)))})")


def check_known_keys(cfg: Mapping[str, Any], defaults: Mapping[str, Any], source: str,
                     section: str = "") -> None:
    """Raises :class:`ConfigError` for a key that is neither in ``defaults`` nor optional.

    Sections (``dataset``, ``model``, ...) must be mappings; their keys are checked one level
    down. The message names the file, the dotted key and the closest valid names.
    """
    valid = _known(section, defaults)
    for key, value in cfg.items():
        dotted = f"{section}.{key}" if section else str(key)
        if key not in valid:
            raise _unknown_key(source, section, str(key), valid)
        if isinstance(defaults.get(key), dict):
            if not isinstance(value, dict):
                _fail(source, dotted, f"must be a mapping (a section), got {value!r}")
            if section == "":
                check_known_keys(value, defaults[key], source, str(key))


# ----------------------------------------------------------------------------------------------
# one key at a time, from the schema


def _get(cfg: Mapping[str, Any], dotted: str) -> Tuple[bool, Any]:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _present_values(cfg: Mapping[str, Any]) -> Iterable[Tuple[str, Any]]:
    for dotted in SCHEMA:
        present, value = _get(cfg, dotted)
        if present:
            yield dotted, value


def _check_schema(cfg: Mapping[str, Any], source: str) -> None:
    """Types first (every key), then choices, then single-key ranges."""
    values = list(_present_values(cfg))
    for dotted, value in values:
        if not SCHEMA[dotted].check(value):
            note = ""
            if isinstance(value, str) and looks_like_number(value):
                note = (" (PyYAML reads a number like 1e-4 without a dot as a string; "
                        "write 1.0e-4)")
            _fail(source, dotted, f"must be {SCHEMA[dotted].expected}, got {value!r}{note}")
    for dotted, value in values:
        choices = SCHEMA[dotted].choices
        if choices and value not in choices:
            _fail(source, dotted, f"must be one of {', '.join(map(repr, choices))}, got {value!r}")
    for dotted, value in values:
        constraint = SCHEMA[dotted].constraint
        problem = constraint(value) if constraint is not None else None
        if problem:
            _fail(source, dotted, problem)


# ----------------------------------------------------------------------------------------------
# rules across keys


def _check_dims(cfg: Mapping[str, Any], source: str) -> None:
    """Multi-input projection sizes, attention heads and the identity neck."""
    input_dim, model = cfg["dataset"]["input_dim"], cfg["model"]
    embd = model["embd_dim"]
    if is_seq(input_dim):
        if not is_seq(embd) or len(embd) != len(input_dim):
            _fail(source, "model.embd_dim", f"must be a list of {len(input_dim)} integers when "
                  f"dataset.input_dim is a list ({list(input_dim)}), got {embd!r}")
    elif is_seq(embd):
        _fail(source, "model.embd_dim", "can only be a list when dataset.input_dim is a list")
    total = sum(embd) if is_seq(embd) else embd
    if model["backbone_type"] == "convTransformer" and total % model["n_head"] != 0:
        _fail(source, "model.embd_dim", f"(total {total}) must be divisible by model.n_head "
              f"({model['n_head']})")
    if model["fpn_type"] == "identity" and total != model["fpn_dim"]:
        _fail(source, "model.fpn_dim", f"must equal the embedding dim ({total}) with the "
              f"'identity' neck, got {model['fpn_dim']}")


def _check_levels(model: Mapping[str, Any], source: str) -> int:
    """``backbone_arch``, ``fpn_start_level`` and ``regression_range``; returns #levels."""
    arch = model["backbone_arch"]
    if min(arch) < 0:
        _fail(source, "model.backbone_arch", f"entries must be >= 0, got {list(arch)}")
    n_levels = arch[2] + 1
    if not 0 <= model["fpn_start_level"] <= arch[2]:
        _fail(source, "model.fpn_start_level", f"must be in [0, {arch[2]}], got "
              f"{model['fpn_start_level']}")
    n_fpn_levels = n_levels - model["fpn_start_level"]
    if len(model["regression_range"]) != n_fpn_levels:
        _fail(source, "model.regression_range",
              f"must have one [lo, hi] pair per pyramid level: backbone_arch {list(arch)} gives "
              f"{n_fpn_levels} levels, got {len(model['regression_range'])} pairs")
    for lo, hi in model["regression_range"]:
        if lo > hi:
            _fail(source, "model.regression_range", f"has a pair with lo > hi: {[lo, hi]}")
    return n_levels


def _check_windows(model: Mapping[str, Any], n_levels: int, source: str) -> List[int]:
    """``n_mha_win_size``: one per level (or one for all), odd with relative PE."""
    windows = model["n_mha_win_size"]
    if is_seq(windows):
        if len(windows) != n_levels:
            _fail(source, "model.n_mha_win_size", f"must be one integer or a list of {n_levels} "
                  f"(one per level, backbone_arch[2] + 1), got {len(windows)} values")
        windows = list(windows)
    else:
        windows = [windows] * n_levels
    if model["use_rel_pe"]:
        for w in windows:
            if w > 1 and w % 2 == 0:
                _fail(source, "model.n_mha_win_size", f"must be odd when use_rel_pe is true, "
                      f"got {w}")
    return windows


def _level_multiple(stride: int, window: int) -> int:
    """What a level of this stride and attention window needs the input length to divide by."""
    return stride * (window // 2) * 2 if window > 1 else stride


def _check_seq_len(cfg: Mapping[str, Any], windows: List[int], source: str) -> None:
    """``dataset.max_seq_len`` against the strides (and windows) of every level."""
    model, max_len = cfg["model"], cfg["dataset"]["max_seq_len"]
    if model["backbone_type"] != "convTransformer":
        top = model["scale_factor"] ** model["backbone_arch"][2]
        if max_len % top != 0:
            _fail(source, "dataset.max_seq_len", f"({max_len}) must be divisible by the "
                  f"largest fpn stride ({top})")
        return
    for level, w in enumerate(windows):
        s = model["scale_factor"] ** level
        need = _level_multiple(s, w)
        if max_len % need != 0:
            _fail(source, "dataset.max_seq_len",
                  f"({max_len}) must be divisible by fpn stride x window size: "
                  f"level {level} (stride {s}, window {w}) needs a multiple of {need}")


def validate_config(cfg: Mapping[str, Any], source: str = "<config>") -> None:
    """Checks types and values of a merged config; raises :class:`ConfigError` naming the key."""
    _check_schema(cfg, source)
    opt = cfg["opt"]
    if opt["epochs"] < 0 or opt["warmup_epochs"] < 0:
        _fail(source, "opt.epochs", "and 'opt.warmup_epochs' must be >= 0")
    _check_dims(cfg, source)
    n_levels = _check_levels(cfg["model"], source)
    windows = _check_windows(cfg["model"], n_levels, source)
    _check_seq_len(cfg, windows, source)


def max_div_factor(model_cfg: Mapping[str, Any]) -> int:
    """The number every inference input length is padded to a multiple of (docs/reference.md §3.10).

    For each pyramid level ``l`` (stride ``s = scale_factor**l``) with window ``w``: ``w > 1``
    needs ``s * 2 * (w // 2)``, global attention needs ``s``; the factor is the maximum.
    """
    arch = model_cfg["backbone_arch"]
    strides = [model_cfg["scale_factor"] ** i
               for i in range(model_cfg.get("fpn_start_level", 0), arch[-1] + 1)]
    windows = model_cfg["n_mha_win_size"]
    if is_int(windows):
        windows = [windows] * (1 + arch[-1])
    factor = 1
    for s, w in zip(strides, windows):
        factor = max(factor, _level_multiple(s, w))
    return factor
