"""The probes behind the notifier's /status: real sockets and a real HTTP server, addresses without secrets."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from emberwatch.common.config import Settings
from emberwatch.common.dependency_health import probe_dependencies, public_url, split_host_port
from emberwatch.common.telemetry import free_port


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the name http.server calls
        self.send_response(200 if self.path in ("/health", "/v2/health/ready") else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_addresses_are_shown_without_credentials_or_paths():
    assert public_url("https://user:s3cret@mlflow.example:5443/path?token=abc") == "https://mlflow.example:5443"
    assert split_host_port("broker-1:9093", 9092) == ("broker-1", 9093)
    assert split_host_port("broker-2", 9092) == ("broker-2", 9092)
    assert split_host_port("[::1]:19092", 9092) == ("::1", 19092)


def test_each_dependency_is_up_only_when_it_answers():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        kafka, http = listener.getsockname()[1], server.server_address[1]
        closed = free_port()
        settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{closed},127.0.0.1:{kafka}",
                            mlflow_tracking_uri=f"http://ops:s3cret@127.0.0.1:{http}",
                            triton_url=f"127.0.0.1:{closed}")
        kafka_up, mlflow_up, triton_down = probe_dependencies(settings, timeout_s=2.0)
        assert (kafka_up.name, kafka_up.up) == ("kafka", True)  # one reachable bootstrap server is enough
        assert (mlflow_up.name, mlflow_up.up, mlflow_up.address) == ("mlflow", True, f"http://127.0.0.1:{http}")
        assert (triton_down.name, triton_down.up) == ("triton", False)
        settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{closed}", triton_url=f"127.0.0.1:{http}",
                            mlflow_tracking_uri=f"http://127.0.0.1:{closed}")
        assert [d.up for d in probe_dependencies(settings, timeout_s=2.0)] == [False, False, True]
    finally:
        server.shutdown()
        server.server_close()
        listener.close()
