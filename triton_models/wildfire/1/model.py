"""Triton BLS model ``wildfire``: decode -> backbone once -> the requested head versions.

Each model line serves its own copy (``wildfire_<product>``, written by the gatekeeper): the config's
parameters ``backbone`` and ``head`` name the models it calls (absent: ``backbone`` and ``head``).

The BLS calls are synchronous (``exec``): an ``async def execute`` cost the python backend 2-3 ms
more per request at concurrency 1 (measured, benchmarks/serving.md), and with the image statistics
at 0.15 ms there is nothing left worth overlapping with the backbone."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

# The python backend stub ignores PYTHONPATH: put the Emberwatch checkout on sys.path ourselves.
for _root in (os.environ.get("EMBERWATCH_CODE_ROOT", ""), *os.environ.get("PYTHONPATH", "").split(os.pathsep)):
    if _root and _root not in sys.path:
        sys.path.insert(0, _root)

BACKBONE_MAX_BATCH = 16
ROLES = ("champion", "challenger", "previous")


def client_error(message):
    """An error that is the client's fault: HTTP 400 / gRPC INVALID_ARGUMENT, not a server error."""
    code = getattr(pb_utils.TritonError, "INVALID_ARG", None)
    return pb_utils.TritonError(message, code) if code is not None else pb_utils.TritonError(message)


class _JsonFile:
    """A small JSON file re-read only when it changes (it is replaced atomically)."""

    def __init__(self, path):
        self.path = Path(path)
        self.key = None
        self.value = {}

    def get(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.key, self.value = None, {}
            return self.value
        key = (st.st_mtime_ns, st.st_ino, st.st_size)
        if key != self.key:
            self.value = json.loads(self.path.read_text())
            self.key = key
        return self.value


class TritonPythonModel:
    def initialize(self, args):
        from emberwatch.ml.evidence import evidence_factor, shrink_by, texture
        from emberwatch.ml.images import decode_image, limit_pillow

        limit_pillow()  # Pillow's decompression-bomb limit in this process: low and explicit
        self.decode_image = decode_image  # refuses too many bytes or declared pixels before decoding
        self.evidence = lambda images: evidence_factor(texture(images))
        self.shrink_by = shrink_by
        parameters = json.loads(args.get("model_config") or "{}").get("parameters") or {}
        self.backbone_model = (parameters.get("backbone") or {}).get("string_value") or "backbone"
        self.head_model = (parameters.get("head") or {}).get("string_value") or "head"
        model_dir = Path(args["model_repository"])
        self.serving = _JsonFile(model_dir / "serving.json")
        self.backbone_meta = _JsonFile(model_dir.parent / self.backbone_model / "1" / "backbone.json")

    # --- request parsing -------------------------------------------------------------------
    def _versions(self, request, serving):
        params = json.loads(request.parameters() or "{}")
        wanted = str(params.get("versions") or params.get("version") or "champion")
        if params.get("shadow") in (True, "true", "1", 1) and "versions" not in params:
            wanted = "champion,challenger"
        versions = []
        for token in (t.strip() for t in wanted.split(",") if t.strip()):
            version = serving.get(token) if token in ROLES else token
            if token in ROLES and not version:
                if token == "champion":
                    raise ValueError("no champion model is being served yet")
                continue  # no challenger/previous right now: shadow degrades to champion only
            if not str(version).isdigit():
                raise ValueError(f"unknown head version {token!r}")
            if str(version) not in versions:
                versions.append(str(version))
        if not versions:
            raise ValueError("no head version requested")
        return versions

    def _images(self, request, size):
        raw = pb_utils.get_input_tensor_by_name(request, "IMAGE_BYTES")
        if raw is not None:
            blobs = raw.as_numpy().reshape(-1)
            return np.stack([self.decode_image(bytes(b), size) for b in blobs]).astype(np.float32)
        tensor = pb_utils.get_input_tensor_by_name(request, "IMAGES")
        if tensor is None:
            raise ValueError("send IMAGE_BYTES (encoded JPEG/PNG) or IMAGES (float32 RGB)")
        x = tensor.as_numpy()
        if x.shape[1:] != (size, size, 3):
            raise ValueError(f"IMAGES must be (N, {size}, {size}, 3), got {x.shape}")
        return np.ascontiguousarray(x, dtype=np.float32)

    # --- BLS calls -------------------------------------------------------------------------
    def _call(self, model, name, array, output, version=-1):
        request = pb_utils.InferenceRequest(
            model_name=model, model_version=int(version),
            inputs=[pb_utils.Tensor(name, array)], requested_output_names=[output])
        response = request.exec()
        if response.has_error():
            raise RuntimeError(f"{model} v{version}: {response.error().message()}")
        return pb_utils.get_output_tensor_by_name(response, output).as_numpy()

    def _embed(self, images):
        return np.concatenate([self._call(self.backbone_model, "IMAGES", images[i:i + BACKBONE_MAX_BATCH], "EMBEDDINGS")
                               for i in range(0, len(images), BACKBONE_MAX_BATCH)])

    def execute(self, requests):
        serving = self.serving.get()
        size = int(self.backbone_meta.get().get("image_size", 224))
        responses = [None] * len(requests)
        batch, plan = [], []
        for i, request in enumerate(requests):
            try:
                versions = self._versions(request, serving)
                images = self._images(request, size)
            except Exception as exc:  # bad input (not an image, wrong shape, unknown version): this request only
                responses[i] = pb_utils.InferenceResponse(error=client_error(str(exc)))
                continue
            plan.append((i, len(images), versions))
            batch.append(images)
        if not batch:
            return responses
        try:
            images = np.concatenate(batch)
            emb = self._embed(images)
            # an image without spatial variation is evidence of nothing (emberwatch.ml.evidence);
            # its statistics are computed once for every version asked
            factors = self.evidence(images)
            needed = sorted({v for _, _, vs in plan for v in vs}, key=int)
            outs = [self._call(self.head_model, "EMBEDDINGS", emb, "PROBABILITIES", v) for v in needed]
            by_version = {v: self.shrink_by(p, factors) for v, p in zip(needed, outs)}
        except Exception as exc:
            for i, _, _ in plan:
                responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(str(exc)))
            return responses
        start = 0
        for i, n, versions in plan:
            probs = np.stack([by_version[v][start:start + n] for v in versions], axis=1)
            start += n
            names = np.array([[v.encode() for v in versions]] * n, dtype=np.object_)
            responses[i] = pb_utils.InferenceResponse([
                pb_utils.Tensor("PROBABILITIES", np.ascontiguousarray(probs[:, 0, :])),
                pb_utils.Tensor("MODEL_VERSION", names[:, :1]),
                pb_utils.Tensor("ALL_PROBABILITIES", np.ascontiguousarray(probs)),
                pb_utils.Tensor("ALL_VERSIONS", names),
            ])
        return responses
