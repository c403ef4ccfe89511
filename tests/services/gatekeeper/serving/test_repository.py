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


def test_triton_another_user_reads_everything_the_gatekeeper_writes(tmp_path):
    """In compose Triton (uid 1000) reads what the gatekeeper (uid 10001) writes: a 0600 config or a
    0700 version folder failed infra validation ("failed to open text file ... Permission denied")."""
    import os
    import stat

    repo = tmp_path / "repo"
    triton_repo.install_templates(repo)
    src = tmp_path / "art"
    src.mkdir()
    np.savez(src / "head.npz", mean=np.zeros(4, np.float32))
    (src / "head.json").write_text("{}")
    old = os.umask(0o077)  # even a strict umask: the repository's modes are explicit
    try:
        triton_repo.place_head(repo, 5, src)
        triton_repo.write_head_config(repo, [5], 2048)
        triton_repo.write_serving(repo, champion=5)
    finally:
        os.umask(old)
    for path in (repo / "head" / "5", repo / "head" / "config.pbtxt", triton_repo.serving_path(repo)):
        assert path.stat().st_mode & stat.S_IROTH, (path, oct(path.stat().st_mode))
    assert (repo / "head" / "5").stat().st_mode & stat.S_IXOTH


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


def _model_config(text: str):
    """Parse a config.pbtxt with Triton's own schema (model_config.proto): an unknown field or enum fails."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(text, model_config_pb2.ModelConfig())


def _exported(folder, *files: str, size: int = 32, dim: int = 2816):
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        (folder / name).write_bytes(b"model bytes")
    (folder / "backbone.json").write_text(json.dumps({"backbone_id": "resnet50-abc-32", "image_size": size,
                                                      "embedding_dim": dim, "precision": "fp32"}))
    return folder


def test_every_tracked_config_and_the_generated_head_config_follow_tritons_schema(tmp_path):
    repo = tmp_path / "repo"
    triton_repo.install_templates(repo)
    for rel in triton_repo.TEMPLATE_FILES:
        if rel.endswith(".pbtxt"):
            assert _model_config((repo / rel).read_text()).name == rel.split("/")[0]
    triton_repo.write_head_config(repo, [2, 5], 2816)
    head = _model_config((repo / "head" / "config.pbtxt").read_text())
    assert list(head.version_policy.specific.versions) == [2, 5] and list(head.input[0].dims) == [2816]


def test_the_gpu_runtime_serves_the_onnx_on_onnxruntime_with_tensorrt_fp16(tmp_path):
    from tritonclient.grpc import model_config_pb2

    repo = tmp_path / "repo"
    triton_repo.install_templates(repo, "onnxruntime-gpu")
    assert not (repo / "backbone").exists()  # no python backbone on this runtime
    with pytest.raises(FileNotFoundError, match="backbone.onnx"):  # an IR cannot be served there
        triton_repo.install_backbone(repo, _exported(tmp_path / "ir", "backbone.xml", "backbone.bin"),
                                     "onnxruntime-gpu")
    triton_repo.install_backbone(repo, _exported(tmp_path / "onnx", "backbone.onnx", size=128), "onnxruntime-gpu")
    config = _model_config((repo / "backbone" / "config.pbtxt").read_text())
    assert (config.name, config.backend, config.default_model_filename) == ("backbone", "onnxruntime", "backbone.onnx")
    assert [g.kind for g in config.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    assert [(i.name, list(i.dims)) for i in config.input] == [("IMAGES", [128, 128, 3])]
    assert [(o.name, list(o.dims)) for o in config.output] == [("EMBEDDINGS", [2816])]
    [trt] = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert trt.name == "tensorrt" and trt.parameters["precision_mode"] == "FP16"
    assert trt.parameters["trt_engine_cache_path"] == f"{repo}/backbone/1/trt-cache"
    assert config.dynamic_batching.preferred_batch_size and config.max_batch_size >= 16
    [warmup] = config.model_warmup
    assert warmup.batch_size == 8 and list(warmup.inputs["IMAGES"].dims) == [128, 128, 3]
    meta = triton_repo.backbone_meta(repo)
    assert (meta["precision"], meta["runtime"]) == ("fp16", "onnxruntime-gpu")
    # a restart re-installs the templates: the GPU config stays
    triton_repo.install_templates(repo, "onnxruntime-gpu")
    assert _model_config((repo / "backbone" / "config.pbtxt").read_text()).backend == "onnxruntime"


def test_the_cpu_runtime_takes_either_format_and_drops_the_other(tmp_path):
    repo = tmp_path / "repo"
    triton_repo.install_templates(repo)
    triton_repo.install_backbone(repo, _exported(tmp_path / "ir", "backbone.xml", "backbone.bin"))
    triton_repo.install_backbone(repo, _exported(tmp_path / "onnx", "backbone.onnx"))
    files = sorted(p.name for p in (repo / "backbone" / "1").iterdir())
    assert files == ["backbone.json", "backbone.onnx", "model.py"]
    assert triton_repo.backbone_meta(repo)["precision"] == "fp32"
    assert _model_config((repo / "backbone" / "config.pbtxt").read_text()).backend == "python"
    with pytest.raises(ValueError, match="unknown backbone runtime"):
        triton_repo.install_backbone(repo, tmp_path / "onnx", "tensorrt-cpu")


def test_infra_validation_tolerance_follows_the_served_precision():
    from services.gatekeeper.validate_candidate import tolerance_for

    assert tolerance_for("fp32", 2e-3) == tolerance_for(None, 2e-3) == 2e-3
    assert tolerance_for("fp16", 2e-3) == pytest.approx(2e-2)
    assert tolerance_for("int8", 2e-3) > tolerance_for("fp16", 2e-3)


def test_the_int8_runtime_serves_what_was_quantised_and_falls_back_to_fp32(tmp_path, caplog):
    from services.gatekeeper.serving.control import ServingControl

    repo = tmp_path / "repo"
    triton_repo.install_templates(repo, "openvino-cpu-int8")
    assert _model_config((repo / "backbone" / "config.pbtxt").read_text()).backend == "python"
    int8 = _exported(tmp_path / "int8", "backbone.xml", "backbone.bin")
    meta = json.loads((int8 / "backbone.json").read_text())
    (int8 / "backbone.json").write_text(json.dumps({**meta, "precision": "int8", "file": "backbone.xml"}))
    triton_repo.install_backbone(repo, int8, "openvino-cpu-int8")
    assert triton_repo.backbone_meta(repo)["precision"] == "int8"
    # no calibration tiles with the candidate: the FP32 ONNX serves, with a warning
    fp32 = _exported(tmp_path / "fp32", "backbone.onnx")
    assert ServingControl._quantize(fp32, tmp_path / "q", None) == fp32
    assert ServingControl._quantize(fp32, tmp_path / "q", tmp_path / "missing.npz") == fp32
    bad = tmp_path / "calibration.npz"
    np.savez(bad, images=np.zeros((3, 8, 8, 3), np.uint8))  # too few, wrong size: quantisation refuses
    assert ServingControl._quantize(fp32, tmp_path / "q", bad) == fp32
    assert "serving the backbone at FP32" in caplog.text
    triton_repo.install_backbone(repo, fp32, "openvino-cpu-int8")
    assert triton_repo.backbone_meta(repo)["precision"] == "fp32"
    assert sorted(p.name for p in (repo / "backbone" / "1").iterdir()) == ["backbone.json", "backbone.onnx", "model.py"]


def test_each_model_line_has_its_own_models_beside_mapbox(tmp_path):
    repo = tmp_path / "repo"
    swir = triton_repo.LineModels.for_product("sentinel2-swir")
    assert swir == triton_repo.LineModels("wildfire_sentinel2_swir", "backbone_sentinel2_swir", "head_sentinel2_swir")
    assert triton_repo.MAPBOX_MODELS == triton_repo.LineModels("wildfire", "backbone", "head")
    triton_repo.install_templates(repo)
    triton_repo.install_templates(repo, models=swir)
    for rel in triton_repo.TEMPLATE_FILES:  # Mapbox's are the templates, byte for byte
        assert (repo / rel).read_bytes() == (triton_repo.TEMPLATES / rel).read_bytes()
    bls = (repo / "wildfire_sentinel2_swir" / "config.pbtxt").read_text()
    assert 'name: "wildfire_sentinel2_swir"' in bls and 'name: "wildfire"' not in bls
    assert 'key: "backbone", value: { string_value: "backbone_sentinel2_swir" }' in bls
    assert 'key: "head", value: { string_value: "head_sentinel2_swir" }' in bls
    assert 'name: "backbone_sentinel2_swir"' in (repo / "backbone_sentinel2_swir" / "config.pbtxt").read_text()
    assert (repo / "wildfire_sentinel2_swir" / "1" / "model.py").is_file()
    assert (repo / "head_sentinel2_swir" / "model.py").is_file()

    src = tmp_path / "art"
    src.mkdir()
    np.savez(src / "head.npz", mean=np.zeros(4, np.float32))
    (src / "head.json").write_text("{}")
    triton_repo.place_head(repo, 2, src, swir)
    triton_repo.write_head_config(repo, [2], 2048, swir)
    assert 'name: "head_sentinel2_swir"' in (repo / "head_sentinel2_swir" / "config.pbtxt").read_text()
    assert triton_repo.head_versions_on_disk(repo, swir) == [2] and triton_repo.head_versions_on_disk(repo) == []
    triton_repo.write_serving(repo, swir, champion=2)
    assert triton_repo.read_serving(repo, swir)["champion"] == "2"
    assert triton_repo.read_serving(repo)["champion"] is None  # Mapbox's champion untouched
    gpu = triton_repo.gpu_backbone_config(repo, 64, 2048, swir)
    assert 'name: "backbone_sentinel2_swir"' in gpu and f"{repo}/backbone_sentinel2_swir/1/trt-cache" in gpu
