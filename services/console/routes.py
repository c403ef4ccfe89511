"""The console's URLs: each page, API call, image and static folder, and the function that answers it."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from services.console import operator_api, read_api
from services.console.vector_basemap import vendor_dirs

POST = ["POST"]


def routes() -> list[BaseRoute]:
    return [
        Route("/", read_api.map_page),
        Route("/models", read_api.models_page),
        Route("/healthz", read_api.healthz),
        Route("/metrics", read_api.metrics),
        Route("/api/fires", read_api.fires),
        Route("/api/tiles", read_api.tiles),
        Route("/api/history", read_api.history),
        Route("/api/basemap/places", read_api.places),
        Route("/api/models", read_api.models),
        Route("/api/decisions/{command_id}", read_api.decision),
        Route("/api/stream", read_api.stream),
        Route("/api/me", operator_api.me),
        Route("/api/signin", operator_api.sign_in, methods=POST),
        Route("/api/signout", operator_api.sign_out, methods=POST),
        Route("/api/commands", operator_api.send_command, methods=POST),
        Route("/api/feedback", operator_api.send_feedback, methods=POST),
        Route("/api/runs/{run_id}/plots/{name}", read_api.run_plot),
        Route("/tiles/{tile_id}", read_api.tile_image),
        Route("/basemap/{z:int}/{x:int}/{y:int}", read_api.basemap_tile),
        Mount("/static", StaticFiles(directory=read_api.WEB / "static"), name="static"),
        # the npm packages (Leaflet, its clusters, the vector basemap's data), each under /vendor/<name>/
        *(Mount(f"/vendor/{name}", StaticFiles(directory=folder, check_dir=False), name=f"vendor-{name}")
          for name, folder in vendor_dirs().items()),
    ]
