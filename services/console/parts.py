"""The console's parts, built once by main.py and shared by its web routes and its lifespan.

A route finds them on its application (``console_of(request)``); the lifespan opens the HTTP client
and the broker, and says when the console is started.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx
from faststream.kafka import KafkaBroker
from starlette.requests import Request

from services.console.basemap import BasemapProxy
from services.console.fire_history import FireHistory
from services.console.predictions import TilePredictions
from services.console.run_plots import RunPlots
from services.console.settings import ConsoleSettings
from services.console.signin import SignIns
from services.console.view import ConsoleView


@dataclass
class Console:
    settings: ConsoleSettings
    broker: KafkaBroker  # publishes the operators' commands and labels
    view: ConsoleView  # what the streams told
    history: FireHistory  # each fire's stage and hectares over time
    predictions: TilePredictions
    plots: RunPlots
    signins: SignIns
    http: httpx.AsyncClient | None = None  # open while the application runs: the gatekeeper, Mapbox
    started: bool = False  # the broker is connected
    basemap: BasemapProxy = field(init=False)

    def __post_init__(self) -> None:
        self.basemap = BasemapProxy(self.settings, self.client)

    def client(self) -> httpx.AsyncClient:
        assert self.http is not None, "the console's HTTP client opens with the application (its lifespan)"
        return self.http


def console_of(request: Request) -> Console:
    return request.app.state.console
