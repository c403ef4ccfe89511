"""The basemap's place names from the cities package: ranked for the zoom they appear at, hostile or
malformed rows skipped, names kept as text (bounded)."""

from __future__ import annotations

import json

from services.console.vector_basemap import installed_place_names, place_names, vendor_dirs


def test_places_are_ranked_and_malformed_rows_skipped(tmp_path) -> None:
    rows = [
        {"city": "Ottawa", "lat": "45.42", "lng": "-75.69", "iso2": "CA", "capital": "primary", "population": "989567",
         "admin_name": "Ontario"},
        {"city": "Kamloops", "lat": "50.68", "lng": "-120.34", "iso2": "CA", "capital": "", "population": "90280"},
        {"city": "Tiny", "lat": "50.0", "lng": "-120.0", "iso2": "CA", "capital": "", "population": "900"},
        {"city": "Lyon", "lat": "45.76", "lng": "4.84", "iso2": "FR", "capital": "admin", "population": "522000"},
        {"city": "<img src=x onerror=alert(1)>" + "x" * 500, "lat": "51", "lng": "-114", "iso2": "CA",
         "capital": "admin", "population": "1"},
        {"city": "Nowhere", "lat": "95", "lng": "0", "iso2": "CA", "capital": "primary"},
        {"city": "Broken", "lat": "north", "lng": "0", "iso2": "CA", "capital": "primary"},
        "not a row",
    ]
    path = tmp_path / "cities.json"
    path.write_text(json.dumps(rows))
    places = place_names(path)
    assert [(p["name"][:10], p["rank"]) for p in places] == [("Ottawa", 1), ("<img src=x", 2), ("Kamloops", 3)]
    assert len(places[1]["name"]) == 80  # bounded; the page renders it as text


def test_the_installed_packages_are_where_the_console_serves_them_from() -> None:
    dirs = vendor_dirs()
    assert (dirs["leaflet"] / "leaflet.js").is_file()
    assert (dirs["world-atlas"] / "countries-50m.json").is_file() and (dirs["us-atlas"] / "states-10m.json").is_file()
    assert (dirs["leaflet.markercluster"] / "leaflet.markercluster.js").is_file()
    places = {p["name"]: p for p in installed_place_names()}
    assert places["Ottawa"]["rank"] == 1 and places["Whitehorse"]["rank"] == 2 and "Kamloops" in places
