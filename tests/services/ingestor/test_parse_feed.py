"""The feed parser on small, format-faithful samples of what the real feeds send."""

from __future__ import annotations

import json

import pytest

from services.ingestor.models import FeedError
from services.ingestor.parse_feed import norm_name, parse_legacy_csv, parse_wfs_csv, parse_wfs_geojson

GEN7 = b"""agency, firename, lat, lon, startdate, hectares, stage_of_control
bc, K50974, 49.7308, -119.767, 2021-06-28 12:00:00, 1.8, UC
bc, C31056, 52.2685, -120.896, 2021-06-30 12:00:00, 900, Fire of Note
bc, V10859, 49.324, -121.283, 2021-06-20 12:00:00, 42, New"""

GEN8 = b"""agency, firename, lat, lon, startdate, hectares, stage_of_control, timezone
on, COC_FIRE_009, 50.1, -88.2, 2023-06-01 10:00:00, 12, OC, EDT
ak, Icy Bay, 59.9695, -141.665, 2023-05-04 00:00:00, 91.66, Unstaffed/Uncontaine"""

GEN9 = (b"\xef\xbb\xbfagency, firename, lat, lon, startdate, hectares, stage_of_control, timezone,"
        b" response_type\r\n"
        b"nb, 63424, 46.309, -66.718, 2024-04-27 16:55:19, 0.1, UC, ADT, FUL\r\n"
        b"ak, Icy Bay, 59.9695, -141.665, 2024-05-04 00:00:00, 91.66, Unstaffed/Uncontaine\r\n"
        b"conus, 2023 Chilcoot UNF - ORUPF, 43.4297, -122.736, , 785.7, 96% contained, GMT\r\n"
        b"nb, 63424, 46.309, -66.718, 2024-04-27 16:55:19, 0.1, UC, ADT, FUL\r\n"
        b"\r\n"
        b"sk, 24LA-GEIKIE, 57.1, -104.2, 2024-05-30 12:00:00, 1200, oc, CST, MOD\r\n")


def test_seven_column_generation():
    r = parse_legacy_csv(GEN7)
    assert r.layout == "legacy-7" and r.rows == 3 and not r.rejected
    fire = r.fires["2021_BC_K50974"]
    assert (fire.agency, fire.name, fire.lat, fire.lon, fire.hectares, fire.stage) == (
        "bc", "K50974", 49.7308, -119.767, 1.8, "UC")
    assert fire.start_date.isoformat() == "2021-06-28T12:00:00+00:00"
    assert fire.response_type is None
    assert r.fires["2021_BC_C31056"].stage == "Fire of Note"  # free text kept


def test_eight_column_generation_with_a_ragged_alaska_row():
    r = parse_legacy_csv(GEN8)
    assert r.layout == "legacy-8" and len(r.fires) == 2 and not r.rejected
    assert r.fires["2023_AK_ICY BAY"].stage == "Unstaffed/Uncontaine"


def test_nine_columns_bom_crlf_ragged_blank_dates_duplicates_blank_lines():
    r = parse_legacy_csv(GEN9, default_year=2024)
    assert r.layout == "legacy-9"
    assert r.rows == 5 and r.duplicates == 1 and not r.rejected
    assert set(r.fires) == {"2024_NB_63424", "2024_AK_ICY BAY", "2024_CONUS_2023 CHILCOOT UNF - ORUPF",
                            "2024_SK_24LA-GEIKIE"}
    conus = r.fires["2024_CONUS_2023 CHILCOOT UNF - ORUPF"]
    assert conus.start_date is None and conus.stage == "96% contained" and conus.response_type is None
    assert r.fires["2024_SK_24LA-GEIKIE"].stage == "OC"  # codes normalised to upper case
    assert r.fires["2024_NB_63424"].response_type == "FUL"


def test_unusable_rows_are_rejected_with_a_reason():
    body = (b"agency, firename, lat, lon, startdate, hectares, stage_of_control\n"
            b"on, A1, 91.5, -85.1, 2026-05-02 10:00:00, 3, OC\n"
            b"on, A2, 50.5, -185.1, 2026-05-02 10:00:00, 3, OC\n"
            b"qc, A3, 49.1, -73.2, 2026-05-02 10:00:00, 12,5ha, OC\n"
            b"bc, A4, 50.1, -12O.5, 2026-05-02 10:00:00, 1, UC\n"
            b"bc, A5, abc, -120.5, 2026-05-02 10:00:00, 1, UC\n"
            b"bc, A6, 50.1, -120.5, 2026-05-02 10:00:00, -4, UC\n"
            b"bc, A7, , -120.5, 2026-05-02 10:00:00, 1, UC\n"
            b"bc, , 50.2, -120.5, 2026-05-02 10:00:00, 1, UC\n"
            b"bc, A9\n"
            b"bc, A10, 0, 0, 2026-05-02 10:00:00, 1, UC\n"
            b"bc, A11, 50.1, -120.5, 2026-05-02 10:00:00, inf, UC\n"
            b"bc, OK, 50.1, -120.5, not a date, 1, UC\n"
            b"bc, CUT, 50.1, -12")
    r = parse_legacy_csv(body, default_year=2026)
    reasons = [(x.line, x.reason) for x in r.rejected]
    assert reasons == [
        (2, "latitude_out_of_range"), (3, "longitude_out_of_range"), (4, "bad_hectares"),
        (5, "bad_longitude"), (6, "bad_latitude"), (7, "bad_hectares"), (8, "missing_coordinates"),
        (9, "missing_identity"), (10, "too_few_fields"), (11, "null_island"), (12, "bad_hectares"),
        (14, "too_few_fields"),
    ]
    assert all(x.detail and x.raw for x in r.rejected)
    assert list(r.fires) == ["2026_BC_OK"] and r.fires["2026_BC_OK"].start_date is None
    assert r.warnings == {"bad_start_date": 1}
    assert r.rows == 13 == len(r.rejected) + len(r.fires)


def test_a_name_with_the_separator_in_it_is_glued_back():
    body = (b"agency, firename, lat, lon, startdate, hectares, stage_of_control\n"
            b"ak, Bear, Creek, 64.1, -150.2, , 5, OC")
    r = parse_legacy_csv(body, default_year=2026)
    assert [f.name for f in r.fires.values()] == ["Bear, Creek"]


WFS_CSV = (
    "FID,id,agency_code,region_code,national_fire_id,agency_fire_id,national_fire_cause,"
    "fire_type_ics,severity_nearest_dsr,fire_was_prescribed,percent_contained,fire_size,"
    "response_type,stage_of_control_status,situation_report_date,status_date,latitude,longitude,"
    "geometry,fire_year,status_year,record_start,record_end\r\n"
    "f.1,1,BC,G5,2026_BC_2026-G51747,2026-G51747,N,-1,-1,0,-1,0.001,FUL,OC,2026-08-22T09:24:00,"
    "2026-08-22T11:30:00,54.8763,-125.0193,POINT (-1821646.07 1085322.76),2026,2026,"
    "2026-08-22T20:45:00,2026-12-31T23:59:59.999\r\n"
    "f.0,0,BC,G5,2026_BC_2026-G51747,2026-G51747,N,-1,-1,0,-1,0.0005,FUL,OC,2026-08-21T09:24:00,"
    "2026-08-21T11:30:00,54.8763,-125.0193,POINT (-1821646.07 1085322.76),2026,2026,"
    "2026-08-21T20:45:00,2026-08-22T20:45:00\r\n"
    "f.2,2,MB,EA,2026_MB_MB-EA037,MB-EA037,H,-1,-1,0,-1,-1,-1,-1,2026-08-22T09:24:00,"
    "2026-08-22T11:30:00,55.1,-97.2,POINT (1 2),2026,2026,2026-08-22T10:00:00,2026-12-31T23:59:59.999\r\n"
    "f.3,3,ON,SUD,2026_ON_SUD_FIRE_052,SUD_FIRE_052,H,-1,-1,0,-1,12,MON,EX,x,x,46.1,-81.2,"
    "POINT (1 2),2026,2026,2026-08-22T10:00:00,2026-12-31T23:59:59.999\r\n"
    "f.4,4,ON,SUD,2026_ON_SUD_FIRE_053,SUD_FIRE_053,H,-1,-1,0,-1,12,MON\r\n"
).encode()


def test_wfs_csv_versions_not_reported_values_and_names():
    r = parse_wfs_csv(WFS_CSV)
    assert r.layout == "wfs-csv"
    assert set(r.fires) == {"2026_BC_G51747", "2026_MB_EA037", "2026_ON_SUD_FIRE_052"}
    bc = r.fires["2026_BC_G51747"]
    assert bc.hectares == 0.001 and bc.name == "2026-G51747"  # the newest version wins
    assert r.duplicates == 1
    mb = r.fires["2026_MB_EA037"]
    assert mb.hectares is None and mb.stage is None and mb.response_type is None  # -1 = not reported
    assert r.fires["2026_ON_SUD_FIRE_052"].stage == "EX"
    assert [(x.line, x.reason) for x in r.rejected] == [(6, "wrong_field_count")]
    assert r.data_time.isoformat() == "2026-08-22T20:45:00+00:00"


def test_wfs_geojson_and_truncated_geojson():
    doc = {"type": "FeatureCollection", "numberReturned": 2, "features": [
        {"type": "Feature", "id": "a", "geometry": {"type": "Point", "coordinates": [1, 2]},
         "properties": {"agency_code": "AB", "agency_fire_id": "HWF-144-2026", "fire_size": 0.37,
                        "stage_of_control_status": "UC", "latitude": 58.3497, "longitude": -115.7342,
                        "fire_year": 2026, "record_start": "2026-08-22T00:45:00", "response_type": "FUL"}},
        {"type": "Feature", "id": "b", "geometry": {"type": "Point", "coordinates": [1, 2]},
         "properties": {"agency_code": "AB", "agency_fire_id": "HWF-145-2026", "fire_size": 3,
                        "stage_of_control_status": "OC", "latitude": 95, "longitude": -115.7,
                        "fire_year": 2026, "record_start": "2026-08-22T00:45:00"}},
    ], "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3978"}}}
    body = json.dumps(doc).encode()
    r = parse_wfs_geojson(body)
    assert list(r.fires) == ["2026_AB_HWF-144-2026"]
    assert r.fires["2026_AB_HWF-144-2026"].hectares == 0.37
    assert [x.reason for x in r.rejected] == ["latitude_out_of_range"]
    with pytest.raises(FeedError) as exc:
        parse_wfs_geojson(body[: len(body) // 2])
    assert exc.value.reason == "bad_json"


@pytest.mark.parametrize("body,reason", [
    (b"<!DOCTYPE html><html><body>503 Service Unavailable</body></html>", "html_page"),
    (b'<?xml version="1.0"?><ows:ExceptionReport><ows:Exception/></ows:ExceptionReport>', "xml_exception"),
    (bytes(range(256)) * 8, "garbage"),
    (b"", "empty"),
    (b"hello, world\nthis, is, not, a, feed", "bad_header"),
])
def test_bodies_that_are_not_feeds_raise(body, reason):
    for parser in (parse_legacy_csv, parse_wfs_csv, parse_wfs_geojson):
        with pytest.raises(FeedError) as exc:
            parser(body)
        assert exc.value.reason in (reason, "bad_json")


def test_both_feeds_spell_the_fire_number_alike():
    assert norm_name("BC", "2026-G51747") == norm_name("BC", "G51747") == "G51747"
    assert norm_name("MB", "MB-EA037") == norm_name("MB", "EA037") == "EA037"
    assert norm_name("AB", "PWF-065-2026") == "PWF-065-2026"
    assert norm_name("NS", "05-007-2026") == "05-007-2026"
