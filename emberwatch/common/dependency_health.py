"""Whether the parts every deployment depends on answer, probed from this process: Kafka (a TCP
connection to one of the bootstrap servers), MLflow (``/health``) and Triton (``/v2/health/ready``).
The same probes hold on the local stack and in a cluster; the addresses shown carry no credentials."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from emberwatch.common.config import Settings


@dataclass(frozen=True)
class DependencyHealth:
    name: str
    address: str  # host:port or scheme://host:port, never a user name or password
    up: bool


def split_host_port(address: str, default_port: int) -> tuple[str, int]:
    """``(host, port)`` of ``host:port`` (``[v6]:port`` too); the default port when none is given."""
    parsed = urlsplit(f"//{address.strip()}")
    try:
        port = parsed.port or default_port
    except ValueError:
        port = default_port
    return parsed.hostname or "", port


def public_url(url: str) -> str:
    """``scheme://host:port`` of ``url``: no user info, path or query (they may hold secrets)."""
    parsed = urlsplit(url)
    try:
        port = f":{parsed.port}" if parsed.port else ""
    except ValueError:
        port = ""
    return f"{parsed.scheme}://{parsed.hostname or ''}{port}"


def tcp_reachable(host: str, port: int, timeout_s: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def http_ok(url: str, timeout_s: float) -> bool:
    try:
        return httpx.get(url, timeout=timeout_s, follow_redirects=False).status_code == 200
    except (httpx.HTTPError, ValueError):
        return False


def kafka_health(settings: Settings, timeout_s: float) -> DependencyHealth:
    servers = settings.kafka_servers
    up = any(tcp_reachable(*split_host_port(s, 9092), timeout_s) for s in servers)
    return DependencyHealth("kafka", ",".join(servers), up)


def mlflow_health(settings: Settings, timeout_s: float) -> DependencyHealth:
    uri = settings.mlflow_tracking_uri
    if urlsplit(uri).scheme not in ("http", "https"):  # a local file or database store: nothing to probe
        return DependencyHealth("mlflow", urlsplit(uri).scheme or "file", True)
    base = public_url(uri)
    return DependencyHealth("mlflow", base, http_ok(f"{uri.rstrip('/')}/health", timeout_s))


def triton_health(settings: Settings, timeout_s: float) -> DependencyHealth:
    host, port = split_host_port(settings.triton_url, 8000)
    return DependencyHealth("triton", f"{host}:{port}", http_ok(f"http://{host}:{port}/v2/health/ready", timeout_s))


def probe_dependencies(settings: Settings, *, timeout_s: float = 2.0) -> list[DependencyHealth]:
    """Kafka, MLflow and Triton, in that order, each probed once (blocking: call from a thread)."""
    return [kafka_health(settings, timeout_s), mlflow_health(settings, timeout_s),
            triton_health(settings, timeout_s)]
