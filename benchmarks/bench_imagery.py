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

Usage: python benchmarks/bench_imagery.py [PAIRS] [--no-cnn] [--folds K] [--fixtures DIR] [--out FILE]
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
    args = ap.parse_args()
    IMAGE_SIZE = args.image_size

    lines: list[str] = []

    def say(s: str = "") -> None:
        print(s, flush=True)
        lines.append(s)

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
