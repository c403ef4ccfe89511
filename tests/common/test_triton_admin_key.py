"""The Triton client sends the admin key on the model-repository calls only: against a small HTTP server
on 127.0.0.1 that answers like a Triton started with ``--http-restricted-api=model-repository:...``
(403 without the header), and records every request's path and headers. Then the flags compose.yaml
starts Triton with (``restricted_api_flags``) on a real tritonserver (the local stack's, CPU): model
control needs the key over HTTP and gRPC, health does not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from pydantic import SecretStr

from emberwatch.common.triton_client import ADMIN_APIS, ADMIN_HEADER, Triton, TritonError, restricted_api_flags

KEY = "k3y-0f-the-m0del-rep0sitory"
pytestmark = pytest.mark.timeout(60)


class FakeTriton(BaseHTTPRequestHandler):
    requests: list[tuple[str, str, dict[str, str]]]  # (method, path, headers), set per server

    def log_message(self, *args) -> None:  # quiet
        pass

    def _answer(self, status: int, body: object = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        return body

    def do_GET(self) -> None:  # noqa: N802
        self._record()
        if self.path.startswith("/v2/health/live"):
            self._answer(200)
        elif self.path.startswith("/v2/models/wildfire/ready"):
            self._answer(200)
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:  # noqa: N802
        body = self._record()
        if self.path.startswith("/v2/repository/"):
            if self.headers.get(ADMIN_HEADER) != KEY:  # what a restricted Triton answers
                self._answer(403, {"error": f"This API is restricted, expecting header '{ADMIN_HEADER}'"})
            elif self.path == "/v2/repository/index":
                self._answer(200, [{"name": "wildfire", "version": "1", "state": "READY"}])
            else:
                self._answer(200)
        elif self.path == "/v2/models/wildfire/infer":
            request = json.loads(body[: int(self.headers.get("Inference-Header-Content-Length") or len(body))])
            n = request["inputs"][0]["shape"][0]
            self._answer(200, {"model_name": "wildfire", "outputs": [
                {"name": "ALL_PROBABILITIES", "datatype": "FP32", "shape": [n, 1, 2], "data": [0.25, 0.75] * n},
                {"name": "ALL_VERSIONS", "datatype": "BYTES", "shape": [1, 1], "data": ["3"]}]})
        else:
            self._answer(404, {"error": "not found"})


@pytest.fixture
def server() -> Iterator[tuple[str, list]]:
    seen: list[tuple[str, str, dict[str, str]]] = []
    handler = type("Handler", (FakeTriton,), {"requests": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_the_admin_key_goes_with_load_unload_and_index_only(server):
    url, seen = server
    triton = Triton(url, timeout_s=10, admin_key=SecretStr(KEY))
    try:
        triton.load("head_3")
        triton.unload("head_3")
        assert triton.repository_index() == [{"name": "wildfire", "version": "1", "state": "READY"}]
        assert triton.live() and triton.ready("wildfire")
        scores = triton.score_array(np.zeros((2, 4, 4, 3), dtype=np.float32))
        assert scores.versions == ["3"] and scores.wildfire("3").tolist() == [0.75, 0.75]
    finally:
        triton.close()
    by_path = {path.split("?")[0]: headers for _, path, headers in seen}
    for path in ("/v2/repository/models/head_3/load", "/v2/repository/models/head_3/unload",
                 "/v2/repository/index"):
        assert by_path[path].get(ADMIN_HEADER) == KEY, path
    for path in ("/v2/health/live", "/v2/models/wildfire/ready", "/v2/models/wildfire/infer"):
        assert ADMIN_HEADER not in by_path[path], f"{path} must not carry the admin key"


@pytest.mark.parametrize("admin_key", [None, SecretStr(""), SecretStr("wrong")])
def test_without_the_key_the_restricted_calls_are_refused(server, admin_key):
    url, seen = server
    triton = Triton(url, timeout_s=10, admin_key=admin_key)
    try:
        with pytest.raises(TritonError, match="loading head_3 failed: .*restricted"):
            triton.load("head_3")
        with pytest.raises(TritonError, match="unloading head_3 failed"):
            triton.unload("head_3")
        with pytest.raises(TritonError, match="index failed"):
            triton.repository_index()
        assert triton.live()  # health stays open
    finally:
        triton.close()
    sent = [headers.get(ADMIN_HEADER) for _, path, headers in seen if path.startswith("/v2/repository/")]
    assert len(sent) == 3
    assert sent == [None] * 3 if admin_key is None or not admin_key.get_secret_value() else ["wrong"] * 3
    assert "wrong" not in str(vars(triton))  # held as a SecretStr


def test_the_server_flags_restrict_the_admin_apis_on_both_protocols():
    http, grpc = restricted_api_flags("s3cret")
    spec = f"{','.join(ADMIN_APIS)}:{ADMIN_HEADER}=s3cret"
    assert http == f"--http-restricted-api={spec}" and grpc == f"--grpc-restricted-protocol={spec}"
    assert "model-repository" in ADMIN_APIS and "inference" not in ADMIN_APIS and "health" not in ADMIN_APIS


def test_a_real_triton_started_with_the_flags_refuses_model_control_without_the_key(tmp_path):
    """The bundled tritonserver (CPU) started with restricted_api_flags, as compose.yaml starts the
    deployed one: the repository index, load and unload need the key over HTTP and gRPC; health,
    metadata and readiness do not."""
    import os
    import time

    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    from emberwatch.stack import manage, parts, processes
    from tests.conftest import stack_settings

    settings = stack_settings(tmp_path / "state", "triton")
    part = parts.triton(settings)
    record = processes.start("triton", [*part.argv, *restricted_api_flags(KEY)],
                             log_path=manage.log_path(settings, "triton"),
                             pid_path=manage.pid_path(settings, "triton"),
                             env={**os.environ, **part.env}, cwd=settings.state_dir)
    try:
        deadline = time.monotonic() + 60
        while not part.healthy():
            assert processes.is_running(record) and time.monotonic() < deadline, \
                manage.tail(manage.log_path(settings, "triton"), 15)
            time.sleep(0.2)
        keyed = Triton(settings.triton_url, timeout_s=30, admin_key=SecretStr(KEY))
        bare = Triton(settings.triton_url, timeout_s=30)
        try:
            assert keyed.repository_index() == []  # an empty repository, read with the key
            with pytest.raises(TritonError, match="restricted"):
                bare.repository_index()
            with pytest.raises(TritonError, match="restricted"):
                bare.load("head_1")
            with pytest.raises(TritonError) as refused:
                keyed.load("head_1")  # allowed through, then not found
            assert "restricted" not in str(refused.value)
            assert bare.live() and not bare.ready("head_1")
        finally:
            keyed.close()
            bare.close()
        grpc = grpcclient.InferenceServerClient(settings.triton_grpc_url)
        try:
            with pytest.raises(InferenceServerException, match="restricted"):
                grpc.get_model_repository_index()
            index = grpc.get_model_repository_index(headers={f"triton-grpc-protocol-{ADMIN_HEADER}": KEY})
            assert list(index.models) == []
            assert grpc.is_server_live()
        finally:
            grpc.close()
    finally:
        processes.stop(record)
