"""The notifier end to end: the real broker (Tansu) in, the Discord simulator over real HTTP out."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from emberwatch.contracts.envelope import Envelope
from emberwatch.contracts.topics import dlq_topic
from emberwatch.messaging.broker import build_broker
from services.notifier.delivery_store import DeliveryStore
from services.notifier.main import build_app
from services.notifier.models import Topics
from services.notifier.render import COLOURS
from simulators.discord.main import serve_in_thread
from tests.messaging.helpers import read_all, unique, wait_for
from tests.services.notifier.helpers import (
    alert,
    candidate,
    decision,
    detection,
    metric,
    notifier_settings,
    private_topics,
    shown,
)

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def sim():
    with serve_in_thread() as (base, state):
        token = f"SeCrEt-{unique('token')}-{unique('x')}"
        hook = state.add_webhook(name="ops", token=token)
        state.rate_limit, state.rate_window_s = 50, 10.0
        yield {"base": base, "state": state, "token": token, "hook": hook,
               "url": f"{base}/api/webhooks/{hook.id}/{token}"}


def posted(sim) -> list[dict]:
    return [p["message"] for p in sim["state"].posted]


def queued(settings) -> tuple:
    """The digest queue's figures, read through a store of its own (as a second process would)."""
    store = DeliveryStore(settings.state_file)
    try:
        return store.queue_stats()
    finally:
        store.close()


def topic_of(event: Envelope, topics: Topics) -> str:
    return {"models.candidates": topics.candidates, "models.decisions": topics.decisions,
            "pipeline.alerts": topics.alerts, "detections": topics.detections}[event.type]


async def publish_all(settings, topics: Topics, events: list[Envelope]) -> None:
    broker = build_broker(settings, "notifier-test-producer")
    await broker.start()
    try:
        for event in events:
            await broker.publish(event.to_bytes(), topic=topic_of(event, topics), key=event.key().encode())
    finally:
        await broker.stop()


async def test_each_event_is_posted_once_across_duplicates_restarts_and_replays(
        kafka_settings, tmp_path, sim, caplog):
    caplog.set_level(logging.DEBUG)
    sim["state"].rate_limit, sim["state"].rate_window_s = 2, 0.3  # short window: waits happen
    topics = private_topics()
    settings = notifier_settings(kafka_settings, tmp_path, sim["url"])
    huge = decision("rejected", version="8", reason="the challenger lost recall " * 800)
    events: list[Envelope] = [
        candidate("7"), decision("promoted", "7"), huge, decision("rolled_back", "6"),
        alert("feed_down", "critical"), alert("mapbox_rate_limited", "warning", "429 from Mapbox", retry_after=3),
    ]
    waits_before = metric("emberwatch_notifier_rate_limit_waits_total", cause="remaining_zero") + \
        metric("emberwatch_notifier_rate_limit_waits_total", cause="429")
    promoted_before = metric("emberwatch_notifier_posts_total", kind="promoted", outcome="posted")

    app = build_app(settings, topics)
    await app.start()
    try:
        await publish_all(kafka_settings, topics, events)
        await wait_for(lambda: len(posted(sim)) == len(events), timeout_s=60)
        dup_before = metric("emberwatch_notifier_duplicates_suppressed_total", kind="promoted")
        await publish_all(kafka_settings, topics, [events[1]])  # the same decision again
        await wait_for(lambda: metric("emberwatch_notifier_duplicates_suppressed_total", kind="promoted")
                       > dup_before, timeout_s=30)
    finally:
        await app.stop()

    messages = posted(sim)
    assert len(messages) == len(events)
    assert sorted(m["embeds"][0]["color"] for m in messages) == sorted(COLOURS[k] for k in
                                              ("candidate", "promoted", "rejected", "rolled_back",
                                               "critical", "warning"))
    assert all(m["author"]["username"] == "Emberwatch" for m in messages)

    promoted = next(m for m in messages if "promoted to champion" in m["embeds"][0]["title"])
    fields = {shown(f["name"]): f["value"] for f in promoted["embeds"][0]["fields"]}
    assert fields["Paired samples"] == "n = 412 (201 wildfire, 211 fire-free)"
    assert fields["p-value (exact McNemar, one-sided)"] == "0.0004"
    assert fields["recall_wildfire"] == "Δ +0.064 [+0.031, +0.097] 95% CI (0.871 → 0.935)"
    assert "http://mlflow.example:5000/#/runs/evalrun7" in fields["Links"]
    assert "http://grafana.example:3000/d/emberwatch-models" in fields["Links"]

    rejected = next(m for m in messages if "rejected" in m["embeds"][0]["title"])
    assert rejected["embeds"][0]["description"].endswith("…")  # shortened, not refused
    assert len(rejected["embeds"][0]["description"]) <= 4096

    assert metric("emberwatch_notifier_posts_total", kind="promoted", outcome="posted") == promoted_before + 1
    waits_after = metric("emberwatch_notifier_rate_limit_waits_total", cause="remaining_zero") + \
        metric("emberwatch_notifier_rate_limit_waits_total", cause="429")
    assert waits_after > waits_before  # 6 posts through a 2-per-window bucket had to wait

    # A restart with the same state, replaying the whole topics from the start (a new group):
    # every event is recognised, nothing is posted again.
    replay = settings.model_copy(update={"notifier_group_id": unique("notifier-replay")})
    dup_total_before = sum(metric("emberwatch_notifier_duplicates_suppressed_total", kind=k)
                           for k in ("candidate", "promoted", "rejected", "rolled_back", "alert"))
    app = build_app(replay, topics)
    await app.start()
    try:
        await wait_for(lambda: sum(metric("emberwatch_notifier_duplicates_suppressed_total", kind=k)
                                   for k in ("candidate", "promoted", "rejected", "rolled_back", "alert"))
                       >= dup_total_before + len(events) + 1, timeout_s=60)
    finally:
        await app.stop()
    assert len(posted(sim)) == len(events)

    assert sim["token"] not in caplog.text and sim["url"] not in caplog.text


async def test_a_burst_of_low_priority_alerts_becomes_one_digest_exactly_once(kafka_settings, tmp_path, sim):
    topics = private_topics()
    burst = [alert(f"tile_cached_{i % 3}", "info", f"tile {i} cached", component="tiler") for i in range(45)]
    burst += [alert("new_fire", "warning", f"new fire {i} in BC") for i in range(5)]  # by name
    urgent = alert("feed_down", "critical")
    settings = notifier_settings(kafka_settings, tmp_path, sim["url"], notifier_digest_max_events=50,
                                 notifier_digest_window_s=1.0)
    sizes_before = metric("emberwatch_notifier_digest_events_count")
    app = build_app(settings, topics, digest_poll_s=0.05)
    await app.start()
    try:
        await publish_all(kafka_settings, topics, burst + [urgent])
        await wait_for(lambda: len(posted(sim)) == 2, timeout_s=60)  # the urgent one + one digest of 50
        later = [alert("tile_cached_0", "info", f"late tile {i}", component="tiler") for i in range(3)]
        await publish_all(kafka_settings, topics, later)  # fewer than 50: posted when the window ends
        await wait_for(lambda: len(posted(sim)) == 3, timeout_s=60)
        dup_before = metric("emberwatch_notifier_duplicates_suppressed_total", kind="digest")
        await publish_all(kafka_settings, topics, burst[:10])  # replayed low-priority alerts
        await wait_for(lambda: metric("emberwatch_notifier_duplicates_suppressed_total", kind="digest")
                       >= dup_before + 10, timeout_s=30)
        assert queued(settings)[0] == 0
    finally:
        await app.stop()

    messages = posted(sim)
    assert len(messages) == 3
    urgent_msg = next(m for m in messages if "feed_down" in shown(m["embeds"][0]["title"]))
    assert urgent_msg["embeds"][0]["color"] == COLOURS["critical"]
    digests = [m for m in messages if m["embeds"][0]["title"].startswith("🗞️ Digest")]
    assert [d["embeds"][0]["title"] for d in digests] == ["🗞️ Digest: 50 low-priority events",
                                                          "🗞️ Digest: 3 low-priority events"]
    first = digests[0]["embeds"][0]
    counts = {shown(f["name"]): f["value"] for f in first["fields"]}
    assert counts["ingestor — new_fire"] == "5 events"
    assert counts["tiler — tile_cached_0"] == "15 events"
    assert metric("emberwatch_notifier_digest_events_count") == sizes_before + 2

    store = DeliveryStore(settings.state_file)
    try:
        ids = {store.message_id(a.event_id) for a in burst}
        assert ids == {digests[0]["id"]}  # every event of the burst is recorded with its digest
    finally:
        store.close()


async def test_queued_digest_events_survive_a_restart(kafka_settings, tmp_path, sim):
    topics = private_topics()
    infos = [alert("tile_cached", "info", f"tile {i}", component="tiler") for i in range(5)]
    settings = notifier_settings(kafka_settings, tmp_path, sim["url"], notifier_digest_window_s=3600)
    app = build_app(settings, topics, digest_poll_s=0.05)
    await app.start()
    try:
        await publish_all(kafka_settings, topics, infos)
        await wait_for(lambda: queued(settings)[0] == 5, timeout_s=60)
    finally:
        await app.stop()
    assert posted(sim) == []  # the window has not ended; the offsets are committed

    restarted = settings.model_copy(update={"notifier_digest_window_s": 0.2})
    app = build_app(restarted, topics, digest_poll_s=0.05)
    await app.start()
    try:
        await wait_for(lambda: len(posted(sim)) == 1, timeout_s=30)
    finally:
        await app.stop()
    assert posted(sim)[0]["embeds"][0]["title"] == "🗞️ Digest: 5 low-priority events"


@pytest.mark.parametrize("failure", ["bad_token", "unknown_webhook"])
async def test_discord_refusals_go_to_the_dlq_once_without_the_url(kafka_settings, tmp_path, sim, caplog,
                                                                    failure):
    caplog.set_level(logging.DEBUG)
    topics = private_topics()
    if failure == "bad_token":
        url = sim["url"].replace(sim["token"], sim["token"] + "-revoked")
    else:
        url = sim["url"].replace(f"/webhooks/{sim['hook'].id}/", "/webhooks/4242/")
    settings = notifier_settings(kafka_settings, tmp_path, url)
    event = decision("promoted", "11")
    app = build_app(settings, topics)
    await app.start()
    try:
        await publish_all(kafka_settings, topics, [event])
        dead = await read_all(kafka_settings.kafka_bootstrap_servers, dlq_topic(topics.decisions), expect=1,
                              timeout_s=60)
    finally:
        await app.stop()
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["x-dlq-reason"] == "permanent"
    assert ("HTTP 401" if failure == "bad_token" else "HTTP 404") in headers["x-dlq-error"]
    assert dead[0].value == event.to_bytes()
    assert sim["state"].requests == 1  # one request: no retry storm
    assert posted(sim) == []
    everything = caplog.text + repr(headers)
    assert sim["token"] not in everything and url not in everything


async def test_a_discord_outage_is_retried_and_the_event_posted_once(kafka_settings, tmp_path, sim):
    topics = private_topics()
    sim["state"].fail_next, sim["state"].fail_status = 3, 503  # 2 webhook attempts, then a Kafka retry
    settings = notifier_settings(kafka_settings, tmp_path, sim["url"])
    app = build_app(settings, topics)
    await app.start()
    try:
        await publish_all(kafka_settings, topics, [candidate("12")])
        await wait_for(lambda: len(posted(sim)) == 1, timeout_s=60)
    finally:
        await app.stop()
    assert sim["state"].requests == 4
    assert "v12" in posted(sim)[0]["embeds"][0]["title"]
    assert "Possible repeat" not in (posted(sim)[0].get("content") or "")


async def test_a_detection_is_posted_once_with_its_feedback_buttons(kafka_settings, tmp_path, sim):
    topics = private_topics()
    settings = notifier_settings(kafka_settings, tmp_path, sim["url"],
                                 notifier_console_url="http://console.example:8090")
    first = detection("cd" * 32, challenger_version="8", challenger_probability=0.42)
    other = detection("ef" * 32, product="sentinel2-swir", acquired_at=datetime(2026, 7, 3, 18, 42, tzinfo=UTC))
    app = build_app(settings, topics)
    await app.start()
    try:
        await publish_all(kafka_settings, topics, [first, other, first])  # the same fact twice
        await wait_for(lambda: len(posted(sim)) == 2 and metric(
            "emberwatch_notifier_duplicates_suppressed_total", kind="detection") >= 1, timeout_s=60)
    finally:
        await app.stop()
    messages = posted(sim)
    assert len(messages) == 2
    post = next(m for m in messages if "cd" * 32 in str(m["embeds"][0]["fields"]))
    fields = {f["name"]: f["value"] for f in post["embeds"][0]["fields"]}
    assert fields["Champion"] == "v7: P(wildfire) 0.91 (threshold 0.50)"
    assert fields["Challenger in shadow"] == "v8: P(wildfire) 0.42"
    assert f"http://console.example:8090/tiles/{'cd' * 32}" in fields["Image"]
    assert fields["Imagery"] == "Mapbox (undated mosaic)"
    dated = next(m for m in messages if "ef" * 32 in str(m["embeds"][0]["fields"]))["embeds"][0]
    assert "(Sentinel-2 SWIR) sees a wildfire" in shown(dated["title"])
    assert {"name": "Imagery", "value": "Sentinel-2 SWIR, acquired 2026-07-03 18:42 UTC", "inline": True} \
        in dated["fields"]
    # the buttons reached Discord (sent with ?with_components=true) and carry the tile and the label
    [row] = post["components"]
    assert [b["custom_id"] for b in row["components"]] == [
        f"emberwatch:label:{'cd' * 32}:wildfire", f"emberwatch:label:{'cd' * 32}:nowildfire"]


async def test_detections_are_not_posted_when_switched_off(kafka_settings, tmp_path, sim):
    topics = private_topics()
    settings = notifier_settings(kafka_settings, tmp_path, sim["url"], notifier_post_detections=False)
    app = build_app(settings, topics)
    await app.start()
    try:
        await publish_all(kafka_settings, topics, [detection("12" * 32), candidate("9")])
        await wait_for(lambda: len(posted(sim)) == 1, timeout_s=60)
    finally:
        await app.stop()
    assert [m["embeds"][0]["color"] for m in posted(sim)] == [COLOURS["candidate"]]
