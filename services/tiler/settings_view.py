"""The tiler's settings as its parts read them: ``view.zoom`` is ``settings.tiler_zoom``.

``MapboxClient`` and ``TileFetcher`` take a config with short names (``ClientConfig``, ``FetchConfig``,
which tests build with defaults); the service hands them this view of its settings instead of a
copy, so no field is written twice and a setting changed in ``TilerSettings`` reaches them as it is.
"""

from __future__ import annotations

from typing import Any

from services.tiler.settings import TilerSettings

# The short names whose setting is not ``tiler_<name>``.
RENAMED = {"base_url": "mapbox_api_url", "timeout_s": "tiler_request_timeout_s"}


class TilerView:
    """Read-only: ``view.<name>`` is ``settings.tiler_<name>`` (or the setting ``RENAMED`` names)."""

    __slots__ = ("_settings",)

    def __init__(self, settings: TilerSettings) -> None:
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        return getattr(self._settings, RENAMED.get(name, f"tiler_{name}"))
