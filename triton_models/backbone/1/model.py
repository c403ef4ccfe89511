"""Triton python model ``backbone``: float32 RGB images in [0, 255] -> pooled embeddings
(``emberwatch.ml.backbone.POOLING``). It compiles the exported ``backbone.onnx`` (or an older
OpenVINO IR ``backbone.xml``, as ``backbone.json`` says) with OpenVINO on the CPU, at FP32."""

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


class TritonPythonModel:
    def initialize(self, args):
        import openvino as ov

        folder = Path(args["model_repository"]) / args["model_version"]
        self.meta = json.loads((folder / "backbone.json").read_text())
        core = ov.Core()
        threads = int(os.environ.get("EMBERWATCH_OPENVINO_THREADS", "0") or 0)
        # FP32 whatever the CPU: OpenVINO would pick bfloat16 on AVX512_BF16/AMX CPUs
        # (emberwatch.ml.backbone.OPENVINO_CPU_CONFIG says why).
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads > 0:
            config["INFERENCE_NUM_THREADS"] = threads
        self.compiled = core.compile_model(str(folder / self.meta.get("file", "backbone.xml")), "CPU", config)
        self.output = self.compiled.outputs[0]
        self.size = int(self.meta["image_size"])

    def execute(self, requests):
        arrays, errors = [], {}
        for i, request in enumerate(requests):
            x = pb_utils.get_input_tensor_by_name(request, "IMAGES").as_numpy()
            if x.shape[1:] != (self.size, self.size, 3):
                errors[i] = f"IMAGES must be (N, {self.size}, {self.size}, 3), got {x.shape}"
                arrays.append(None)
            else:
                arrays.append(np.ascontiguousarray(x, dtype=np.float32))
        good = [a for a in arrays if a is not None]
        emb = self.compiled(np.concatenate(good))[self.output] if good else None
        responses, start = [], 0
        for i, a in enumerate(arrays):
            if a is None:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[i])))
                continue
            part = np.asarray(emb[start:start + len(a)], dtype=np.float32)
            start += len(a)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("EMBEDDINGS", part)]))
        return responses
