"""How much of the simulated imagery's label a global statistic gives away, against the CNN.

Renders ``PAIRS`` fire/fire-free pairs the way the pipeline sees them and compares, under spatial
cross-validation, what global hand statistics and the CNN get from them:

* fires of the CWFIS simulator's default season, each at the demo's first poll after its start (the
  demo's season clock starts 20 days in and steps 12 h): the tile is rendered by the Mapbox
  simulator's imagery at that clock, centred on the *reported* location, with the fire at its
  *reported* area (``simulators.cwfis.season.fire_state``);
* for each fire one fire-free place from ``services/tiler/sample_negatives.py`` (10-50 km away,
  none within 10 km of a fire started by then), rendered at the same clock;
* 350×350 static images at zoom 15, JPEG q90 as the simulator serves them, decoded and resized to
  128 px like the demo (``emberwatch.ml.images.decode_image``).

Reported: (a) each of the 14 hand statistics (``emberwatch.ml.image_statistics``) alone at its best
threshold (fitted on all tiles: an upper bound); (b) logistic regression and gradient-boosted trees
on the 14 statistics under GroupKFold (groups = the 1.5° split cell of ``assign_split.cell_of``),
the better counting; (c) the CNN — embeddings of the demo's backbone (random seeded ResNet50, 128
px) and the trainer's head search (``services.trainer.search_head``) — under the same folds, with
per-class recall; (d) the real Mapbox fixtures (not the zoom-1 world quadrants) against the
simulated fire-free distribution of each statistic. Also the render time of one 350×350 image.

With ``--sentinel2 FIRES``, the Sentinel-2 line instead (``sentinel2_report``): FIRES fires of the CWFIS
simulator's season placed in the STAC/COG simulator (served in this process over real HTTP), each fetched
through ``Sentinel2Provider`` as the tiler would (first at 5.5 days after its start, again at 11 and 16.5
days while no clear scene shows it), the post-fire tile (wildfire) and its pre-fire control (nowildfire)
of every fire with both; then, side by side under spatial cross-validation (GroupKFold by 1.5° cell, a
fire's two tiles in one cell), per fold with mean and spread: the CNN (the demo's backbone and the
trainer's head search), the dNBR rule (``services/trainer/physics_baseline.py``) and the hand
statistics, for the SWIR and the true-colour composites, and the same for ``--mapbox-pairs`` Mapbox
pairs; the not-visible policies of ``services/trainer/visible_tiles.py`` on the SWIR line; bytes and
seconds per tile.

Usage: python benchmarks/bench_imagery.py [PAIRS] [--no-cnn] [--folds K] [--fixtures DIR] [--out FILE]
       python benchmarks/bench_imagery.py --sentinel2 FIRES [--mapbox-pairs N] [--folds K] [--out FILE]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from emberwatch.common.geo import haversine_km  # noqa: E402
from emberwatch.ml.image_statistics import STATISTICS, image_statistics  # noqa: E402
from emberwatch.ml.images import decode_image  # noqa: E402
from services.tiler.assign_split import cell_of  # noqa: E402
from services.tiler.sample_negatives import sample_negatives  # noqa: E402
from simulators.cwfis.season import DEFAULT_FIRES, DEFAULT_SEED, fire_state, season_fires, season_start  # noqa: E402
from simulators.mapbox.app import _encode, fires_from_cwfis_season  # noqa: E402
from simulators.mapbox.imagery import FireField, render_static  # noqa: E402

# The real fixtures live outside the repository: EMBERWATCH_FIXTURES_DIR names them (as for the tests).
FIXTURES = Path(os.environ.get("EMBERWATCH_FIXTURES_DIR", "fixtures-not-given")) / "mapbox"
DEMO_START_DAYS = 20  # the CWFIS simulator's default clock: 20 days into the season
DEMO_STEP_H = 12.0  # emberwatch.operations.run_demo.STEP_HOURS
IMAGE_SIZE = 128  # the demo's backbone input
CELL_DEG = 1.5  # EMBERWATCH_TILER_SPLIT_CELL_DEG


@dataclass(frozen=True)
class Tile:
    label: int  # 1 = wildfire
    lat: float
    lon: float
    at: datetime
    hectares: float  # the fire's reported area (the matched fire's, for a fire-free tile)
    fire_key: str


def first_seen(f, t0: datetime, step_h: float = DEMO_STEP_H):
    """The demo's first poll time at which ``f`` is reported, and its state then (None: never seen)."""
    if f.start <= t0:
        at = t0
    else:
        at = t0 + timedelta(hours=step_h * math.ceil((f.start - t0).total_seconds() / 3600 / step_h))
    state = fire_state(f, at)
    return (at, state) if state is not None else (None, None)


def pipeline_pairs(n_pairs: int, seed: int = DEFAULT_SEED, n_fires: int = DEFAULT_FIRES,
                   year: int = 2026) -> list[Tile]:
    """``n_pairs`` (fire, fire-free) tiles, fires spread evenly over the season's seen fires."""
    fires = season_fires(seed, n_fires, year)
    t0 = season_start(year) + timedelta(days=DEMO_START_DAYS)
    seen = [(f, *first_seen(f, t0)) for f in fires]
    seen = [(f, at, s) for f, at, s in seen if at is not None]
    pick = np.linspace(0, len(seen) - 1, min(n_pairs, len(seen))).round().astype(int)
    lat = np.array([f.lat for f in fires])
    lon = np.array([f.lon for f in fires])
    starts = np.array([f.start.timestamp() for f in fires])
    tiles: list[Tile] = []
    for i in pick:
        f, at, s = seen[i]
        known = starts <= at.timestamp()

        def near_fire(plat: float, plon: float, km: float, known=known) -> bool:
            close = known & (np.abs(lat - plat) < km / 100) & (np.abs(lon - plon) < km / 40)
            return any(haversine_km(plat, plon, lat[j], lon[j]) < km for j in np.nonzero(close)[0])

        neg = sample_negatives(f.fire_key, s.lat, s.lon, k=1, near_fire=near_fire)
        if not neg:
            continue
        tiles.append(Tile(1, s.lat, s.lon, at, s.hectares, f.fire_key))
        tiles.append(Tile(0, neg[0][0], neg[0][1], at, s.hectares, f.fire_key))
    return tiles


def season_field(seed: int = DEFAULT_SEED, n_fires: int = DEFAULT_FIRES, year: int = 2026) -> FireField:
    """The fires as the Mapbox simulator shows them with EMBERWATCH_MAPBOX_SIM_CWFIS_SEASON."""
    return FireField(fires_from_cwfis_season(f"{seed},{n_fires},{year}"))


def render_tiles(tiles: list[Tile], field: FireField, size: int | None = None) -> tuple[np.ndarray, list[float]]:
    """Decoded (N, size, size, 3) images and the render milliseconds of each 350×350 image."""
    size = size or IMAGE_SIZE
    out = np.empty((len(tiles), size, size, 3), np.uint8)
    ms = []
    for i, t in enumerate(tiles):
        t0 = time.perf_counter()
        arr = render_static(t.lat, t.lon, 15, 350, 350, fires=field, at=t.at)
        ms.append((time.perf_counter() - t0) * 1000)
        data, _ = _encode(arr, "jpg90")
        out[i] = decode_image(data, size)
    return out, ms


def best_threshold_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    """The best accuracy of ``x > t`` or ``x < t`` over every threshold t (an upper bound)."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    pos = np.concatenate([[0], np.cumsum(ys)])  # positives at or below each cut
    neg = np.concatenate([[0], np.cumsum(1 - ys)])
    n, p_total = len(y), ys.sum()
    valid = np.concatenate([[True], xs[1:] != xs[:-1], [True]])  # cuts between distinct values
    below_neg = neg + (p_total - pos)  # "x above the cut = fire"
    acc = np.maximum(below_neg, n - below_neg) / n
    return float(acc[valid].max())


def single_statistics(stats: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return {name: best_threshold_accuracy(stats[:, k], y) for k, name in enumerate(STATISTICS)}


def folds(tiles: list[Tile], k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold

    groups = np.array([hash(cell_of(t.lat, t.lon, CELL_DEG)) for t in tiles])
    idx = np.arange(len(tiles))
    return list(GroupKFold(n_splits=k).split(idx, groups=groups))


def hand_statistics_cv(stats: np.ndarray, y: np.ndarray, splits) -> dict[str, dict]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {
        "logistic regression": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
        "gradient-boosted trees": lambda: HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05,
                                                                         max_leaf_nodes=15, random_state=0),
    }
    out = {}
    for name, make in models.items():
        pred = np.empty_like(y)
        for train, test in splits:
            pred[test] = make().fit(stats[train], y[train]).predict(stats[test])
        out[name] = scores(y, pred)
    return out


def scores(y: np.ndarray, pred: np.ndarray) -> dict:
    return {"accuracy": float((pred == y).mean()), "recall": float(pred[y == 1].mean()),
            "specificity": float(1 - pred[y == 0].mean()), "n": int(len(y)), "pred": pred}


def paired_margin(y: np.ndarray, pred_cnn: np.ndarray, pred_hand: np.ndarray, tiles: list[Tile],
                  n_boot: int = 2000, seed: int = 0) -> dict:
    """How clearly the CNN beats the hand statistics on the same tiles: the accuracy difference with
    a 95 % interval from a bootstrap over split cells (tiles of one cell are not independent), and
    the exact McNemar p of the discordant tiles."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = pred_cnn == y, pred_hand == y
    table = [[int(np.sum(a & b)), int(np.sum(a & ~b))], [int(np.sum(~a & b)), int(np.sum(~a & ~b))]]
    cells = np.array([hash(cell_of(t.lat, t.lon, CELL_DEG)) for t in tiles])
    uniq, inv = np.unique(cells, return_inverse=True)
    diff_per_cell = np.bincount(inv, weights=a.astype(float) - b)
    n_per_cell = np.bincount(inv)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), (n_boot, len(uniq)))
    boot = diff_per_cell[draws].sum(axis=1) / n_per_cell[draws].sum(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"difference": float(a.mean() - b.mean()), "low": float(lo), "high": float(hi),
            "cnn_only": table[0][1], "hand_only": table[1][0], "p": float(mcnemar(table, exact=True).pvalue)}


def cnn_embeddings(images: np.ndarray) -> tuple[np.ndarray, str]:
    """The demo's backbone: ResNet50 with seeded random weights (seed 0) at 128 px."""
    from emberwatch.ml.backbone import Backbone, build_backbone, embed, make_backbone_id

    model = build_backbone(IMAGE_SIZE, None, 0)
    bb = Backbone(model, make_backbone_id(model, IMAGE_SIZE), IMAGE_SIZE, weights_source="random(seed=0)")
    return embed(bb, images), bb.backbone_id


def cnn_cv(emb: np.ndarray, y: np.ndarray, splits, tiles: list[Tile]) -> dict:
    """The trainer's head search in each fold; its validation split is one group-fold of the training part."""
    from sklearn.model_selection import GroupKFold

    from services.trainer.search_head import search_head

    groups = np.array([hash(cell_of(t.lat, t.lon, CELL_DEG)) for t in tiles])
    pred = np.empty_like(y)
    for train, test in splits:
        inner = GroupKFold(n_splits=4).split(train, groups=groups[train])
        fit, val = next(inner)
        res = search_head(emb[train[fit]], y[train[fit]], emb[train[val]], y[train[val]], units_grid=[128, 256],
                          learning_rates=[0.001], dropout=0.3, epochs=40, patience=4, batch_size=64, seed=0)
        pred[test] = res.model.predict(emb[test], verbose=0).argmax(axis=1)
    return scores(y, pred)


def fixture_images() -> dict[str, np.ndarray]:
    """The real Mapbox fixtures that are scenes (zoom ≥ 15 tiles and the static images), RGB."""
    from PIL import Image

    out = {}
    if not FIXTURES.is_dir():
        return out
    for p in sorted(FIXTURES.iterdir()):
        if p.suffix.lower() not in (".png", ".jpg", ".jpeg") or p.name.startswith("1-"):
            continue
        with Image.open(p) as im:
            out[p.name] = np.asarray(im.convert("RGB"))
    return out


def fixture_statistics() -> dict[str, np.ndarray]:
    """Each fixture's statistics as the pipeline would compute them (JPEG-decoded, 128 px)."""
    out = {}
    for name, rgb in fixture_images().items():
        data, _ = _encode(rgb, "jpg90")
        out[name] = image_statistics(decode_image(data, IMAGE_SIZE))
    return out


def fixture_rule(free: np.ndarray, fx: dict[str, np.ndarray]) -> list[tuple[str, str, float]]:
    """The fixtures' statistics outside the simulated fire-free [min, max]: (fixture, statistic, value)."""
    lo, hi = free.min(axis=0), free.max(axis=0)
    bad = []
    for name, s in fx.items():
        for k, stat in enumerate(STATISTICS):
            if not lo[k] <= s[k] <= hi[k]:
                bad.append((name, stat, float(s[k])))
    return bad


# --- the Sentinel-2 line -------------------------------------------------------------------------------

S2_TRIES_DAYS = (5.5, 11.0, 16.5)  # the tiler retries a fire no clear scene shows yet; gives up after 20 days
POLICIES = ("keep", "drop", "down-weight")


@dataclass
class S2Fire:
    tile: Tile  # the post-fire tile's place and acquisition (its control: the same place)
    post: dict[str, bytes]  # composite kind -> PNG as the tiler stores it
    pre: dict[str, bytes]
    dnbr: float | None
    hot_pixels: int
    visible: bool
    seconds: float  # the successful fetch_pair, searches and reads (the simulator renders on the same cores)
    bytes_post: int
    bytes_pre: int
    bytes_fire: int  # everything read for the fire, rejected scenes' SCL included


def sentinel2_fires(n_fires: int, seed: int = DEFAULT_SEED, n_season: int = DEFAULT_FIRES, year: int = 2026):
    """``n_fires`` of the CWFIS season spread over it: the provider's FireWindow (ending when CWFIS calls the
    fire out) and the STAC simulator's fire (its front burning while CWFIS reports it out of control)."""
    from services.tiler.sentinel2.provider import FireWindow

    fires = season_fires(seed, n_season, year)
    pick = np.linspace(0, len(fires) - 1, min(n_fires, len(fires))).round().astype(int)
    windows, sim = [], []
    for i in pick:
        f = fires[i]
        out = f.start + timedelta(hours=f.oc_h + f.bh_h + f.uc_h)
        windows.append(FireWindow(f"{f.agency}:{f.name}", lon=f.lon, lat=f.lat, start=f.start, end=out))
        sim.append({"lat": f.lat, "lon": f.lon, "hectares": f.final_hectares, "start": f.start.isoformat(),
                    "end": (f.start + timedelta(hours=f.oc_h)).isoformat(), "growth_h": max(f.oc_h, 1)})
    return windows, sim


def fetch_sentinel2(n_fires: int) -> tuple[list[S2Fire], dict[str, int]]:
    """Each fire through Sentinel2Provider against the STAC simulator; the pairs with both tiles."""
    from services.tiler.sentinel2.pairing import GiveUp, Ready
    from services.tiler.sentinel2.provider import Sentinel2Provider
    from services.tiler.sentinel2.search import StacCatalogue
    from simulators.stac.app import Clock, SimState, create_app, parse_fires
    from tests.support.serve_app import serve_in_thread

    windows, sim = sentinel2_fires(n_fires)
    late = max(w.end for w in windows) + timedelta(days=30)
    state = SimState(clock=Clock(late, speed=0.0), fault_rate=0.0)
    state.fires = parse_fires(sim)
    outcome = {"fires": len(windows), "ready": 0, "no_pre": 0, "gave_up": 0, "still_waiting": 0}
    out: list[S2Fire] = []
    with serve_in_thread(create_app(state), "stac simulator") as url:
        provider = Sentinel2Provider(StacCatalogue(url=url))
        for w, s in zip(windows, sim, strict=True):
            result = None
            for days in S2_TRIES_DAYS:
                result = provider.fetch_pair(w, w.start + timedelta(days=days))
                if isinstance(result.decision, Ready | GiveUp):
                    break
            if not isinstance(result.decision, Ready):
                outcome["gave_up" if isinstance(result.decision, GiveUp) else "still_waiting"] += 1
                continue
            outcome["ready"] += 1
            if result.pre is None:
                outcome["no_pre"] += 1
                continue
            ev = result.evidence
            post, pre = result.post, result.pre
            out.append(S2Fire(
                tile=Tile(1, w.lat, w.lon, post.scene.acquired_at, float(s["hectares"]), w.fire_key),
                post={"swir": post.swir.png, "true-colour": post.true_colour.png},
                pre={"swir": pre.swir.png, "true-colour": pre.true_colour.png},
                dnbr=ev.dnbr, hot_pixels=ev.hot_pixels, visible=ev.visible, seconds=result.seconds,
                bytes_post=post.bytes_read, bytes_pre=pre.bytes_read, bytes_fire=result.bytes_read))
    return out, outcome


def fold_table(y: np.ndarray, pred: np.ndarray, splits, mask: np.ndarray | None = None) -> dict[str, list[float]]:
    """Accuracy, recall and specificity in each fold's test part (restricted to ``mask`` if given)."""
    out: dict[str, list[float]] = {"accuracy": [], "recall": [], "specificity": []}
    for _, test in splits:
        t = test if mask is None else test[mask[test]]
        yt, pt = y[t], pred[t]
        out["accuracy"].append(float((pt == yt).mean()) if len(t) else math.nan)
        out["recall"].append(float(pt[yt == 1].mean()) if (yt == 1).any() else math.nan)
        out["specificity"].append(float(1 - pt[yt == 0].mean()) if (yt == 0).any() else math.nan)
    return out


def _ms(values: list[float]) -> str:
    v = np.array(values, dtype=float)
    v = v[np.isfinite(v)]
    return f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}" if len(v) > 1 else "-"


def cnn_cv_policy(emb: np.ndarray, y: np.ndarray, splits, groups: np.ndarray, visible: np.ndarray,
                  policy: str) -> np.ndarray:
    """The trainer's head search in each fold with a not-visible policy on its training and validation
    parts (the test part is scored whole); predictions of every tile."""
    from sklearn.model_selection import GroupKFold

    from services.trainer.search_head import search_head
    from services.trainer.visible_tiles import apply_policy

    flags = [None if v is None else bool(v) for v in visible]
    pred = np.empty_like(y)
    for train, test in splits:
        fit, val = next(GroupKFold(n_splits=4).split(train, groups=groups[train]))
        fit, val = train[fit], train[val]
        keep, weights = apply_policy([flags[i] for i in fit], policy)
        fit = fit[keep]
        if policy == "drop":
            val = val[apply_policy([flags[i] for i in val], policy)[0]]
        res = search_head(emb[fit], y[fit], emb[val], y[val], units_grid=[128, 256], learning_rates=[0.001],
                          dropout=0.3, epochs=40, patience=4, batch_size=64, seed=0, sample_weight=weights)
        pred[test] = res.model.predict(emb[test], verbose=0).argmax(axis=1)
    return pred


def sentinel2_report(n_fires: int, mapbox_pairs: int, k: int, say) -> None:
    from emberwatch.ml.images import decode_image
    from services.trainer.physics_baseline import TileIndices, rule_predictions

    say(f"CPU: {cpu_line()}; Python {platform.python_version()}")
    t0 = time.perf_counter()
    fires, outcome = fetch_sentinel2(n_fires)
    fetch_s = time.perf_counter() - t0
    say(f"Sentinel-2: {outcome['fires']} CWFIS-season fires through Sentinel2Provider against the STAC simulator "
        f"in {fetch_s:.0f} s: {outcome['ready']} ready ({outcome['no_pre']} without a clear pre-fire scene, left "
        f"out), {outcome['gave_up']} given up, {outcome['still_waiting']} still waiting at day "
        f"{S2_TRIES_DAYS[-1]}; {len(fires)} pairs used")
    tiles = [t for f in fires for t in (f.tile, Tile(0, f.tile.lat, f.tile.lon, f.tile.at, f.tile.hectares,
                                                     f.tile.fire_key))]
    y = np.array([t.label for t in tiles])
    visible = np.array([v for f in fires for v in (f.visible, None)], dtype=object)
    indices = [ix for f in fires for ix in (TileIndices(f.dnbr, f.hot_pixels), TileIndices())]
    shown = np.array([v is not False for v in visible])  # the test tiles the imagery shows
    ha = np.array([f.tile.hectares for f in fires])
    say(f"fires used: final area median {np.median(ha):.1f} ha (p10 {np.percentile(ha, 10):.1f}, p90 "
        f"{np.percentile(ha, 90):.0f}); not visible (dNBR < 0.1 and no hot pixel): "
        f"{sum(not f.visible for f in fires)} of {len(fires)}")
    sec = np.array([f.seconds for f in fires])
    per_tile = np.array([b for f in fires for b in (f.bytes_post, f.bytes_pre)])
    png = np.array([len(f.post["swir"]) for f in fires] + [len(f.pre["swir"]) for f in fires])
    say(f"per fire (cold: the simulator renders each COG on the same cores): {np.median(sec):.2f} s p50, "
        f"{np.percentile(sec, 90):.2f} s p90; per tile {np.median(sec) / 2:.2f} s p50; bytes read per tile "
        f"{np.median(per_tile) / 1e6:.2f} MB p50, {per_tile.max() / 1e6:.2f} MB max; per fire (with rejected "
        f"scenes' SCL) {np.median([f.bytes_fire for f in fires]) / 1e6:.2f} MB p50; a stored SWIR PNG "
        f"{np.median(png) / 1e3:.0f} kB p50")
    splits = folds(tiles, k)
    groups = np.array([hash(cell_of(t.lat, t.lon, CELL_DEG)) for t in tiles])
    for test in (s[1] for s in splits):  # a fire's two tiles never straddle folds
        assert len({tiles[i].fire_key for i in test} & {tiles[j].fire_key for j in np.setdiff1d(
            np.arange(len(tiles)), test)}) == 0
    cells = len(set(groups.tolist()))
    say(f"{len(tiles)} tiles in {cells} cells of {CELL_DEG}°, GroupKFold({k}); backbone input {IMAGE_SIZE} px")
    rows: list[tuple[str, str, dict]] = []
    rule = rule_predictions(indices)
    t_embed = t_head = 0.0
    emb_by_kind: dict[str, np.ndarray] = {}
    kept: dict[str, np.ndarray] = {}  # the CNN's predictions with not-visible tiles kept, per composite
    for kind in ("swir", "true-colour"):
        images = np.stack([decode_image(png_bytes, IMAGE_SIZE) for f in fires
                           for png_bytes in (f.post[kind], f.pre[kind])])
        stats = np.stack([image_statistics(im) for im in images])
        hand = hand_statistics_cv(stats, y, splits)
        best = max(hand, key=lambda n: hand[n]["accuracy"])
        line = f"Sentinel-2 {kind}"
        t1 = time.perf_counter()
        emb, bb_id = cnn_embeddings(images)
        t_embed += time.perf_counter() - t1
        emb_by_kind[kind] = emb
        t1 = time.perf_counter()
        cnn = kept[kind] = cnn_cv_policy(emb, y, splits, groups, visible, "keep")
        t_head += time.perf_counter() - t1
        rows += [(line, f"CNN ({bb_id}, head search; not-visible kept)", fold_table(y, cnn, splits)),
                 (line, "dNBR rule (dNBR >= 0.1 or a hot pixel)", fold_table(y, rule, splits)),
                 (line, f"hand statistics ({best})", fold_table(y, hand[best]["pred"], splits))]
    if mapbox_pairs:
        mtiles = pipeline_pairs(mapbox_pairs)
        my = np.array([t.label for t in mtiles])
        t1 = time.perf_counter()
        mimages, mms = render_tiles(mtiles, season_field())
        render_s = time.perf_counter() - t1
        msplits = folds(mtiles, k)
        mhand = hand_statistics_cv(np.stack([image_statistics(im) for im in mimages]), my, msplits)
        mbest = max(mhand, key=lambda n: mhand[n]["accuracy"])
        memb, _ = cnn_embeddings(mimages)
        mcnn = cnn_cv(memb, my, msplits, mtiles)
        rows += [("Mapbox", "CNN (same backbone, head search)", fold_table(my, mcnn["pred"], msplits)),
                 ("Mapbox", "dNBR rule", {}),
                 ("Mapbox", f"hand statistics ({mbest})", fold_table(my, mhand[mbest]["pred"], msplits))]
        jpg = [len(_encode(render_static(t.lat, t.lon, 15, 350, 350, fires=season_field(), at=t.at), "jpg90")[0])
               for t in mtiles[:10]]
        say(f"Mapbox: {len(mtiles) // 2} pairs ({len(mtiles)} tiles, {len({cell_of(t.lat, t.lon, CELL_DEG) for t in mtiles})} "
            f"cells), rendered by the simulator in {render_s:.0f} s ({np.median(mms):.0f} ms per 350×350 tile p50, "
            f"no network); a JPEG tile {np.median(jpg) / 1e3:.0f} kB p50 (first 10)")
    say()
    say("Side by side, per fold of the spatial cross-validation (mean ± standard deviation over the folds, %)")
    say()
    say("| line | classifier | accuracy | recall (wildfire) | specificity (nowildfire) |")
    say("|---|---|---:|---:|---:|")
    for line, name, t in rows:
        if not t:
            say(f"| {line} | {name} | n/a (no indices) | | |")
            continue
        say(f"| {line} | {name} | {_ms(t['accuracy'])} | {_ms(t['recall'])} | {_ms(t['specificity'])} |")
    say()
    say("Per fold (Sentinel-2 SWIR; accuracy % of CNN / dNBR rule / hand statistics):")
    swir = [r for r in rows if r[0] == "Sentinel-2 swir"]
    for i in range(k):
        say(f"- fold {i + 1} (n={len(splits[i][1])}): " + " / ".join(f"{100 * r[2]['accuracy'][i]:.1f}" for r in swir))
    say()
    say("Not-visible fire tiles on the Sentinel-2 SWIR line (policy on training and validation; test scored whole)")
    say()
    say("| policy | accuracy, all test tiles | recall, all | accuracy, visible test tiles | recall, visible |")
    say("|---|---:|---:|---:|---:|")
    t1 = time.perf_counter()
    for policy in POLICIES:
        pred = kept["swir"] if policy == "keep" else cnn_cv_policy(emb_by_kind["swir"], y, splits, groups, visible,
                                                                    policy)
        a, v = fold_table(y, pred, splits), fold_table(y, pred, splits, shown)
        say(f"| {policy} | {_ms(a['accuracy'])} | {_ms(a['recall'])} | {_ms(v['accuracy'])} | {_ms(v['recall'])} |")
    t_head += time.perf_counter() - t1
    rv = fold_table(y, rule, splits, shown)
    say(f"| (dNBR rule) | {_ms(fold_table(y, rule, splits)['accuracy'])} | "
        f"{_ms(fold_table(y, rule, splits)['recall'])} | {_ms(rv['accuracy'])} | {_ms(rv['recall'])} |")
    say()
    say(f"embedding {2 * len(tiles)} Sentinel-2 images: {t_embed:.0f} s; head searches: {t_head:.0f} s; "
        f"whole run {time.perf_counter() - t0:.0f} s")


def cpu_line() -> str:
    model = "unknown"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")),
                     model)
        flags = Path("/proc/cpuinfo").read_text().split()
    except (OSError, subprocess.SubprocessError):
        flags = []
    have = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags]
    return f"{model}, {os.cpu_count()} vCPU, flags: {', '.join(have) or 'none of avx2/avx512/vnni'}"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def main() -> None:
    global IMAGE_SIZE
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", type=int, nargs="?", default=300)
    ap.add_argument("--no-cnn", action="store_true")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None, help="also write the report (markdown) here")
    ap.add_argument("--image-size", type=int, default=128, help="backbone input (the demo: 128)")
    ap.add_argument("--sentinel2", type=int, default=0, metavar="FIRES",
                    help="the Sentinel-2 line: FIRES fires through the STAC simulator (instead of the Mapbox report)")
    ap.add_argument("--mapbox-pairs", type=int, default=100, help="with --sentinel2: Mapbox pairs beside it (0: none)")
    args = ap.parse_args()
    IMAGE_SIZE = args.image_size

    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

    if args.sentinel2:
        sentinel2_report(args.sentinel2, args.mapbox_pairs, args.folds, say)
        if args.out:
            args.out.write_text("\n".join(lines) + "\n")
        return

    tiles = pipeline_pairs(args.pairs)
    y = np.array([t.label for t in tiles])
    field = season_field()
    t0 = time.perf_counter()
    images, ms = render_tiles(tiles, field)
    render_s = time.perf_counter() - t0
    stats = np.stack([image_statistics(im) for im in images])
    splits = folds(tiles, args.folds)
    cells = len({cell_of(t.lat, t.lon, CELL_DEG) for t in tiles})
    ha = np.array([t.hectares for t in tiles if t.label == 1])
    say(f"CPU: {cpu_line()}; Python {platform.python_version()}")
    say(f"{len(tiles) // 2} pairs ({len(tiles)} tiles) in {cells} cells of {CELL_DEG}°, GroupKFold({args.folds}); "
        f"reported area at first sight: median {np.median(ha):.2f} ha, p10 {np.percentile(ha, 10):.2f}, "
        f"p90 {np.percentile(ha, 90):.1f}")
    q = np.percentile(ms, [50, 90, 99])
    say(f"render 350×350: median {q[0]:.1f} ms, p90 {q[1]:.1f}, p99 {q[2]:.1f} "
        f"(fire tiles {np.median(np.array(ms)[y == 1]):.1f}, fire-free {np.median(np.array(ms)[y == 0]):.1f}); "
        f"all {len(tiles)} rendered+encoded+decoded in {render_s:.1f} s")
    say()
    say("(a) one statistic at its best threshold (fitted on all tiles)")
    say()
    say("| statistic | fire mean | fire-free mean | best accuracy |")
    say("|---|---:|---:|---:|")
    single = single_statistics(stats, y)
    for k, name in enumerate(STATISTICS):
        say(f"| {name} | {stats[y == 1, k].mean():.3f} | {stats[y == 0, k].mean():.3f} | {_pct(single[name])} |")
    top = max(single, key=single.get)
    say(f"\nbest single statistic: {top} {_pct(single[top])}")
    say()
    say("(b, c) classifiers under spatial cross-validation")
    say()
    say("| classifier | accuracy | recall (wildfire) | specificity (nowildfire) |")
    say("|---|---:|---:|---:|")
    hand = hand_statistics_cv(stats, y, splits)
    for name, r in hand.items():
        say(f"| hand statistics: {name} | {_pct(r['accuracy'])} | {_pct(r['recall'])} | {_pct(r['specificity'])} |")
    if not args.no_cnn:
        t1 = time.perf_counter()
        emb, bb_id = cnn_embeddings(images)
        embed_s = time.perf_counter() - t1
        cnn = cnn_cv(emb, y, splits, tiles)
        say(f"| CNN: {bb_id} + trainer head search | {_pct(cnn['accuracy'])} | {_pct(cnn['recall'])} | "
            f"{_pct(cnn['specificity'])} |")
        say(f"\nembedding {len(images)} images: {embed_s:.0f} s; head search: {time.perf_counter() - t1 - embed_s:.0f} s")
    best_hand = max(hand.values(), key=lambda r: r["accuracy"])
    say(f"\nbest hand-statistics classifier: {_pct(best_hand['accuracy'])}")
    if not args.no_cnn:
        m = paired_margin(y, cnn["pred"], best_hand["pred"], tiles)
        say(f"CNN minus best hand statistics, same tiles: {100 * m['difference']:+.1f} points "
            f"(95 % interval over cells {100 * m['low']:+.1f} to {100 * m['high']:+.1f}); tiles only the CNN "
            f"gets right {m['cnn_only']}, only the statistics {m['hand_only']}, exact McNemar p = {m['p']:.2g}")
    say()
    say("(d) real Mapbox fixtures against the simulated fire-free tiles (same decoding, 128 px)")
    say()
    fx = fixture_statistics()
    free = stats[y == 0]
    if fx:
        fxs = np.stack(list(fx.values()))
        say("| statistic | fixtures min | fixtures max | simulated fire-free p1 | p99 | min | max |")
        say("|---|---:|---:|---:|---:|---:|---:|")
        for k, name in enumerate(STATISTICS):
            p1, p99 = np.percentile(free[:, k], [1, 99])
            say(f"| {name} | {fxs[:, k].min():.3f} | {fxs[:, k].max():.3f} | {p1:.3f} | {p99:.3f} | "
                f"{free[:, k].min():.3f} | {free[:, k].max():.3f} |")
        bad = fixture_rule(free, fx)
        say(f"\n{len(fx)} fixtures; outside the simulated fire-free [min, max]: "
            + (", ".join(f"{n} {s}={v:.3f}" for n, s, v in bad) if bad else "none"))
        p1, p99 = np.percentile(free, [1, 99], axis=0)
        soft = [(n, STATISTICS[k]) for n, s in fx.items() for k in range(len(STATISTICS))
                if not p1[k] <= s[k] <= p99[k]]
        say("outside the 1st-99th percentile: " + (", ".join(f"{n} {s}" for n, s in soft) if soft else "none"))
    else:
        say(f"no fixtures under {FIXTURES} (set EMBERWATCH_FIXTURES_DIR to the fixtures folder)")
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
