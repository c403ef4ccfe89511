"""child_path: a name from outside becomes a path under its root, or nothing."""

from __future__ import annotations

import pytest

from emberwatch.common.safe_paths import UnsafePath, child_path


def test_plain_names_stay_under_the_root(tmp_path):
    assert child_path(tmp_path, "candidates", "12") == tmp_path.resolve() / "candidates" / "12"
    assert child_path(tmp_path, "7.json") == tmp_path.resolve() / "7.json"


@pytest.mark.parametrize("parts", [
    ("..",), ("candidates", ".."), ("../x",), ("/tmp/x",), ("a/b",), ("a\\b",), ("",), (".",), ("a\x00b",), (),
])
def test_names_that_leave_the_root_are_refused(tmp_path, parts):
    with pytest.raises(UnsafePath):
        child_path(tmp_path, *parts)


def test_a_symlink_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafePath):
        child_path(root, "link", "x")
