"""Hostile result / score files: every loader that accepts a pickle refuses one that would run
code (the crafted ``__reduce__`` would create a file: it must not exist afterwards), and the
message names the file and the refused global; plain data pickles of every protocol load.
"""
from __future__ import annotations

import collections
import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from libs.evaluation import postprocess_results
from libs.evaluation.postprocessing import load_results_from_pkl, load_score_file
from libs.utils.safe_pickle import UnsafePickleError, safe_load

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import visualize as vis  # noqa: E402


class _CreatesFile:
    """Unpickling this calls ``open(path, 'w')``: the marker file proves code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class _RunsSystem:
    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def _crafted(tmp_path: Path, name: str, cls=_CreatesFile, protocol: int = 4):
    marker = tmp_path / f"{name}.marker"
    payload = {"video-id": ["a"], "t-start": np.zeros(1), "t-end": np.ones(1),
               "label": np.zeros(1, np.int64), "score": cls(str(marker))}
    path = tmp_path / name
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    return path, marker


def _results():
    return {"video-id": ["b", "a"], "t-start": np.array([5.0, 1.0], np.float32),
            "t-end": np.array([6.0, 1.5], np.float32), "label": np.array([0, 0]),
            "score": np.array([0.49, 0.36], np.float32)}


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("cls, refused", [(_CreatesFile, "io.open"),
                                          (_RunsSystem, "posix.system")])
def test_safe_load_refuses_code(tmp_path, protocol, cls, refused):
    path, marker = _crafted(tmp_path, "evil.pkl", cls, protocol)
    with pytest.raises(UnsafePickleError) as err:
        safe_load(str(path))
    assert not marker.exists()
    assert str(err.value).startswith(f"{path}: refused to load the global '{refused}'")


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_load_round_trips_plain_data(tmp_path, protocol):
    data = {"video-id": ["a", "b"], "t-start": np.array([1.5, 2.0], np.float32),
            "label": np.array([3, 4], np.int64), "names": np.array(["x", "yy"]),
            "objects": np.array([{"k": 1}, None], dtype=object), "scalar": np.float64(0.25),
            "ordered": collections.OrderedDict(b=1, a=2), "set": {1, 2}, "bytes": b"\x00\xff",
            "tuple": (1, 2.5, None, True), "complex": 1 + 2j, "dtype": np.dtype("<f2")}
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    got = safe_load(str(path))
    assert got["t-start"].dtype == np.float32 and got["t-start"].tolist() == [1.5, 2.0]
    assert got["label"].dtype == np.int64 and got["names"].tolist() == ["x", "yy"]
    assert got["objects"].tolist() == [{"k": 1}, None] and got["scalar"] == np.float64(0.25)
    assert list(got["ordered"]) == ["b", "a"] and got["set"] == {1, 2}
    assert (got["bytes"], got["tuple"], got["complex"]) == (b"\x00\xff", (1, 2.5, None, True),
                                                           1 + 2j)
    assert got["dtype"] == np.dtype("<f2")


def test_safe_load_empty_truncated_and_not_a_pickle(tmp_path):
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(UnsafePickleError, match=f"^{empty}: the file is empty"):
        safe_load(str(empty))
    trunc = tmp_path / "trunc.pkl"
    trunc.write_bytes(pickle.dumps(_results())[:40])
    with pytest.raises(UnsafePickleError, match=f"^{trunc}: not a readable pickle"):
        safe_load(str(trunc))
    text = tmp_path / "text.pkl"
    text.write_text("video,score\n")
    with pytest.raises(UnsafePickleError, match=f"^{text}: "):
        safe_load(str(text))


def test_results_file_of_postprocess_refuses_code(tmp_path):
    path, marker = _crafted(tmp_path, "eval_results.pkl")
    scores = tmp_path / "s.json"
    scores.write_text(json.dumps({"a": [1.0]}))
    with pytest.raises(UnsafePickleError, match="eval_results.pkl: refused .*io.open"):
        postprocess_results(str(path), str(scores))
    with pytest.raises(UnsafePickleError):
        load_results_from_pkl(str(path))
    assert not marker.exists()


def test_ext_score_file_pickle_refuses_code(tmp_path):
    marker = tmp_path / "score.marker"
    path = tmp_path / "scores.pkl"
    path.write_bytes(pickle.dumps({"a": _CreatesFile(str(marker)), "b": [0.1]}))
    with pytest.raises(UnsafePickleError, match=r"scores.pkl: refused .*'io.open'"):
        postprocess_results(_results(), str(path), num_pred=1, topk=1)
    assert not marker.exists()


def test_ext_score_file_npz_and_plain_pickle_agree(tmp_path):
    cls = {"a": np.array([0.25, 0.81]), "b": np.array([0.16, 0.09])}
    npz = tmp_path / "scores.npz"
    np.savez(npz, **cls)
    pkl = tmp_path / "scores.pkl"
    pkl.write_bytes(pickle.dumps(cls))
    a = postprocess_results(_results(), str(npz), num_pred=1, topk=1)
    b = postprocess_results(_results(), str(pkl), num_pred=1, topk=1)
    # a: best class 1 (0.81) x 0.36; b: best class 0 (0.16) x 0.49
    assert a["label"].tolist() == b["label"].tolist() == [1, 0]
    np.testing.assert_allclose(a["score"], [np.sqrt(0.81 * float(np.float32(0.36))),
                                            np.sqrt(0.16 * float(np.float32(0.49)))])
    np.testing.assert_array_equal(a["score"], b["score"])


def test_ext_score_file_npz_with_objects_is_refused(tmp_path):
    npz = tmp_path / "scores.npz"
    np.savez(npz, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"scores.npz: cannot read the score table"):
        load_score_file(str(npz))


def test_ext_score_file_bad_json_and_wrong_type(tmp_path):
    bad = tmp_path / "s.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match=r"s.json: malformed JSON at line 1"):
        postprocess_results(_results(), str(bad))
    lst = tmp_path / "list.json"
    lst.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"list.json: expected a mapping video id -> class "
                                         r"scores, found list"):
        postprocess_results(_results(), str(lst))


def test_visualize_results_loader_refuses_code(tmp_path):
    path, marker = _crafted(tmp_path, "eval_results.pkl", _RunsSystem)
    with pytest.raises(UnsafePickleError, match=r"eval_results.pkl: refused .*posix.system"):
        vis.load_detections(str(path))
    assert not marker.exists()
