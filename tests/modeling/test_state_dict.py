"""The module tree is frozen: building the model from each shipped config gives exactly the
names, shapes, dtypes and order of tests/assets/spec/state_dict_*.txt
(docs/reference.md §3.12, Appendix E)."""
from __future__ import annotations

import pytest
import torch

from libs.core import load_config
from libs.modeling import make_meta_arch
from tests._assets import asset_path

SPEC_CONFIGS = ["thumos_i3d", "anet_tsp", "epic_slowfast_verb", "ego4d_omnivore_egovlp",
                "ego4d_slowfast_omnivore_egovlp"]


def _read_spec(path):
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            name, shape, dtype = line.split("\t")
            rows.append((name, shape, dtype))
    return rows


def _build_on_meta(repo_root, name):
    cfg = load_config(str(repo_root / "configs" / f"{name}.yaml"))
    with torch.device("meta"):  # shapes only: no memory, no init cost
        return make_meta_arch(cfg["model_name"], **cfg["model"])


@pytest.mark.parametrize("name", SPEC_CONFIGS)
def test_state_dict_names_shapes_dtypes_and_order_match_spec(name, repo_root):
    expected = _read_spec(asset_path(f"spec/state_dict_{name}.txt"))
    model = _build_on_meta(repo_root, name)
    got = [(k, str(tuple(v.shape)), str(v.dtype).replace("torch.", ""))
           for k, v in model.state_dict().items()]
    assert got == expected


@pytest.mark.parametrize("name", ["thumos_i3d", "anet_tsp"])
def test_buffers_stay_out_of_the_state_dict(name, repo_root):
    model = _build_on_meta(repo_root, name)
    buffers = [n for n, _ in model.named_buffers()]
    assert any(n.startswith("point_generator.buffer_points.") for n in buffers)
    assert ("backbone.pos_embd" in buffers) == (name == "anet_tsp")  # anet uses abs PE
    keys = set(model.state_dict())
    assert not keys.intersection(buffers)
    assert isinstance(model.loss_normalizer, (int, float))
