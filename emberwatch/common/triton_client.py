"""Talking to Triton: explicit load/unload, readiness, and scoring images through ``wildfire``.

A deployed Triton restricts its model-repository API (load, unload, index) to requests that carry
the header ``ADMIN_HEADER`` with the admin key (``--http-restricted-api`` /
``--grpc-restricted-protocol``, compose.yaml). The client sends the key on those calls only, and only
when it has one (``EMBERWATCH_TRITON_ADMIN_KEY``); inference and health never carry it.

A deployed Triton also serves gRPC over TLS only (``grpc_tls_flags``); ``grpc_client`` talks to it
and checks its certificate.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient
from PIL import Image
from pydantic import SecretStr
from tritonclient.utils import InferenceServerException

# The header Triton checks on the restricted APIs (gRPC: ``triton-grpc-protocol-<ADMIN_HEADER>``).
ADMIN_HEADER = "emberwatch-admin-key"
# The API groups compose.yaml restricts to the admin key: model control, and the other
# administrative groups no service uses (configuration, shared memory, statistics, trace, logging).
ADMIN_APIS = ("model-repository", "model-config", "shared-memory", "statistics", "trace", "logging")


def restricted_api_flags(key: str) -> list[str]:
    """tritonserver's flags that restrict ``ADMIN_APIS`` to requests carrying ``key``."""
    spec = f"{','.join(ADMIN_APIS)}:{ADMIN_HEADER}={key}"
    return [f"--http-restricted-api={spec}", f"--grpc-restricted-protocol={spec}"]


def grpc_tls_flags(cert: Path, key: Path) -> list[str]:
    """tritonserver's flags that serve gRPC over TLS only, with ``cert`` and ``key`` (PEM files).
    Triton's HTTP endpoint has no TLS of its own."""
    return ["--grpc-use-ssl=true", f"--grpc-server-cert={cert}", f"--grpc-server-key={key}"]


def grpc_client(url: str, *, tls: bool = False, ca: Path | None = None):
    """A tritonclient gRPC client of ``url``: over TLS when ``tls`` or a ``ca`` file is given, the
    server's certificate verified against ``ca`` (else the system's roots)."""
    import tritonclient.grpc as grpcclient

    return grpcclient.InferenceServerClient(url=url, ssl=tls or ca is not None,
                                            root_certificates=str(ca) if ca is not None else None)


EXPECTED_INPUTS = {"IMAGE_BYTES": "BYTES", "IMAGES": "FP32"}
EXPECTED_OUTPUTS = {"PROBABILITIES": "FP32", "MODEL_VERSION": "BYTES",
                    "ALL_PROBABILITIES": "FP32", "ALL_VERSIONS": "BYTES"}


class TritonError(RuntimeError):
    """Triton refused a load or an inference."""


@dataclass(frozen=True)
class Scores:
    """Probabilities per head version for a batch of images: ``probs[version]`` is (N, 2)."""

    versions: list[str]
    probs: dict[str, np.ndarray]

    def wildfire(self, version: str) -> np.ndarray:
        return self.probs[version][:, 1]


def png_bytes(image_uint8: np.ndarray) -> bytes:
    """Lossless encoding of an RGB uint8 image (decoding it gives the same pixels back)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image_uint8, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


class Triton:
    """Triton over HTTP, safe to use from any thread.

    ``tritonclient.http`` runs on gevent: a client (its connection pool) belongs to the thread that
    made it, and using it from another thread fails with "Cannot switch to a different thread". The
    service calls Triton from asyncio worker threads, so every thread gets a client of its own.
    """

    def __init__(self, url: str, *, model: str = "wildfire", timeout_s: float = 120.0,
                 admin_key: SecretStr | None = None):
        self.model = model
        self.url = url
        self.timeout_s = timeout_s
        self._admin_key = admin_key if admin_key is not None and admin_key.get_secret_value() else None
        self._local = threading.local()

    def _admin_headers(self) -> dict[str, str] | None:
        """The admin key's header for the model-repository calls; None without a key."""
        if self._admin_key is None:
            return None
        return {ADMIN_HEADER: self._admin_key.get_secret_value()}

    @property
    def client(self) -> httpclient.InferenceServerClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpclient.InferenceServerClient(
                self.url, connection_timeout=self.timeout_s, network_timeout=self.timeout_s)
            self._local.client = client
        return client

    def close(self) -> None:
        """Close this thread's client (others are closed by their threads' end or at exit)."""
        client = getattr(self._local, "client", None)
        if client is not None:
            self._local.client = None
            client.close()

    def live(self) -> bool:
        """Whether the server answers at all (a refused connection is ``False``, not an error)."""
        try:
            return bool(self.client.is_server_live())
        except Exception:  # noqa: BLE001 - connection refused/reset while Triton restarts
            return False

    # --- control ---------------------------------------------------------------------------
    def load(self, name: str) -> None:
        try:
            self.client.load_model(name, headers=self._admin_headers())
        except InferenceServerException as exc:
            raise TritonError(f"loading {name} failed: {exc.message()}") from exc

    def unload(self, name: str) -> None:
        try:
            self.client.unload_model(name, headers=self._admin_headers())
        except InferenceServerException as exc:
            raise TritonError(f"unloading {name} failed: {exc.message()}") from exc

    def repository_index(self) -> list[dict]:
        """Every model in the repository with its state (Triton's model-repository index)."""
        try:
            return list(self.client.get_model_repository_index(headers=self._admin_headers()))
        except InferenceServerException as exc:
            raise TritonError(f"reading the model repository index failed: {exc.message()}") from exc

    def ready(self, name: str, version: str = "") -> bool:
        try:
            return bool(self.client.is_model_ready(name, str(version)))
        except InferenceServerException:
            return False

    def signature_problems(self) -> list[str]:
        """What differs between the served ``wildfire`` signature and the contract."""
        meta = self.client.get_model_metadata(self.model)
        problems = []
        for kind, expected in (("inputs", EXPECTED_INPUTS), ("outputs", EXPECTED_OUTPUTS)):
            got = {t["name"]: t["datatype"] for t in meta.get(kind, [])}
            for name, dtype in expected.items():
                if got.get(name) != dtype:
                    problems.append(f"{kind[:-1]} {name}: expected {dtype}, got {got.get(name)}")
        return problems

    # --- scoring ---------------------------------------------------------------------------
    def score_bytes(self, images: list[bytes], versions: str = "champion") -> Scores:
        data = np.array([[b] for b in images], dtype=np.object_)
        inp = httpclient.InferInput("IMAGE_BYTES", list(data.shape), "BYTES")
        inp.set_data_from_numpy(data, binary_data=True)
        return self._infer(inp, versions, len(images))

    def score_array(self, images: np.ndarray, versions: str = "champion") -> Scores:
        data = np.ascontiguousarray(images, dtype=np.float32)
        inp = httpclient.InferInput("IMAGES", list(data.shape), "FP32")
        inp.set_data_from_numpy(data, binary_data=True)
        return self._infer(inp, versions, len(images))

    def _infer(self, inp, versions: str, n: int) -> Scores:
        outputs = [httpclient.InferRequestedOutput(name, binary_data=True)
                   for name in ("ALL_PROBABILITIES", "ALL_VERSIONS")]
        try:
            result = self.client.infer(self.model, [inp], outputs=outputs,
                                       parameters={"versions": versions})
        except InferenceServerException as exc:
            raise TritonError(f"inference failed: {exc.message()}") from exc
        probs = result.as_numpy("ALL_PROBABILITIES")
        names = [v.decode() if isinstance(v, bytes) else str(v) for v in result.as_numpy("ALL_VERSIONS")[0]]
        if probs.shape != (n, len(names), 2):
            raise TritonError(f"unexpected output shape {probs.shape} for {n} images, versions {names}")
        return Scores(versions=names, probs={v: probs[:, i, :] for i, v in enumerate(names)})

    def score_many(self, images: list[bytes], versions: str, batch: int = 8) -> Scores:
        """Score any number of encoded images in batches; the versions must stay the same."""
        parts = [self.score_bytes(images[i:i + batch], versions) for i in range(0, len(images), batch)]
        if not parts:
            return Scores(versions=[], probs={})
        names = parts[0].versions
        if any(p.versions != names for p in parts):
            raise TritonError("the serving versions changed while scoring")
        return Scores(versions=names, probs={v: np.concatenate([p.probs[v] for p in parts]) for v in names})
