import io

import numpy as np
from PIL import Image

from emberwatch.common.config import Settings
from emberwatch.common.tile_store import TileStore
from services.trainer.dataset import check_dataset, counts_by_split, dataset_digest
from services.trainer.models import TileRecord
from services.trainer.read_tiles import read_images


def _rec(i: int, label: str, split: str, uri: str = "file:///nowhere") -> TileRecord:
    return TileRecord(tile_id=f"{i:064x}", label=label, split=split, uri=uri)


def _records(per: dict[tuple[str, str], int]) -> list[TileRecord]:
    out, i = [], 0
    for (split, label), n in per.items():
        for _ in range(n):
            out.append(_rec(i, label, split))
            i += 1
    return out


def test_checks_minimum_per_class_and_split_and_balance():
    recs = _records({("train", "wildfire"): 10, ("train", "nowildfire"): 30, ("val", "wildfire"): 3,
                     ("val", "nowildfire"): 5, ("test", "nowildfire"): 4})
    check = check_dataset(recs, min_train=10, min_val=4, min_test=1)
    assert not check.ok
    assert check.problems == ["val/wildfire: 3 tiles, need at least 4",
                              "test/wildfire: 0 tiles, need at least 1"]
    assert check.balance == {"train": 0.25, "val": 0.375, "test": 0.0}
    assert counts_by_split(recs)["train"] == {"nowildfire": 30, "wildfire": 10}
    assert check_dataset(recs, min_train=10, min_val=3, min_test=0).ok


def test_digest_depends_on_content_not_order():
    recs = _records({("train", "wildfire"): 3, ("val", "nowildfire"): 2})
    d = dataset_digest(recs, "bb")
    assert d == dataset_digest(list(reversed(recs)), "bb")
    assert d != dataset_digest(recs, "other-backbone")
    assert d != dataset_digest(recs[:-1], "bb")
    relabelled = [recs[0].__class__(**{**recs[0].__dict__, "label": "nowildfire"})] + recs[1:]
    assert d != dataset_digest(relabelled, "bb")


def test_read_images_skips_and_counts_unreadable(tmp_path):
    store = TileStore(tmp_path / "tiles")
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(buf, format="PNG")
    good = store.put(buf.getvalue(), "png")
    corrupt = store.put(b"\x89PNG garbage", "png")
    recs = [TileRecord(tile_id=good.tile_id, label="wildfire", split="train", uri=good.uri),
            TileRecord(tile_id=corrupt.tile_id, label="wildfire", split="train", uri=corrupt.uri),
            _rec(3, "nowildfire", "val", store.path_for(f"{3:064x}", "png").as_uri()),
            _rec(4, "nowildfire", "val", "gs://b/k.png")]
    ok, images, bad = read_images(recs, 32, Settings(tiler_tile_root=tmp_path / "tiles"))
    assert [r.tile_id for r in ok] == [recs[0].tile_id]
    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8
    assert [t for t, _ in bad] == [r.tile_id for r in recs[1:]]
    assert "UnreadableImage" in bad[0][1] and "TileMissing" in bad[1][1] and "UnsupportedTileUri" in bad[2][1]


def test_read_images_reads_tiles_from_s3(s3_endpoint, tmp_path):
    """The trainer's reading path follows s3:// URIs with its own settings (moto's S3 over HTTP)."""
    import uuid

    import boto3

    from emberwatch.common.config import Settings
    from emberwatch.common.tile_store import open_tile_store
    from tests.support.moto_s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY

    bucket = f"tiles-{uuid.uuid4().hex[:12]}"
    boto3.session.Session().client("s3", endpoint_url=s3_endpoint, region_name=REGION, aws_access_key_id="a",
                                   aws_secret_access_key="b").create_bucket(Bucket=bucket)
    s = Settings(tile_store_url=f"s3://{bucket}/t", s3_endpoint_url=s3_endpoint, s3_region=REGION,
                 s3_access_key_id=ACCESS_KEY_ID, s3_secret_access_key=SECRET_ACCESS_KEY, s3_max_attempts=1)
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(buf, format="PNG")
    tile = open_tile_store(s, tmp_path).put(buf.getvalue(), "png")
    gone = f"{2:064x}"
    recs = [TileRecord(tile_id=tile.tile_id, label="wildfire", split="train", uri=tile.uri),
            _rec(2, "nowildfire", "val", f"s3://{bucket}/t/{gone[:2]}/{gone}.png")]
    ok, images, bad = read_images(recs, 32, s)
    assert [r.uri for r in ok] == [tile.uri] and images.shape == (1, 32, 32, 3)
    assert [t for t, _ in bad] == [recs[1].tile_id] and "TileMissing" in bad[0][1]
