"""The model reproduces the original ActionFormer stage by stage on the tiny THUMOS fixtures
(tests/assets/conformance, README "Tolerances"). One test per stage so that a failure names it.

Both checkpoints are checked; ``perturbed`` is the primary target (at init every block is
nearly the identity, which hides many bugs). The model is built from the original's merged
config stored in tiny_expected.pt and, in one test, from tiny_thumos.yaml via load_config.

The stage tests run on every device of the ``device`` fixture (the GPU when present, TF32 off)
against the same CPU reference tensors and tolerances; the seeded drop-path test stays on
the CPU (the GPU draws other random numbers).
"""
from __future__ import annotations

import copy
from typing import Dict

import pytest
import torch

from libs.modeling import AffineDropPath, make_meta_arch
from libs.modeling.decoding import inference_single_video
from tests._matching import assert_same_multiset, count_unmatched
from tests.conftest import to_device

CPU = torch.device("cpu")

# tolerances of the conformance README, in one place
TOL = {
    "feats": dict(atol=1e-4, rtol=1e-4),       # backbone / fpn features
    "heads": dict(atol=1e-4, rtol=1e-4),       # cls_logits, offsets
    "gt_offsets": dict(atol=1e-5, rtol=0.0),
    "losses": dict(atol=1e-6, rtol=1e-5),
    "pre_nms_score": 1e-5, "pre_nms_segment": 1e-3,
    "nms": dict(atol=1e-4, rtol=0.0),
    "det_segment_sec": 1e-3, "det_score": 1e-4,
}
CHECKPOINTS = {"perturbed": "tiny_thumos_perturbed", "init": "tiny_thumos"}
VIDEO_IDS = ["video_validation_0000051", "video_validation_0000052", "video_test_0000007"]


def strip_module_prefix(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Checkpoints carry DataParallel's ``module.`` prefix on every key."""
    assert all(k.startswith("module.") for k in state_dict)
    return {k[len("module."):]: v for k, v in state_dict.items()}


@pytest.fixture(scope="module")
def expected(conformance_dir):
    return torch.load(conformance_dir / "tiny_expected.pt")


@pytest.fixture(scope="module")
def inputs(conformance_dir):
    data = torch.load(conformance_dir / "tiny_inputs.pt")
    items = {item["video_id"]: item for item in data["videos"] + data["extra_eval_videos"]}
    return {"train": data["videos"], "eval": items}


def build_model(cfg):
    return make_meta_arch(cfg["model_name"], **copy.deepcopy(cfg["model"]))


@pytest.fixture(scope="module")
def models(expected, conformance_dir, device):
    """Eval-mode models with ``state_dict_ema`` loaded (as eval.py does), per checkpoint."""
    out = {}
    for name, folder in CHECKPOINTS.items():
        ckpt = torch.load(conformance_dir / folder / "epoch_000.pth.tar")
        model = build_model(expected["config"])
        model.load_state_dict(strip_module_prefix(ckpt["state_dict_ema"]), strict=True)
        out[name] = model.to(device).eval()
    return out


@pytest.fixture(scope="module")
def eval_outputs(models, inputs):
    """Every eval stage of every (checkpoint, video), computed once."""
    out = {}
    with torch.no_grad():
        for name, model in models.items():
            for vid in VIDEO_IDS:
                item = inputs["eval"][vid]
                x, mask = model.preprocessing([item])
                feats, masks = model.backbone(x, mask)
                fpn_feats, fpn_masks = model.neck(feats, masks)
                heads = model.forward_features([item])
                s = model.test_settings
                pre_nms = inference_single_video(
                    heads["points"], [m[0] for m in heads["fpn_masks"]],
                    [c[0] for c in heads["cls_logits"]], [o[0] for o in heads["offsets"]],
                    s.pre_nms_thresh, s.pre_nms_topk, s.duration_thresh)
                out[name, vid] = to_device(dict(batched_inputs=x, batched_masks=mask,
                                      backbone_feats=feats, backbone_masks=masks,
                                      fpn_feats=fpn_feats, fpn_masks=fpn_masks,
                                      points=heads["points"], cls_logits=heads["cls_logits"],
                                      offsets=heads["offsets"], pre_nms=pre_nms), CPU)
    return out


def train_model(expected, conformance_dir, checkpoint, drop_path_active, device=CPU):
    ckpt = torch.load(conformance_dir / CHECKPOINTS[checkpoint] / "epoch_000.pth.tar")
    model = build_model(expected["config"])
    model.load_state_dict(strip_module_prefix(ckpt["state_dict"]), strict=True)
    if not drop_path_active:
        for module in model.modules():
            if isinstance(module, AffineDropPath):
                module.drop_prob = 0.0
    return model.to(device).train()


@pytest.fixture(scope="module")
def train_outputs(expected, inputs, conformance_dir, device):
    """Train-mode stages with drop path neutralised, per checkpoint."""
    out = {}
    for name in CHECKPOINTS:
        model = train_model(expected, conformance_dir, name, False, device)
        videos = to_device(inputs["train"], device)
        x, mask = model.preprocessing(videos)
        heads = model.forward_features(videos)
        gt_cls, gt_offsets = model.label_points(
            heads["points"], [v["segments"] for v in videos], [v["labels"] for v in videos])
        before = model.loss_normalizer
        losses = model(videos)
        out[name] = to_device(dict(
            batched_inputs=x, batched_masks=mask, gt_cls_labels=gt_cls, gt_offsets=gt_offsets,
            loss_normalizer_before=before, loss_normalizer_after=model.loss_normalizer,
            losses={k: v.detach() for k, v in losses.items()}, **heads), CPU)
    return out


EVAL_CASES = [(c, v) for c in CHECKPOINTS for v in VIDEO_IDS]
eval_cases = pytest.mark.parametrize("checkpoint,video_id", EVAL_CASES,
                                     ids=[f"{c}-{v[-2:]}" for c, v in EVAL_CASES])
checkpoints = pytest.mark.parametrize("checkpoint", list(CHECKPOINTS))


def assert_levels_close(got, want, tol):
    assert len(got) == len(want)
    for level, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape, f"level {level}"
        torch.testing.assert_close(g, w, **tol, msg=lambda m: f"level {level}: {m}")


def assert_levels_equal(got, want):
    assert len(got) == len(want)
    for level, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and torch.equal(g, w), f"level {level}"


# ------------------------------------------------------------------ construction / loading
@checkpoints
def test_checkpoint_loads_strictly(checkpoint, expected, conformance_dir):
    ckpt = torch.load(conformance_dir / CHECKPOINTS[checkpoint] / "epoch_000.pth.tar")
    model = build_model(expected["config"])
    for key in ("state_dict", "state_dict_ema"):
        result = model.load_state_dict(strip_module_prefix(ckpt[key]), strict=True)
        assert not result.missing_keys and not result.unexpected_keys
    shapes = {f"module.{k}": list(v.shape) for k, v in model.state_dict().items()}
    assert list(shapes) == list(expected["param_shapes"])
    assert all(list(expected["param_shapes"][k]) == v for k, v in shapes.items())


def test_seeded_construction_reproduces_the_fresh_checkpoint(expected, conformance_dir):
    ckpt = torch.load(conformance_dir / "tiny_thumos" / "epoch_000.pth.tar")
    torch.manual_seed(expected["meta"]["init_seed"])
    model = build_model(expected["config"])
    want = strip_module_prefix(ckpt["state_dict"])
    got = model.state_dict()
    assert list(got) == list(want)
    mismatched = [k for k in want if not torch.equal(got[k], want[k])]
    assert not mismatched, f"differs from the original's init: {mismatched[:5]}"


def test_model_from_tiny_yaml_equals_model_from_stored_config(expected, conformance_dir):
    from libs.core import load_config

    cfg = load_config(str(conformance_dir / "tiny_thumos.yaml"))
    torch.manual_seed(0)
    from_yaml = build_model(cfg)
    torch.manual_seed(0)
    from_dict = build_model(expected["config"])
    assert from_yaml.max_div_factor == from_dict.max_div_factor == 256
    assert from_yaml.test_settings == from_dict.test_settings
    assert from_yaml.train_settings == from_dict.train_settings
    for (k1, v1), (k2, v2) in zip(from_yaml.state_dict().items(),
                                  from_dict.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


# --------------------------------------------------------------------------- eval stages
@eval_cases
def test_stage_preprocessing(checkpoint, video_id, expected, eval_outputs):
    got, want = eval_outputs[checkpoint, video_id], expected[checkpoint]["eval"][video_id]
    assert torch.equal(got["batched_inputs"], want["batched_inputs"])
    assert torch.equal(got["batched_masks"], want["batched_masks"])


@eval_cases
def test_stage_backbone(checkpoint, video_id, expected, eval_outputs):
    got, want = eval_outputs[checkpoint, video_id], expected[checkpoint]["eval"][video_id]
    assert_levels_equal(got["backbone_masks"], want["backbone_masks"])
    assert_levels_close(got["backbone_feats"], want["backbone_feats"], TOL["feats"])


@eval_cases
def test_stage_fpn(checkpoint, video_id, expected, eval_outputs):
    got, want = eval_outputs[checkpoint, video_id], expected[checkpoint]["eval"][video_id]
    assert_levels_equal(got["fpn_masks"], want["fpn_masks"])
    assert_levels_close(got["fpn_feats"], want["fpn_feats"], TOL["feats"])


@eval_cases
def test_stage_points(checkpoint, video_id, expected, eval_outputs):
    got, want = eval_outputs[checkpoint, video_id], expected[checkpoint]["eval"][video_id]
    assert_levels_equal(got["points"], want["points"])


@eval_cases
def test_stage_cls_logits(checkpoint, video_id, expected, eval_outputs):
    got, want = eval_outputs[checkpoint, video_id], expected[checkpoint]["eval"][video_id]
    assert_levels_close(got["cls_logits"], want["cls_logits"], TOL["heads"])


@eval_cases
def test_stage_offsets(checkpoint, video_id, expected, eval_outputs):
    got, want = eval_outputs[checkpoint, video_id], expected[checkpoint]["eval"][video_id]
    assert_levels_close(got["offsets"], want["offsets"], TOL["heads"])


@eval_cases
def test_stage_pre_nms_candidates(checkpoint, video_id, expected, eval_outputs):
    got = eval_outputs[checkpoint, video_id]["pre_nms"]
    want = expected[checkpoint]["eval"][video_id]["pre_nms"]
    # order-insensitive (README: near-tied candidates may change order)
    assert_same_multiset(got, want, TOL["pre_nms_segment"], TOL["pre_nms_score"])


@eval_cases
def test_stage_nms(checkpoint, video_id, expected, models):
    from libs.ops import batched_nms

    want = expected[checkpoint]["eval"][video_id]
    s = models[checkpoint].test_settings
    pre = want["pre_nms"]
    segs, scores, labels = batched_nms(
        pre["segments"], pre["scores"], pre["labels"], s.iou_threshold, s.min_score,
        s.max_seg_num, use_soft_nms=(s.nms_method == "soft"), multiclass=s.multiclass_nms,
        sigma=s.nms_sigma, voting_thresh=s.voting_thresh)
    assert segs.shape == want["nms"]["segments"].shape
    assert torch.equal(labels, want["nms"]["labels"])
    torch.testing.assert_close(scores, want["nms"]["scores"], **TOL["nms"])
    torch.testing.assert_close(segs, want["nms"]["segments"], **TOL["nms"])


def match_detections(got, want):
    """Greedy one-to-one matching: same label, segment within 1e-3 s, score within 1e-4.

    Returns the number of expected detections left unmatched.
    """
    return count_unmatched(got, want, TOL["det_segment_sec"], TOL["det_score"])


@eval_cases
def test_stage_final_detections(checkpoint, video_id, expected, models, inputs):
    want = expected[checkpoint]["eval"][video_id]["detections"]
    with torch.no_grad():
        (got,) = models[checkpoint]([inputs["eval"][video_id]])
    got = to_device(got, CPU)
    assert got["video_id"] == want["video_id"] == video_id
    assert got["segments"].shape == want["segments"].shape
    assert got["segments"].dtype == torch.float32 and got["labels"].dtype == torch.int64
    assert match_detections(got, want) == 0


# -------------------------------------------------------------------------- train stages
@checkpoints
def test_stage_train_preprocessing(checkpoint, expected, train_outputs):
    got, want = train_outputs[checkpoint], expected[checkpoint]["train"]
    assert torch.equal(got["batched_inputs"], want["batched_inputs"])
    assert torch.equal(got["batched_masks"], want["batched_masks"])


@checkpoints
def test_stage_train_head_outputs(checkpoint, expected, train_outputs):
    got, want = train_outputs[checkpoint], expected[checkpoint]["train"]
    assert_levels_equal(got["fpn_masks"], want["fpn_masks"])
    assert_levels_close(got["cls_logits"], want["cls_logits"], TOL["heads"])
    assert_levels_close(got["offsets"], want["offsets"], TOL["heads"])


@checkpoints
def test_stage_train_targets(checkpoint, expected, train_outputs):
    got, want = train_outputs[checkpoint], expected[checkpoint]["train"]
    assert len(got["gt_cls_labels"]) == len(want["gt_cls_labels"]) == 2
    for b in range(2):
        assert torch.equal(got["gt_cls_labels"][b], want["gt_cls_labels"][b]), f"video {b}"
        torch.testing.assert_close(got["gt_offsets"][b], want["gt_offsets"][b],
                                   **TOL["gt_offsets"])


@checkpoints
def test_stage_train_num_pos(checkpoint, expected, train_outputs):
    got, want = train_outputs[checkpoint], expected[checkpoint]["train"]
    valid = torch.cat(got["fpn_masks"], dim=1)
    num_pos = int(((got["gt_cls_labels"].sum(-1) > 0) & valid).sum())
    assert num_pos == want["num_pos"] == 25


@checkpoints
def test_stage_train_loss_normalizer(checkpoint, expected, train_outputs):
    got, want = train_outputs[checkpoint], expected[checkpoint]["train"]
    assert got["loss_normalizer_before"] == want["loss_normalizer_before"]
    assert got["loss_normalizer_after"] == want["loss_normalizer_after"]


@checkpoints
def test_stage_train_losses(checkpoint, expected, train_outputs):
    got, want = train_outputs[checkpoint]["losses"], expected[checkpoint]["train"]["losses"]
    assert list(got) == ["cls_loss", "reg_loss", "final_loss"]
    for key in want:
        torch.testing.assert_close(got[key].detach(), want[key], **TOL["losses"],
                                   msg=lambda m: f"{key}: {m}")


@checkpoints
def test_stage_train_losses_with_seeded_drop_path(checkpoint, expected, inputs,
                                                  conformance_dir):
    want = expected[checkpoint]["train"]
    model = train_model(expected, conformance_dir, checkpoint, drop_path_active=True)
    probs = {m.drop_prob for m in model.modules() if isinstance(m, AffineDropPath)}
    assert probs == {want["droppath_prob"]}
    torch.manual_seed(want["droppath_seed"])
    got = model(inputs["train"])
    for key in want["losses_droppath"]:
        torch.testing.assert_close(got[key].detach(), want["losses_droppath"][key],
                                   **TOL["losses"], msg=lambda m: f"{key}: {m}")
