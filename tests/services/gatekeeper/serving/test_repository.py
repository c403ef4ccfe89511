"""The Triton model repository's files: templates, heads and their config, the serving roles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from services.gatekeeper.serving import repository as triton_repo


def test_head_versions_and_config_are_written_before_loading(tmp_path):
    repo = tmp_path / "repo"
    triton_repo.install_templates(repo)
    for rel in triton_repo.TEMPLATE_FILES:
        assert (repo / rel).is_file()
    src = tmp_path / "art"
    src.mkdir()
    np.savez(src / "head.npz", mean=np.zeros(4, np.float32))
    (src / "head.json").write_text("{}")
    triton_repo.place_head(repo, "7", src)
    triton_repo.place_head(repo, 3, src)
    assert triton_repo.head_versions_on_disk(repo) == [3, 7]
    assert (repo / "head" / "7" / "model.py").read_text() == (repo / "head" / "model.py").read_text()
    triton_repo.write_head_config(repo, [7, 3, 3], 2048)
    assert triton_repo.head_config_versions(repo) == [3, 7]
    assert "dims: [ 2048 ]" in (repo / "head" / "config.pbtxt").read_text()
    with pytest.raises(ValueError):
        triton_repo.write_head_config(repo, [], 2048)
    triton_repo.remove_head(repo, 3)
    assert triton_repo.head_versions_on_disk(repo) == [7]
    with pytest.raises(FileNotFoundError):
        triton_repo.place_head(repo, 9, tmp_path / "nothing")


def test_serving_roles_are_replaced_atomically(tmp_path):
    repo = tmp_path / "repo"
    assert triton_repo.read_serving(repo) == {"champion": None, "challenger": None, "previous": None}
    triton_repo.write_serving(repo, champion=2, challenger="3")
    triton_repo.write_serving(repo, challenger=None, previous="1")
    assert json.loads(triton_repo.serving_path(repo).read_text()) == {
        "champion": "2", "challenger": None, "previous": "1"}
    assert not [p for p in (repo / "wildfire").iterdir() if p.name.startswith(".")]
    with pytest.raises(ValueError):
        triton_repo.write_serving(repo, king="1")
