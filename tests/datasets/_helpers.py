"""Helpers shared by the dataset tests: hand-built annotation files and constructor kwargs."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tools") not in sys.path:  # the tools are scripts, not a package
    sys.path.insert(0, str(ROOT / "tools"))


def write_json(path: Path, database: Dict[str, Any]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"database": database}))
    return str(path)


def ds_kwargs(tmp_path: Path, **over: Any) -> Dict[str, Any]:
    """The 14 keys of cfg['dataset'] (THUMOS-like values, 8 channels, 2 classes)."""
    kw = dict(feat_folder=str(tmp_path / "feats"), json_file=str(tmp_path / "ann.json"),
              feat_stride=4, num_frames=16, default_fps=None, downsample_rate=1,
              max_seq_len=64, trunc_thresh=0.5, crop_ratio=None, input_dim=8, num_classes=2,
              file_prefix=None, file_ext=".npy", force_upsampling=False)
    kw.update(over)
    return kw


def video(subset: str = "Test", duration: float = 20.0, fps: float = 30.0,
          acts=((1.0, 3.0, "a", 0),)) -> Dict[str, Any]:
    """One JSON video; ``acts`` are (start s, end s, label, label_id)."""
    return {"subset": subset, "duration": duration, "fps": fps,
            "annotations": [{"label": l, "label_id": i, "segment": [s, e]}
                            for s, e, l, i in acts]}
