"""The tiler's wiring picks its tile store from the settings: a local directory by default, the
S3 bucket of ``EMBERWATCH_TILE_STORE_URL`` when set (real HTTP to the Mapbox simulator and to
moto's S3 server; no broker needed)."""

from __future__ import annotations

import hashlib
import io
import uuid

import boto3
import pytest
from PIL import Image

from emberwatch.common.tile_store import TileStore, read_tile
from emberwatch.common.tile_store_s3 import S3TileStore
from emberwatch.contracts import TileReady
from services.tiler.main import build_tiler
from services.tiler.settings import TilerSettings
from tests.services.tiler.harness import fire
from tests.simulators.mapbox.helpers import running_simulator
from tests.support.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

pytestmark = pytest.mark.timeout(120)


async def _nothing(event) -> None:
    pass


async def test_without_a_store_url_tiles_go_to_the_local_directory(tmp_path):
    token = tmp_path / "token"
    token.write_text("pk.simulator")
    s = TilerSettings(state_dir=tmp_path, mapbox_api_url="http://127.0.0.1:9", tiler_token_file=token)
    tiler, client = build_tiler(s, _nothing)
    await client.aclose()
    assert isinstance(tiler.store, TileStore) and tiler.store.root == (tmp_path / "tiles").resolve()


async def test_with_an_s3_url_the_tiler_announces_tiles_that_any_node_reads(tmp_path, s3_endpoint):
    bucket = f"tiles-{uuid.uuid4().hex[:12]}"
    admin = boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name=REGION,
                                           aws_access_key_id="admin", aws_secret_access_key="admin")
    admin.create_bucket(Bucket=bucket)
    token = tmp_path / "token"
    token.write_text("pk.simulator")
    published: list = []

    async def publish(event) -> None:
        published.append(event)

    with running_simulator() as (url, _):
        s = TilerSettings(state_dir=tmp_path, mapbox_api_url=url, tiler_token_file=token,
                          tiler_negatives_per_fire=1, tiler_negative_match_cover=False,
                          tile_store_url=f"s3://{bucket}/tiles", s3_endpoint_url=s3_endpoint, s3_region=REGION,
                          s3_access_key_id=ACCESS_KEY_ID, s3_secret_access_key=SECRET_ACCESS_KEY)
        tiler, client = build_tiler(s, publish)
        try:
            await tiler.on_fire(fire("ab:s3", 55.0, -115.0))
        finally:
            await client.aclose()
    assert isinstance(tiler.store, S3TileStore)
    tiles = [e for e in published if isinstance(e, TileReady)]
    assert {t.label for t in tiles} == {"wildfire", "nowildfire"}
    keys = sorted(o["Key"] for o in admin.list_objects_v2(Bucket=bucket)["Contents"])
    assert sorted(t.uri for t in tiles) == [f"s3://{bucket}/{k}" for k in keys]
    for t in tiles:
        data = read_tile(t.uri, t.tile_id, settings=s)
        assert hashlib.sha256(data).hexdigest() == t.tile_id
        Image.open(io.BytesIO(data)).load()  # a whole image
    assert not (tmp_path / "tiles").exists()
