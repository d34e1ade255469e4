"""Configuration: ``load_config`` / ``load_default_config`` as in the original, plus validation
(one declarative schema of keys in schema.py) and atomic file writes (atomic.py)."""
from .config import (DEFAULTS, ConfigError, derive_keys, format_config, load_config,
                     load_default_config, max_div_factor, save_config, validate_config)

__all__ = ["DEFAULTS", "ConfigError", "derive_keys", "format_config", "load_config",
           "load_default_config", "max_div_factor", "save_config", "validate_config"]
