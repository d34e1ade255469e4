"""Config loading: defaults, merge rules, derived keys, validation errors, round trip.

Expected values are written from docs/reference.md §1 (tables and Appendix A) and from the merged
config the original returned for the conformance config (``tiny_expected.pt['config']``).
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

from libs.core import (DEFAULTS, ConfigError, load_config, load_default_config, max_div_factor,
                       save_config)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
ALL_CONFIGS = ["thumos_i3d", "anet_tsp", "anet_i3d", "epic_slowfast_verb", "epic_slowfast_noun",
               "ego4d_slowfast", "ego4d_omnivore", "ego4d_egovlp", "ego4d_slowfast_egovlp",
               "ego4d_omnivore_egovlp", "ego4d_slowfast_omnivore_egovlp"]


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_every_shipped_config_loads_with_common_settings(name):
    cfg = load_config(str(CONFIGS / f"{name}.yaml"))
    # docs/reference.md §1.4: set by all 11 configs
    assert cfg["output_folder"] == "./ckpt/"
    assert cfg["model"]["fpn_type"] == "identity"
    assert cfg["train_cfg"]["clip_grad_l2norm"] == 1.0
    assert cfg["train_cfg"]["cls_prior_prob"] == 0.01
    assert cfg["train_cfg"]["center_sample"] == "radius"
    assert cfg["train_cfg"]["center_sample_radius"] == 1.5
    assert cfg["test_cfg"]["min_score"] == 0.001
    assert cfg["opt"]["weight_decay"] == 0.05
    # derived keys (§1.3)
    assert cfg["model"]["input_dim"] == cfg["dataset"]["input_dim"]
    assert cfg["model"]["num_classes"] == cfg["dataset"]["num_classes"]
    assert cfg["model"]["max_seq_len"] == cfg["dataset"]["max_seq_len"]
    assert cfg["model"]["train_cfg"] is cfg["train_cfg"]
    assert cfg["model"]["test_cfg"] is cfg["test_cfg"]


# (config, dotted key, expected) rows from the docs/reference.md §1.4 tables
TABLE = [
    ("anet_tsp", "dataset.file_prefix", "v_"), ("anet_tsp", "dataset.input_dim", 512),
    ("anet_tsp", "dataset.default_fps", 15), ("anet_tsp", "dataset.max_seq_len", 192),
    ("anet_tsp", "dataset.force_upsampling", True),
    ("anet_tsp", "model.n_mha_win_size", [7, 7, 7, 7, 7, -1]),
    ("anet_tsp", "model.embd_dim", 256), ("anet_tsp", "model.use_abs_pe", True),
    ("anet_tsp", "model.max_buffer_len_factor", 1.0), ("anet_tsp", "opt.learning_rate", 0.001),
    ("anet_tsp", "opt.epochs", 10), ("anet_tsp", "loader.batch_size", 16),
    ("anet_tsp", "train_cfg.init_loss_norm", 200), ("anet_tsp", "train_cfg.label_smoothing", 0.1),
    ("anet_tsp", "train_cfg.loss_weight", 2.0), ("anet_tsp", "test_cfg.voting_thresh", 0.9),
    ("anet_tsp", "test_cfg.max_seg_num", 100), ("anet_tsp", "test_cfg.multiclass_nms", False),
    ("anet_tsp", "test_cfg.nms_sigma", 0.75), ("anet_tsp", "test_cfg.duration_thresh", 0.001),
    ("anet_tsp", "test_cfg.ext_score_file",
     "./data/anet_1.3/annotations/cuhk_val_simp_share.json"),
    ("anet_i3d", "dataset.input_dim", 2048), ("anet_i3d", "dataset.default_fps", 25),
    ("anet_i3d", "dataset.json_file", "./data/anet_1.3/annotations/anet1.3_i3d_filtered.json"),
    ("epic_slowfast_verb", "dataset.file_ext", ".npz"),
    ("epic_slowfast_verb", "dataset.num_classes", 97),
    ("epic_slowfast_verb", "dataset.trunc_thresh", 0.3),
    ("epic_slowfast_verb", "model.regression_range",
     [[0, 4], [2, 8], [4, 16], [8, 32], [16, 64], [32, 10000]]),
    ("epic_slowfast_verb", "model.max_buffer_len_factor", 4.0),
    ("epic_slowfast_verb", "train_cfg.init_loss_norm", 250),
    ("epic_slowfast_verb", "train_cfg.label_smoothing", 0.0),
    ("epic_slowfast_verb", "test_cfg.pre_nms_topk", 5000),
    ("epic_slowfast_verb", "test_cfg.voting_thresh", 0.75),
    ("epic_slowfast_noun", "dataset.num_classes", 300),
    ("epic_slowfast_noun", "train_cfg.label_smoothing", 0.1),
    ("ego4d_slowfast", "model.backbone_arch", [2, 2, 6]),
    ("ego4d_slowfast", "model.n_head", 4), ("ego4d_slowfast", "model.embd_dim", 512),
    ("ego4d_egovlp", "dataset.num_frames", 16), ("ego4d_egovlp", "model.embd_dim", 384),
    ("ego4d_slowfast_egovlp", "dataset.feat_folder",
     ["./data/ego4d/slowfast_features", "./data/ego4d/egovlp_features"]),
    ("ego4d_slowfast_egovlp", "dataset.input_dim", 2560),
    ("ego4d_omnivore_egovlp", "opt.learning_rate", 0.0001),  # written 1.e-4 in the file
    ("ego4d_omnivore_egovlp", "model.n_head", 12),
    ("ego4d_slowfast_omnivore_egovlp", "dataset.input_dim", [2304, 1536, 256]),
    ("ego4d_slowfast_omnivore_egovlp", "model.embd_dim", [256, 384, 384]),
    ("ego4d_slowfast_omnivore_egovlp", "model.fpn_dim", 1024),
    ("ego4d_slowfast_omnivore_egovlp", "model.n_head", 16),
    ("ego4d_omnivore", "train_cfg.dropout", 0.1), ("ego4d_omnivore", "test_cfg.nms_sigma", 0.9),
    ("ego4d_omnivore", "test_cfg.voting_thresh", 0.95),
    ("ego4d_omnivore", "dataset.max_seq_len", 1024),
]


@pytest.mark.parametrize("name,key,expected", TABLE, ids=lambda x: str(x))
def test_per_config_overrides_match_reference_table(name, key, expected):
    node = load_config(str(CONFIGS / f"{name}.yaml"))
    for part in key.split("."):
        node = node[part]
    assert node == expected
    assert type(node) is type(expected)


@pytest.mark.parametrize("name,factor", [
    ("thumos_i3d", 576), ("anet_tsp", 96), ("anet_i3d", 96), ("epic_slowfast_verb", 256),
    ("epic_slowfast_noun", 256), ("ego4d_slowfast", 512), ("ego4d_omnivore", 1024),
    ("ego4d_egovlp", 1024), ("ego4d_slowfast_egovlp", 1024), ("ego4d_omnivore_egovlp", 1024),
    ("ego4d_slowfast_omnivore_egovlp", 1024)])
def test_max_div_factor_matches_reference_table(name, factor):
    # docs/reference.md §1.5
    assert max_div_factor(load_config(str(CONFIGS / f"{name}.yaml"))["model"]) == factor


def test_thumos_config_equals_appendix_a_key_by_key():
    cfg = load_config(str(CONFIGS / "thumos_i3d.yaml"))
    expected = {
        "dataset_name": "thumos", "train_split": ["validation"], "val_split": ["test"],
        "output_folder": "./ckpt/", "init_rand_seed": 1234567891, "devices": ["cuda:0"],
        "model_name": "LocPointTransformer",
        "dataset": {
            "json_file": "./data/thumos/annotations/thumos14.json",
            "feat_folder": "./data/thumos/i3d_features", "file_prefix": None,
            "file_ext": ".npy", "num_classes": 20, "input_dim": 2048, "feat_stride": 4,
            "num_frames": 16, "trunc_thresh": 0.5, "crop_ratio": [0.9, 1.0],
            "max_seq_len": 2304, "default_fps": None, "downsample_rate": 1,
            "force_upsampling": False},
        "loader": {"batch_size": 2, "num_workers": 4},
        "model": {
            "fpn_type": "identity", "max_buffer_len_factor": 6.0, "n_mha_win_size": 19,
            "backbone_type": "convTransformer", "backbone_arch": (2, 2, 5), "scale_factor": 2,
            "regression_range": [(0, 4), (4, 8), (8, 16), (16, 32), (32, 64), (64, 10000)],
            "n_head": 4, "embd_kernel_size": 3, "embd_dim": 512, "embd_with_ln": True,
            "fpn_dim": 512, "fpn_with_ln": True, "fpn_start_level": 0, "head_dim": 512,
            "head_kernel_size": 3, "head_num_layers": 3, "head_with_ln": True,
            "use_abs_pe": False, "use_rel_pe": False, "input_dim": 2048, "num_classes": 20,
            "max_seq_len": 2304},
        "train_cfg": {
            "init_loss_norm": 100, "clip_grad_l2norm": 1.0, "cls_prior_prob": 0.01,
            "center_sample": "radius", "center_sample_radius": 1.5, "loss_weight": 1.0,
            "head_empty_cls": [], "dropout": 0.0, "droppath": 0.1, "label_smoothing": 0.0},
        "test_cfg": {
            "voting_thresh": 0.7, "pre_nms_topk": 2000, "max_seg_num": 200, "min_score": 0.001,
            "multiclass_nms": True, "pre_nms_thresh": 0.001, "iou_threshold": 0.1,
            "nms_method": "soft", "nms_sigma": 0.5, "duration_thresh": 0.05,
            "ext_score_file": None},
        "opt": {
            "learning_rate": 0.0001, "epochs": 30, "weight_decay": 0.05, "type": "AdamW",
            "momentum": 0.9, "warmup": True, "warmup_epochs": 5, "schedule_type": "cosine",
            "schedule_steps": [], "schedule_gamma": 0.1},
    }
    model = {k: v for k, v in cfg["model"].items() if k not in ("train_cfg", "test_cfg")}
    assert set(cfg) == set(expected)
    for section, value in expected.items():
        got = model if section == "model" else cfg[section]
        if isinstance(value, dict):
            assert set(got) == set(value), section
            for key in value:
                assert got[key] == value[key], f"{section}.{key}"
                assert type(got[key]) is type(value[key]), f"{section}.{key}"
        else:
            assert got == value, section


def test_conformance_config_equals_the_originals_merged_dict(conformance_dir):
    expected = torch.load(conformance_dir / "tiny_expected.pt")["config"]
    cfg = load_config(str(conformance_dir / "tiny_thumos.yaml"))
    assert cfg == expected
    # types too (tuples stay tuples, ints stay ints)
    assert type(cfg["model"]["regression_range"][0]) is tuple
    assert type(cfg["train_cfg"]["init_loss_norm"]) is int


def test_defaults_are_never_shared_or_mutated(tmp_path):
    pristine = copy.deepcopy(DEFAULTS)
    path = tmp_path / "empty.yaml"
    path.write_text("dataset_name: thumos\n")
    a = load_config(str(path))
    a["train_cfg"]["head_empty_cls"].append(3)
    a["opt"]["learning_rate"] *= 8
    a["model"]["regression_range"].append((1, 2))
    a["devices"].append("cpu")
    b = load_config(str(path))
    d = load_default_config()
    d["test_cfg"]["max_seg_num"] = 5
    assert DEFAULTS == pristine
    assert b["train_cfg"]["head_empty_cls"] == []
    assert b["opt"]["learning_rate"] == 1e-3
    assert b["devices"] == ["cuda:0"]
    assert load_default_config()["test_cfg"]["max_seg_num"] == 1000


def test_derived_sections_follow_edits_like_the_original(tmp_path):
    cfg = load_config(str(CONFIGS / "thumos_i3d.yaml"))
    cfg["train_cfg"]["head_empty_cls"] = [4]  # what train.py does after building the dataset
    cfg["test_cfg"]["max_seg_num"] = 7        # what eval.py --topk does
    assert cfg["model"]["train_cfg"]["head_empty_cls"] == [4]
    assert cfg["model"]["test_cfg"]["max_seg_num"] == 7


def test_unknown_key_names_file_dotted_key_and_close_matches(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text((CONFIGS / "thumos_i3d.yaml").read_text().replace(
        "feat_stride: 4", "feat_strde: 4"))
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    msg = str(err.value)
    assert str(path) in msg
    assert "dataset.feat_strde" in msg
    assert "'feat_stride'" in msg


def test_unknown_top_level_key_and_section(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("dataset_name: thumos\ntest_cgf: {nms_method: hard}\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'test_cgf'.*'test_cfg'"):
        load_config(str(path))
    path.write_text("dataset_name: thumos\nopt: {learning_rat: 0.1}\n")
    with pytest.raises(ConfigError, match=r"opt\.learning_rat.*'learning_rate'"):
        load_config(str(path))


@pytest.mark.parametrize("edit,pattern", [
    ("test_cfg: {nms_method: sofft}", r"test_cfg\.nms_method' must be one of 'soft', 'hard', "
                                      r"'none', got 'sofft'"),
    ("train_cfg: {center_sample: ball}", r"train_cfg\.center_sample' must be one of"),
    ("opt: {learning_rate: 1e-4}", r"opt\.learning_rate' must be a number, got '1e-4'.*1\.0e-4"),
    ("model: {regression_range: [[0, 4], [4, 8]]}",
     r"model\.regression_range' must have one \[lo, hi\] pair per pyramid level: "
     r"backbone_arch \[2, 2, 5\] gives 6 levels, got 2"),
    ("dataset: {max_seq_len: 1000}", r"dataset\.max_seq_len' \(1000\) must be divisible by "
                                     r"fpn stride x window size: level 0"),
    ("model: {n_mha_win_size: [9, 9, 9]}", r"model\.n_mha_win_size' must be one integer or a "
                                           r"list of 6"),
    ("model: {use_rel_pe: true, n_mha_win_size: 8}", r"must be odd when use_rel_pe"),
    ("loader: {batch_size: 0}", r"loader\.batch_size' must be >= 1"),
    ("dataset: {input_dim: [1, 2]}", r"model\.embd_dim' must be a list of 2"),
    ("dataset: {crop_ratio: [0.9]}", r"dataset\.crop_ratio' must be ~ or a list of two"),
    ("model: {embd_dim: 510, fpn_dim: 510}", r"model\.embd_dim' \(total 510\) must be divisible by"),
    ("model: {embd_dim: 256}", r"model\.fpn_dim' must equal the embedding dim \(256\)"),
    ("opt: {fused: 1}", r"opt\.fused' must be true or false, got 1"),
    ("train_cfg: {padding: tight}", r"train_cfg\.padding' must be one of 'minimal', 'original'"),
])
def test_wrong_types_and_values_are_reported_by_key(tmp_path, edit, pattern):
    section, body = edit.split(":", 1)
    raw = yaml.load((CONFIGS / "thumos_i3d.yaml").read_text(), Loader=yaml.FullLoader)
    raw[section].update(yaml.load(body, Loader=yaml.FullLoader))
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.dump(raw))
    with pytest.raises(ConfigError, match=pattern) as err:
        load_config(str(path))
    assert str(path) in str(err.value)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(str(tmp_path / "nope.yaml"))
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(path))


@pytest.mark.parametrize("name", ALL_CONFIGS)
def test_resolved_config_round_trips_through_yaml(tmp_path, name):
    cfg = load_config(str(CONFIGS / f"{name}.yaml"))
    cfg["train_cfg"]["head_empty_cls"] = [1, 2]
    out = tmp_path / "config.yaml"
    save_config(cfg, str(out))
    back = load_config(str(out))
    assert back == cfg
    assert back["model"]["train_cfg"] is back["train_cfg"]
    assert type(back["model"]["backbone_arch"]) is type(cfg["model"]["backbone_arch"])


def test_new_optional_keys_are_accepted_not_inserted(tmp_path):
    raw = yaml.load((CONFIGS / "thumos_i3d.yaml").read_text(), Loader=yaml.FullLoader)
    assert "fused" not in load_config(str(CONFIGS / "thumos_i3d.yaml"))["opt"]
    raw["opt"]["fused"] = False
    raw["train_cfg"]["padding"] = "original"
    raw["test_cfg"]["padding"] = "original"
    path = tmp_path / "switches.yaml"
    path.write_text(yaml.dump(raw))
    cfg = load_config(str(path))
    assert cfg["opt"]["fused"] is False
    assert cfg["model"]["train_cfg"]["padding"] == cfg["model"]["test_cfg"]["padding"] == \
        "original"


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['touch {marker}']",
                                 "!!python/name:os.system", "!!python/object:argparse.Namespace {{}}"])
def test_config_with_python_object_tag_is_refused(tmp_path, tag):
    """A config cannot construct or reference Python objects (the original's FullLoader could
    reference functions; the apply tag must not run)."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    path.write_text("dataset_name: thumos\nopt: {learning_rate: "
                    + tag.format(marker=marker) + "}\n")
    with pytest.raises(ConfigError) as err:
        load_config(str(path))
    assert str(path) in str(err.value) and "not valid YAML" in str(err.value)
    assert not marker.exists()


def test_config_tuples_and_yaml_floats_parse_as_the_original(tmp_path):
    """``!!python/tuple`` (what save_config writes) stays a tuple; ``1.e-4`` is a float and
    ``1e-4`` a string (PyYAML's YAML 1.1 resolver, as the original's FullLoader)."""
    path = tmp_path / "t.yaml"
    path.write_text("a: !!python/tuple [1, 2]\nb: 1.e-4\nc: 1e-4\nd: ~\n")
    from libs.core.config import _read_yaml
    data = _read_yaml(str(path))
    assert data == {"a": (1, 2), "b": 1e-4, "c": "1e-4", "d": None}
    assert isinstance(data["a"], tuple)
