"""Configuration: ``load_config`` / ``load_default_config`` as in the original, plus validation."""
from .config import (DEFAULTS, ConfigError, derive_keys, format_config, load_config,
                     load_default_config, max_div_factor, save_config, validate_config)

__all__ = ["DEFAULTS", "ConfigError", "derive_keys", "format_config", "load_config",
           "load_default_config", "max_div_factor", "save_config", "validate_config"]
