"""``TilerView``: the client and the fetcher read the tiler's settings, not a copy of them."""

from __future__ import annotations

import dataclasses

import pytest

from services.tiler.fetch_tile import FetchConfig
from services.tiler.mapbox_client import ClientConfig
from services.tiler.settings import TilerSettings
from services.tiler.settings_view import TilerView


def test_every_config_field_reads_its_setting(tmp_path):
    s = TilerSettings(state_dir=tmp_path, mapbox_api_url="http://mapbox.example", tiler_zoom=14,
                      tiler_request_timeout_s=7.5, tiler_max_in_flight=3)
    view = TilerView(s)
    assert (view.base_url, view.zoom, view.timeout_s, view.max_in_flight) == ("http://mapbox.example", 14, 7.5, 3)
    for config in (ClientConfig, FetchConfig):  # a field without its setting would fail here, not at run time
        for field in dataclasses.fields(config):
            getattr(view, field.name)


def test_a_name_without_a_setting_is_an_error(tmp_path):
    with pytest.raises(AttributeError):
        TilerView(TilerSettings(state_dir=tmp_path)).no_such_field  # noqa: B018
