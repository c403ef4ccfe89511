"""The notifier's handlers and their bookkeeping with the real SQLite store and the simulator (no broker needed)."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from emberwatch.messaging.subscription import Received
from services.notifier.delivery_store import DeliveryStore
from services.notifier.discord_webhook import DiscordRejected, DiscordUnavailable, DiscordWebhook
from services.notifier.handlers import Handlers
from services.notifier.render import Links, Renderer
from simulators.discord.main import serve_in_thread
from tests.services.notifier.helpers import alert, candidate, decision, metric

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sim():
    with serve_in_thread() as (base, state):
        state.rate_limit = 100
        hook = next(iter(state.webhooks.values()))
        yield f"{base}/api/webhooks/{hook.id}/{hook.token}", state


@pytest.fixture
async def make(tmp_path):
    made = []

    async def build(url: str, *, window_s: float = 60.0, max_events: int = 100):
        http = httpx.AsyncClient(timeout=5)
        store = DeliveryStore(tmp_path / "deliveries.sqlite3")
        dead: list[tuple[bytes, str, str]] = []

        async def dead_letter(body: bytes, topic: str, error: str) -> None:
            dead.append((body, topic, error))

        notifier = Handlers(
            store=store, webhook=DiscordWebhook(SecretStr(url), http=http, max_attempts=2, backoff_s=0.01),
            renderer=Renderer(Links("http://mlflow", "http://grafana", "dash"), "Emberwatch"),
            digest_severities=frozenset({"info"}), digest_alerts=frozenset({"new_fire"}),
            digest_window_s=window_s, digest_max_events=max_events, dead_letter=dead_letter)
        made.append((http, store))
        return notifier, store, dead

    yield build
    for http, store in made:
        await http.aclose()
        store.close()


async def test_the_crash_window_reposts_once_marked_as_a_possible_repeat(sim, make):
    url, state = sim
    notifier, store, _ = await make(url)
    event = decision("promoted", "21")
    # A previous process began posting this event and died before recording Discord's answer.
    assert store.begin(event.event_id, "promoted") is False
    before = metric("emberwatch_notifier_uncertain_reposts_total")
    await notifier.on_decision(event)
    await notifier.on_decision(event)  # and the redelivery after that is suppressed
    assert len(state.posted) == 1
    assert "Possible repeat" in state.posted[0]["message"]["content"]
    assert metric("emberwatch_notifier_uncertain_reposts_total") == before + 1
    assert store.state(event.event_id) == "posted"
    assert store.message_id(event.event_id) == state.posted[0]["message"]["id"]


async def test_a_refused_or_failed_post_leaves_no_pending_record(sim, make):
    url, state = sim
    notifier, store, _ = await make(url.replace("/webhooks/", "/webhooks/9"))  # unknown webhook
    event = candidate("22")
    with pytest.raises(DiscordRejected):
        await notifier.on_candidate(event)
    assert store.state(event.event_id) is None  # a DLQ replay later is a clean first attempt

    notifier, store, _ = await make(url)
    state.fail_all_status = 500
    with pytest.raises(DiscordUnavailable):
        await notifier.on_candidate(event)
    assert store.state(event.event_id) is None
    state.fail_all_status = None
    await notifier.on_candidate(event)
    assert "Possible repeat" not in (state.posted[0]["message"].get("content") or "")


async def test_low_priority_alerts_wait_for_the_digest_and_important_ones_do_not(sim, make):
    url, state = sim
    notifier, store, _ = await make(url, window_s=3600, max_events=3)
    await notifier.on_alert(alert("cache", "info", "a"))
    await notifier.on_alert(alert("new_fire", "warning", "b"))  # by name
    assert state.posted == [] and store.queue_stats()[0] == 2
    assert not notifier.digest_due()
    await notifier.on_alert(alert("feed_down", "critical"))
    assert len(state.posted) == 1
    await notifier.on_alert(alert("cache", "info", "c"))
    assert notifier.digest_due()  # three waiting: the size trigger
    assert await notifier.flush_digest() == 3
    assert await notifier.flush_digest() == 0
    assert state.posted[-1]["message"]["embeds"][0]["title"] == "🗞️ Digest: 3 low-priority events"


async def test_a_digest_discord_refuses_sends_its_events_to_the_dlq(sim, make):
    url, state = sim
    notifier, store, dead = await make(url.replace("/webhooks/", "/webhooks/9"), window_s=0)
    events = [alert("cache", "info", f"m{i}") for i in range(3)]
    for e in events:
        await notifier.on_alert(e)
    assert await notifier.flush_digest() == 0
    assert sorted(body for body, _, _ in dead) == sorted(e.to_bytes() for e in events)
    assert all("HTTP 404" in error for _, _, error in dead)
    assert store.queue_stats()[0] == 0


async def test_a_digest_after_an_unconfirmed_attempt_is_marked(sim, make):
    url, state = sim
    notifier, store, _ = await make(url, window_s=0)
    e = alert("cache", "info", "m")
    await notifier.on_alert(e)
    store.note_digest_attempt([e.event_id])  # as if the process died while posting the digest
    assert await notifier.flush_digest() == 1
    assert "Possible repeat" in state.posted[0]["message"]["content"]


def test_the_store_survives_reopening(tmp_path):
    path = tmp_path / "s.sqlite3"
    store = DeliveryStore(path)
    store.begin("a", "candidate")
    store.mark_posted(["a"], "candidate", "123")
    assert store.enqueue("b", "t", b"{}")
    assert not store.enqueue("b", "t", b"{}")
    assert not store.enqueue("a", "t", b"{}")  # already posted: never queued again
    store.close()
    again = DeliveryStore(path)
    try:
        assert again.state("a") == "posted" and again.message_id("a") == "123"
        assert again.state("b") == "queued" and again.state("c") is None
        assert again.begin("c", "alert") is False
        assert again.begin("c", "alert") is True  # the first attempt's fate is unknown
    finally:
        again.close()


async def test_a_batch_posts_only_what_was_never_posted_in_order_and_counts_the_rest(sim, make):
    url, state = sim
    notifier, store, _ = await make(url)
    events = [decision("promoted", str(v)) for v in range(30, 36)]
    for e in events[:4:2]:  # two were posted before (a replay of a batch that was partly handled)
        await notifier.on_decision(e)
    queued = alert("cache", "info", "queued for the digest")
    assert store.enqueue(queued.event_id, queued.TOPIC, queued.to_bytes())
    before = metric("emberwatch_notifier_duplicates_suppressed_total", kind="promoted")
    posted_before = len(state.posted)

    batch = [Received(e, "models.decisions.v1", 0, i) for i, e in enumerate(events)]
    await notifier.on_decisions(batch)
    await notifier.on_decisions(batch)  # the whole batch again: nothing new

    new = [e for i, e in enumerate(events) if i not in (0, 2)]
    assert len(state.posted) == posted_before + len(new)
    posted_versions = [p["message"]["embeds"][0]["title"] for p in state.posted[posted_before:]]
    assert posted_versions == [notifier.renderer.decision(e)["embeds"][0]["title"] for e in new]
    assert metric("emberwatch_notifier_duplicates_suppressed_total", kind="promoted") == before + 2 + len(events)
    assert store.states([e.event_id for e in events] + [queued.event_id, "never-seen"]) == {
        **{e.event_id: "posted" for e in events}, queued.event_id: "queued"}
