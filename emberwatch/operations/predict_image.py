"""Ask Triton's ``wildfire`` model (or another model line's, ``triton_model_for``) about one image,
over HTTP or gRPC."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL = "wildfire"
CLASSES = ("nowildfire", "wildfire")


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    model_version: str
    protocol: str


def predict_bytes(data: bytes, *, url: str, protocol: str = "http", timeout_s: float = 30.0,
                  grpc_tls: bool = False, grpc_tls_ca: Path | None = None, model: str = MODEL) -> Prediction:
    """Send encoded JPEG/PNG bytes to Triton's ``model``; return the champion's answer. gRPC goes over TLS when
    ``grpc_tls`` or a CA file ``grpc_tls_ca`` is given (``emberwatch.common.triton_client.grpc_client``)."""
    if protocol == "grpc":
        import tritonclient.grpc as client
    elif protocol == "http":
        import tritonclient.http as client
    else:
        raise ValueError("protocol must be http or grpc")
    tensor = np.array([[data]], dtype=np.object_)
    inp = client.InferInput("IMAGE_BYTES", [1, 1], "BYTES")
    inp.set_data_from_numpy(tensor)
    outputs = [client.InferRequestedOutput("PROBABILITIES"), client.InferRequestedOutput("MODEL_VERSION")]
    if protocol == "grpc":
        from emberwatch.common.triton_client import grpc_client

        conn = grpc_client(url, tls=grpc_tls, ca=grpc_tls_ca)
        result = conn.infer(model, [inp], outputs=outputs, client_timeout=timeout_s)
    else:
        conn = client.InferenceServerClient(url=url, connection_timeout=timeout_s, network_timeout=timeout_s)
        result = conn.infer(model, [inp], outputs=outputs)
    conn.close()
    probs = result.as_numpy("PROBABILITIES").reshape(-1)[:2].astype(float)
    version = result.as_numpy("MODEL_VERSION").reshape(-1)[0]
    version = version.decode() if isinstance(version, bytes) else str(version)
    return Prediction(label=CLASSES[int(np.argmax(probs))],
                      probabilities={c: float(p) for c, p in zip(CLASSES, probs, strict=True)},
                      model_version=version, protocol=protocol)


def predict_file(path: Path, **kwargs) -> Prediction:
    return predict_bytes(Path(path).read_bytes(), **kwargs)
