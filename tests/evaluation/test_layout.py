"""The evaluator's public names stay where callers import them from, and the metric modes
that eval.py offers are the ones ``libs.evaluation.modes`` defines."""
from __future__ import annotations

import importlib

import pytest

import libs.evaluation as evaluation
from libs.evaluation import metrics, modes


def test_metrics_module_re_exports_the_owners_objects():
    owners = ["detection", "loading", "tiou", "average_precision", "modes"]
    found = {}
    for owner in owners:
        module = importlib.import_module(f"libs.evaluation.{owner}")
        for name in module.__all__:
            found[name] = getattr(module, name)
    for name in metrics.__all__:
        assert getattr(metrics, name) is found[name], name
    for name in evaluation.__all__:
        if hasattr(metrics, name):
            assert getattr(evaluation, name) is getattr(metrics, name), name
    assert evaluation.ANETdetection.__module__ == "libs.evaluation.detection"


@pytest.mark.parametrize("mode", modes.EVAL_MODES)
def test_eval_py_offers_every_mode(mode):
    eval_script = importlib.import_module("eval")
    assert eval_script.parse_args(["c.yaml", "ckpt", "--eval-mode", mode]).eval_mode == mode


def test_eval_py_rejects_an_unknown_mode(capsys):
    eval_script = importlib.import_module("eval")
    with pytest.raises(SystemExit):
        eval_script.parse_args(["c.yaml", "ckpt", "--eval-mode", "coco"])
    assert "invalid choice: 'coco'" in capsys.readouterr().err


def test_every_official_mode_has_its_own_thresholds():
    assert set(modes.OFFICIAL_TIOU_THRESHOLDS) == set(modes.EVAL_MODES) - {"upstream"}
    assert modes.get_mode("upstream").tiou_thresholds == modes.UPSTREAM_TIOU_THRESHOLDS
