"""``emberwatch sim cwfis``: run the CWFIS simulator with uvicorn."""

from __future__ import annotations

import os
from datetime import datetime

import uvicorn

from simulators.cwfis.app import SimConfig, create_app

DEFAULT_PORT = 8610


def config_from_env() -> SimConfig:
    """Simulator knobs from ``EMBERWATCH_SIM_CWFIS_*`` (seed, fires, speed, columns, start)."""
    env = os.environ.get
    start = env("EMBERWATCH_SIM_CWFIS_START")
    return SimConfig(
        seed=int(env("EMBERWATCH_SIM_CWFIS_SEED", "2026")),
        n_fires=int(env("EMBERWATCH_SIM_CWFIS_FIRES", "1000")),
        speed=float(env("EMBERWATCH_SIM_CWFIS_SPEED", "60")),
        columns=int(env("EMBERWATCH_SIM_CWFIS_COLUMNS", "9")),
        start_at=datetime.fromisoformat(start) if start else None,
    )


def main(host: str = "127.0.0.1", port: int = 0) -> None:
    uvicorn.run(create_app(config_from_env()), host=host, port=port or DEFAULT_PORT,
                log_level=os.environ.get("EMBERWATCH_SIM_LOG_LEVEL", "warning"))


if __name__ == "__main__":
    main()
