"""The declarative config schema: DEFAULTS built from it, optional keys, the 'faithful' switch."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from libs.core import DEFAULTS, ConfigError, load_config, save_config
from libs.core.schema import SCHEMA, SECTIONS, build_defaults, optional_keys

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_the_inserted_schema_keys_in_order():
    dotted = [k for section, values in DEFAULTS.items()
              for k in ([f"{section}.{n}" for n in values] if isinstance(values, dict)
                        else [section])]
    assert dotted == [k for k, key in SCHEMA.items() if key.inserted]
    assert list(DEFAULTS) == ["init_rand_seed", "dataset_name", "devices", "train_split",
                              "val_split", "model_name", *SECTIONS]
    assert SECTIONS == ("dataset", "loader", "model", "train_cfg", "test_cfg", "opt")


def test_every_default_passes_its_own_type_check_and_choices():
    for dotted, key in SCHEMA.items():
        if key.inserted:
            assert key.check(key.default), dotted
            assert not key.choices or key.default in key.choices, dotted


def test_build_defaults_gives_fresh_objects():
    a, b = build_defaults(), build_defaults()
    assert a == b == DEFAULTS
    a["train_cfg"]["head_empty_cls"].append(3)
    assert b["train_cfg"]["head_empty_cls"] == [] == DEFAULTS["train_cfg"]["head_empty_cls"]


def test_optional_keys_per_section():
    assert optional_keys("") == ("output_folder", "faithful")
    assert optional_keys("dataset") == ("json_file", "feat_folder", "file_prefix", "file_ext")
    assert optional_keys("opt") == ("early_stop_epochs", "fused")
    assert optional_keys("train_cfg") == optional_keys("test_cfg") == ("padding",)
    assert optional_keys("loader") == ()


def _thumos_with(tmp_path, **top):
    raw = yaml.load((CONFIGS / "thumos_i3d.yaml").read_text(), Loader=yaml.FullLoader)
    raw.update(top)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.dump(raw))
    return path


def test_faithful_is_optional_bool_and_round_trips(tmp_path):
    assert "faithful" not in load_config(str(CONFIGS / "thumos_i3d.yaml"))
    assert SCHEMA["faithful"].default is False and not SCHEMA["faithful"].inserted
    cfg = load_config(str(_thumos_with(tmp_path, faithful=True)))
    assert cfg["faithful"] is True
    save_config(cfg, str(tmp_path / "saved.yaml"))
    assert load_config(str(tmp_path / "saved.yaml")) == cfg
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml", "saved.yaml"]
    path = _thumos_with(tmp_path, faithful="yes please")
    with pytest.raises(ConfigError, match=r"cfg\.yaml: 'faithful' must be true or false, "
                                          r"got 'yes please'$"):
        load_config(str(path))


@pytest.mark.parametrize("section,key,value,message", [
    ("dataset", "trunc_thresh", 1.5, "'dataset.trunc_thresh' must be in [0, 1], got 1.5"),
    ("train_cfg", "droppath", 1.0, "'train_cfg.droppath' must be in [0, 1), got 1.0"),
    ("model", "head_kernel_size", 4, "'model.head_kernel_size' must be odd, got 4"),
    ("loader", "num_workers", -1, "'loader.num_workers' must be >= 0, got -1"),
    ("dataset", "crop_ratio", [1.0, 0.9],
     "'dataset.crop_ratio' must be [lo, hi] with 0 < lo <= hi, got [1.0, 0.9]"),
    ("opt", "warmup_epochs", -2, "'opt.epochs' and 'opt.warmup_epochs' must be >= 0"),
])
def test_range_messages(tmp_path, section, key, value, message):
    raw = yaml.load((CONFIGS / "thumos_i3d.yaml").read_text(), Loader=yaml.FullLoader)
    raw.setdefault(section, {})[key] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.dump(raw))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(err.value) == f"{path}: {message}"


def test_no_shipped_config_sets_devices():
    # README "Devices": every run gets the default ['cuda:0'] unless --device overrides it
    for path in sorted(CONFIGS.glob("*.yaml")):
        raw = yaml.load(path.read_text(), Loader=yaml.FullLoader)
        assert "devices" not in raw, path.name
        assert load_config(str(path), validate=False)["devices"] == SCHEMA["devices"].default
