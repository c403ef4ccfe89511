from __future__ import annotations

import pytest

from emberwatch.ml.settings import MLSettings

SIZE = 32


@pytest.fixture(scope="session")
def ml_state(tmp_path_factory):
    return tmp_path_factory.mktemp("ml-state")


@pytest.fixture(scope="session")
def ml_settings(ml_state) -> MLSettings:
    return MLSettings(state_dir=ml_state, image_size=SIZE, backbone_weights=None, backbone_seed=0)


@pytest.fixture(scope="session")
def backbone(ml_settings):
    from emberwatch.ml.backbone import load_backbone

    return load_backbone(ml_settings)
