"""``emberwatch sim mapbox``: run the Mapbox simulator with uvicorn in the foreground."""

from __future__ import annotations

import uvicorn

from simulators.mapbox.app import create_app, state_from_env

DEFAULT_PORT = 8091


def main(host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve on ``host:port`` (port 0 = the default, 8091). Config from EMBERWATCH_MAPBOX_SIM_*."""
    app = create_app(state_from_env())
    uvicorn.run(app, host=host, port=port or DEFAULT_PORT, log_level="warning", access_log=False)


if __name__ == "__main__":
    import sys

    main(port=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
