"""Triton python model ``head``, one numbered version per registered model version.

The gatekeeper copies this file into ``head/<version>/`` next to that version's ``head.npz`` and
``head.json`` (the trainer's export). Embeddings (N, D) -> probabilities (N, 2), computed by
``emberwatch.ml.head.head_predict_numpy``: the same math as the trainer's Keras head.
"""

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
        from emberwatch.ml.head import head_predict_numpy

        folder = Path(args["model_repository"]) / args["model_version"]
        self.meta = json.loads((folder / "head.json").read_text())
        with np.load(folder / "head.npz") as data:
            self.arrays = {k: np.asarray(data[k], dtype=np.float32) for k in data.files}
        missing = {"mean", "variance", "w1", "b1", "w2", "b2"} - set(self.arrays)
        if missing:
            raise ValueError(f"head.npz lacks {sorted(missing)}")
        w1, w2 = self.arrays["w1"], self.arrays["w2"]
        dim = self.arrays["mean"].shape[0]
        if w1.shape[0] != dim or w2.shape != (w1.shape[1], 2) or self.arrays["b2"].shape != (2,):
            raise ValueError(f"inconsistent head shapes: mean {self.arrays['mean'].shape}, "
                             f"w1 {w1.shape}, w2 {w2.shape}, b2 {self.arrays['b2'].shape}")
        self.dim = dim
        self.epsilon = float(self.meta.get("epsilon", 1e-7))
        self.predict = head_predict_numpy
        self.predict(self.arrays, np.zeros((1, dim), np.float32), self.epsilon)

    def execute(self, requests):
        inputs = [pb_utils.get_input_tensor_by_name(r, "EMBEDDINGS").as_numpy() for r in requests]
        good = [x for x in inputs if x.ndim == 2 and x.shape[1] == self.dim]
        probs = self.predict(self.arrays, np.concatenate(good), self.epsilon) if good else None
        responses, start = [], 0
        for x in inputs:
            if not (x.ndim == 2 and x.shape[1] == self.dim):
                msg = f"EMBEDDINGS must be (N, {self.dim}), got {x.shape}"
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(msg)))
                continue
            part = probs[start:start + len(x)]
            start += len(x)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("PROBABILITIES", part)]))
        return responses
