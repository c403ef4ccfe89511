"""``python -m simulators.stac.main [--host H] [--port P]``: run the STAC/COG simulator with uvicorn in the foreground."""

from __future__ import annotations

import uvicorn

from simulators.stac.app import create_app, state_from_env

DEFAULT_PORT = 8094


def main(host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve on ``host:port`` (port 0 = the default, 8094). Config from EMBERWATCH_STAC_SIM_*."""
    uvicorn.run(create_app(state_from_env()), host=host, port=port or DEFAULT_PORT, log_level="warning",
                access_log=False)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="STAC/COG simulator of Sentinel-2 L2A")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    main(args.host, args.port)
