"""libs/core/atomic.py: write_json_atomic writes the exact json.dump text, creates the folder,
and on a failure leaves the previous file and no temporary file behind."""
from __future__ import annotations

import pytest

from libs.core.atomic import write_json_atomic


def test_writes_the_json_text_and_creates_the_folder(tmp_path):
    path = tmp_path / "new" / "sub" / "a.json"
    write_json_atomic({"b": [1, 2.5], "a": "x"}, str(path))
    assert path.read_text(encoding="utf-8") == '{"b": [1, 2.5], "a": "x"}'
    write_json_atomic({"k": [1]}, str(path), indent=1)
    assert path.read_text(encoding="utf-8") == '{\n "k": [\n  1\n ]\n}'
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json_atomic({"a": object()}, str(path))
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
