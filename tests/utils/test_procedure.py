"""The one procedure switch (libs/utils/procedure.py): presets, config / flag resolution, and
that a model built with a procedure follows it in every layer without process-wide effects."""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from libs.core import ConfigError, load_config
from libs.modeling import LayerNorm, make_meta_arch
from libs.modeling.attention import LocalMaskedMHCA
from libs.modeling.blocks import Conv1d, fast_kernels_enabled
from libs.utils.device import ONEDNN_CACHE_ENV
from libs.utils.procedure import (FAITHFUL, FAST, Procedure, configure_process,
                                  load_run_config, procedure_from_config, procedure_named)

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _thumos(tmp_path, **top):
    raw = yaml.load((CONFIGS / "thumos_i3d.yaml").read_text(), Loader=yaml.FullLoader)
    raw.update(top)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.dump(raw))
    return load_config(str(path))


def test_presets_are_the_original_and_the_fast_procedure():
    assert (FAITHFUL.train_padding, FAITHFUL.test_padding) == ("original", "original")
    assert FAITHFUL.attention_kernel == "chunked" and FAITHFUL.scripted_losses
    assert not (FAITHFUL.fast_kernels or FAITHFUL.fuse_head_levels or FAITHFUL.fused_optimizer
                or FAITHFUL.foreach_clip or FAITHFUL.foreach_ema
                or FAITHFUL.batched_assignment or FAITHFUL.large_onednn_cache)
    assert FAITHFUL.cpu_isa == "AVX2" and FAST.cpu_isa is None
    assert FAST.fast_kernels and FAST.attention_kernel == "banded" and FAST.fused_optimizer
    assert procedure_named("faithful") is FAITHFUL and procedure_named("fast") is FAST
    with pytest.raises(ValueError, match="unknown procedure 'exact'"):
        procedure_named("exact")
    with pytest.raises(ValueError, match="attention_kernel must be 'banded' or 'chunked'"):
        FAST.replace(attention_kernel="dense")
    with pytest.raises(ValueError, match=r"cpu_isa must be None or one of \['AVX2'\]"):
        FAST.replace(cpu_isa="SSE2")


def test_load_run_config_names_a_missing_file_and_applies_the_flag(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"^Config file does not exist: .*nope\.yaml$"):
        load_run_config(str(tmp_path / "nope.yaml"))
    raw = yaml.load((CONFIGS / "thumos_i3d.yaml").read_text(), Loader=yaml.FullLoader)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.dump(raw))
    monkeypatch.setenv(ONEDNN_CACHE_ENV, "1024")  # the fast procedure leaves a user's value
    cfg, proc = load_run_config(str(path))
    assert proc == FAST and not cfg.get("faithful", False)
    assert cfg["dataset_name"] == "thumos" and os.environ[ONEDNN_CACHE_ENV] == "1024"


def test_config_key_and_flag_select_the_procedure(tmp_path):
    assert procedure_from_config(_thumos(tmp_path)) == FAST
    assert procedure_from_config(_thumos(tmp_path, faithful=True)) is FAITHFUL
    assert procedure_from_config(_thumos(tmp_path), faithful=True) is FAITHFUL
    assert procedure_from_config(_thumos(tmp_path, faithful=True), faithful=False) == FAST
    # the older per-feature keys still shape the fast procedure
    cfg = _thumos(tmp_path)
    cfg["train_cfg"]["padding"] = "original"
    cfg["opt"]["fused"] = False
    proc = procedure_from_config(cfg)
    assert proc.train_padding == "original" and not proc.fused_optimizer
    assert proc.test_padding == "minimal" and proc.fast_kernels


def test_faithful_key_is_validated(tmp_path):
    with pytest.raises(ConfigError, match=r"'faithful' must be true or false, got 'yes'"):
        _thumos(tmp_path, faithful="yes")


def _tiny_model(procedure=None):
    cfg = load_config(str(CONFIGS / "thumos_i3d.yaml"))
    model_cfg = copy.deepcopy(cfg["model"])
    model_cfg.update(input_dim=16, embd_dim=16, fpn_dim=16, head_dim=16, n_head=2,
                     max_seq_len=256, backbone_arch=(2, 1, 2), n_mha_win_size=9,
                     regression_range=[(0, 4), (4, 8), (8, 10000)])
    kwargs = {} if procedure is None else {"procedure": procedure}
    return make_meta_arch(cfg["model_name"], **model_cfg, **kwargs)


def test_model_follows_its_procedure_and_changes_nothing_process_wide(monkeypatch):
    for name in (ONEDNN_CACHE_ENV, "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        monkeypatch.delenv(name, raising=False)
    before = fast_kernels_enabled()
    model = _tiny_model(FAITHFUL)
    layers = [m for m in model.modules() if isinstance(m, (Conv1d, LayerNorm))]
    assert layers and all(m.fast_kernels is False for m in layers)
    attn = [m for m in model.modules() if isinstance(m, LocalMaskedMHCA)]
    assert attn and all(m.attention_kernel == "chunked" and m.fast_kernels is False
                        for m in attn)
    assert not model.cls_head.fuse_levels and not model.reg_head.fuse_levels
    assert (model.train_padding, model.padding) == ("original", "original")
    assert not model.batched_assignment and model.scripted_losses
    # the EMA copy keeps the procedure
    assert copy.deepcopy(model).cls_head.fuse_levels is False
    fast = _tiny_model()
    assert fast.procedure == FAST and fast.cls_head.fuse_levels
    assert all(m.attention_kernel == "banded" for m in fast.modules()
               if isinstance(m, LocalMaskedMHCA))
    assert fast_kernels_enabled() == before and ONEDNN_CACHE_ENV not in os.environ
    with warnings.catch_warnings():  # this process's kernels may already run at AVX-512
        warnings.simplefilter("ignore")
        configure_process(FAITHFUL)
    assert ONEDNN_CACHE_ENV not in os.environ
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2"
    assert os.environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    configure_process(FAST)
    assert ONEDNN_CACHE_ENV in os.environ


def test_faithful_and_fast_models_agree_to_rounding():
    torch.manual_seed(0)
    base = _tiny_model(FAST).train()
    faithful = copy.deepcopy(base)
    faithful.apply_procedure(FAITHFUL)
    for m in (base, faithful):
        for mod in m.modules():
            if hasattr(mod, "drop_prob"):
                mod.drop_prob = 0.0
    g = torch.Generator().manual_seed(1)
    videos = [{"feats": torch.randn(16, t, generator=g),
               "segments": torch.tensor([[10.0, 40.0], [50.0, 90.0]]),
               "labels": torch.tensor([1, 3])} for t in (200, 256)]
    got, want = base(videos), faithful(videos)
    for key in ("cls_loss", "reg_loss", "final_loss"):
        assert torch.allclose(got[key], want[key], rtol=1e-5, atol=1e-6), key
