"""Parameter grouping of make_optimizer (docs/reference.md §7.5)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from libs.engine.optim import make_optimizer, split_decay_params
from libs.modeling import AffineDropPath, LayerNorm, MaskedConv1D, Scale

OPT = {"type": "AdamW", "learning_rate": 1e-3, "weight_decay": 0.05, "momentum": 0.9}


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.z_linear = nn.Linear(3, 4)
        self.conv = nn.Conv1d(4, 4, 3)
        self.masked = MaskedConv1D(4, 4, 3, padding=1, bias=False)
        self.ln = LayerNorm(4)
        self.gn = nn.GroupNorm(2, 4)
        self.scale = Scale()
        self.adp = AffineDropPath(4, drop_prob=0.1)
        self.rel_pe = nn.Parameter(torch.zeros(1, 1, 2, 3))


def test_hand_made_module_grouping():
    decay, no_decay = split_decay_params(Toy())
    # decay: the weights of Linear / Conv1d / MaskedConv1D, sorted by name
    assert decay == ["conv.weight", "masked.conv.weight", "z_linear.weight"]
    assert no_decay == ["adp.scale", "conv.bias", "gn.bias", "gn.weight", "ln.bias",
                        "ln.weight", "rel_pe", "scale.scale", "z_linear.bias"]


def test_groups_order_and_weight_decay():
    model = Toy()
    opt = make_optimizer(model, OPT)
    assert isinstance(opt, torch.optim.AdamW)
    names = {id(p): n for n, p in model.named_parameters()}
    g_decay, g_no = opt.param_groups
    assert [names[id(p)] for p in g_decay["params"]] == split_decay_params(model)[0]
    assert [names[id(p)] for p in g_no["params"]] == split_decay_params(model)[1]
    assert (g_decay["weight_decay"], g_no["weight_decay"]) == (0.05, 0.0)
    assert g_decay["betas"] == (0.9, 0.999) and g_decay["eps"] == 1e-8
    # every parameter in exactly one group
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_sgd_and_unsupported():
    opt = make_optimizer(Toy(), dict(OPT, type="SGD"))
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    with pytest.raises(TypeError, match="Unsupported optimizer!"):
        make_optimizer(Toy(), dict(OPT, type="Adam"))


def test_unknown_layer_type_is_reported():
    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(3, 2)
    with pytest.raises(RuntimeError, match="emb.weight"):
        split_decay_params(Odd())


def test_ddp_style_wrapper_is_looked_through():
    model = Toy()
    wrapped = nn.DataParallel(model)  # CPU pass-through, adds the module. prefix
    assert split_decay_params(wrapped) == split_decay_params(model)


@pytest.mark.parametrize("config,n_decay,n_no", [("configs/thumos_i3d.yaml", 71, 158)])
def test_real_model_counts(repo_root, config, n_decay, n_no):
    from libs.core import load_config
    from libs.modeling import make_meta_arch
    cfg = load_config(str(repo_root / config))
    model = make_meta_arch(cfg["model_name"], **cfg["model"])
    decay, no_decay = split_decay_params(model)
    assert (len(decay), len(no_decay)) == (n_decay, n_no)
    # hand rule: conv weights decay; biases, norms, scales do not
    assert all(n.endswith("weight") and "norm" not in n and ".ln" not in n for n in decay)
    assert all(n.endswith(("bias", "scale")) or "norm" in n or ".ln" in n for n in no_decay)


def _train_copies(opt_cfg, steps=5):
    """Two identical models stepped with the same gradients: (params, optimizer) each."""
    out = []
    for fused in (True, False):
        torch.manual_seed(0)
        model = Toy()
        opt = make_optimizer(model, opt_cfg, fused=fused)
        g = torch.Generator().manual_seed(1)
        for _ in range(steps):
            for p in model.parameters():
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        out.append((list(model.parameters()), opt))
    return out


@pytest.mark.parametrize("kind", ["AdamW", "SGD"])
def test_fused_kernel_is_the_default_and_agrees_with_the_loop(kind):
    (fast, opt_fast), (loop, opt_loop) = _train_copies(dict(OPT, type=kind))
    assert all(g["fused"] for g in opt_fast.param_groups)
    assert not any(g["fused"] for g in opt_loop.param_groups)
    for a, b in zip(fast, loop):
        # same update rule in another order: float rounding only (5 steps of lr 1e-3)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


def test_config_key_fused_false_restores_the_loop():
    opt = make_optimizer(Toy(), dict(OPT, fused=False))
    assert not any(g["fused"] for g in opt.param_groups)
    assert make_optimizer(Toy(), OPT).param_groups[0]["fused"] is True


def test_unsupported_fused_falls_back_with_a_warning(monkeypatch):
    class NoFusedAdamW(torch.optim.AdamW):  # a device without a fused kernel
        def __init__(self, params, fused=None, **kwargs):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be on a "
                                   "supported device")
            super().__init__(params, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", NoFusedAdamW)
    with pytest.warns(UserWarning, match="fused AdamW is not available"):
        opt = make_optimizer(Toy(), dict(OPT, fused=True))
    assert not opt.param_groups[0]["fused"]
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_optimizer(Toy(), OPT)  # the default falls back silently
