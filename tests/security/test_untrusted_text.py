"""Untrusted text stays text outside the console: hostile strings in every text field of every event the
notifier posts reach Discord escaped (no masked link, mention, heading, quote or code-fence breakout;
Discord's limits kept after escaping; the Discord simulator accepts the payload) and the bot's replies
too; the CLI prints them as characters (no rich markup read, no terminal escape sequence written)."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
from rich.console import Console

from emberwatch.cli import render as cli_render
from emberwatch.cli.consoles import print_event
from emberwatch.common.plain_text import plain_text
from emberwatch.contracts.events import Evidence, LeakageCheck, MetricDelta
from services.notifier.bot_commands import Invoker, label_command, promote_command
from services.notifier.discord_markdown import as_code, as_text
from services.notifier.fit_discord_limits import LIMITS, fit_discord_limits, total_length
from services.notifier.render import Links, Renderer
from simulators.discord.app import validate_payload
from tests.services.notifier.helpers import alert, candidate, decision, detection, shown

HOSTILE = [
    "[Open the console](https://evil.example/steal)",
    "see [x] and [click here](<https://evil.example>) now",
    "https://ok.example/[a](https://evil.example)",
    "@everyone fire out @here",
    "<@123> <@!123456789012345678> <@&987654321098765432> <#42> </label:1> <t:1700000000:R>",
    "```\n# pwned\n```",
    "# Heading\n## Big\n-# small\n  ### indented\n> quoted\n- item",
    "||spoiler|| **bold** __under__ ~~strike~~ `code` *it*",
    "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\ \x1b[2J\x1b[31mred \x9b31m \x07",
    "[bold red]ALERT[/] [link=https://evil.example]click[/link]",
    "cod\u202egnp.exe \u2066isolated\u2069",
    '<img src=x onerror="alert(1)">',
]
ALL = " | ".join(HOSTILE)
LINKS = Links("http://mlflow:5000", "http://grafana:3000", "emberwatch-models", "http://console:8090")
R = Renderer(LINKS, "Emberwatch")
OUR_LINKS = {"on the console's map", "MLflow run", "MLflow model", "model version", "Grafana dashboard", "on the console"}
OUR_HOSTS = ("http://mlflow:5000/", "http://grafana:3000/", "http://console:8090/")
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def discord_hazards(text: str) -> list[str]:
    """What Discord would act on in ``text``: markup that is not escaped (outside inline code spans,
    where Discord renders nothing: no link, no mention)."""
    found = []
    if CONTROL.search(text):
        found.append("control character")
    text = re.sub(r"(?<!\\)`[^`\n]*(?<!\\)`", "", text)
    for link in re.finditer(r"(?<!\\)\[([^\]\n]*)\]\(([^)\s]*)", text):
        # the renderer's own links (fixed words, to the configured MLflow, Grafana and console) only
        if link[1] not in OUR_LINKS or not link[2].startswith(OUR_HOSTS):
            found.append("masked link")
    if re.search(r"@(?:everyone|here)", text):
        found.append("@everyone/@here")
    if re.search(r"(?<!\\)<(?:@|#|/|t:|a?:)", text):
        found.append("mention")
    if re.search(r"^[ \t]*(?:#{1,3}[ \t]|-#[ \t]|>)", text, re.MULTILINE):
        found.append("heading or quote")
    if re.search(r"(?<!\\)```", text) or re.search(r"(?<!\\)\|\|", text):
        found.append("code fence or spoiler")
    return found


def texts(payload: dict) -> list[str]:
    """Every text slot of a webhook payload."""
    out = [payload.get("content") or ""]
    for embed in payload.get("embeds", []):
        out += [embed.get("title") or "", embed.get("description") or "",
                (embed.get("footer") or {}).get("text") or ""]
        for field in embed.get("fields") or []:
            out += [field["name"], field["value"]]
    return out


def hostile_payloads(text: str) -> dict[str, dict]:
    """One payload of each kind the notifier posts, ``text`` in every field that comes from data."""
    ev = Evidence(n=10, n_wildfire=5, rule=text, method=text, thresholds={text: text, "alpha": 0.05},
                  deltas=[MetricDelta(metric=text, champion=0.8, challenger=0.9, delta=0.1)])
    lk = LeakageCheck(cnn_accuracy=0.9, location_accuracy=0.88, statistics_accuracy=0.5, split=text, n=30,
                 margin=0.05, warning=text)
    hostile_alert = alert().model_copy(update={"message": text, "component": text, "alert": text,
                                               "producer": text, "details": {text: text, "url": text}})
    return {
        "candidate": R.candidate(candidate().model_copy(update={
            "model_name": text, "version": text, "metrics": {text: 0.5}, "leakage": lk, "producer": text})),
        "decision": R.decision(decision("rolled_back").model_copy(update={
            "model_name": text, "candidate_version": text, "champion_version": text, "reason": text,
            "requested_by": text, "warnings": [text, text], "evidence": ev})),
        "refused": R.decision(decision("rejected").model_copy(update={"refused": True, "reason": text})),
        "alert": R.alert(hostile_alert),
        "detection": R.detection(detection().model_copy(update={
            "model_name": text, "model_version": text, "challenger_version": text, "challenger_probability": 0.4,
            "fire_key": text})),
        "digest": R.digest([hostile_alert, hostile_alert]),
    }


@pytest.mark.parametrize("text", HOSTILE + [ALL])
def test_hostile_text_reaches_discord_escaped(text):
    for kind, payload in hostile_payloads(text).items():
        fitted = fit_discord_limits(payload)
        assert fitted["allowed_mentions"] == {"parse": []}, kind  # nothing pings, whatever gets through
        assert validate_payload(fitted) is None, kind  # the Discord simulator's checks of the form body
        for slot in texts(fitted):
            assert discord_hazards(slot) == [], (kind, slot)
        # the text is still there, shown as its characters
        seen = shown("\n".join(texts(fitted)))
        assert all(word in seen for word in re.findall(r"[A-Za-z]{4,}", text)[:3]), kind


def test_the_escaper_leaves_nothing_hostile_and_keeps_the_words():
    for text in HOSTILE:
        out = as_text(text)
        assert discord_hazards(out) == [], (text, out)
        assert discord_hazards(as_code(text).replace("`", "")) == [] or "`" not in as_code(text)
        assert "`" not in as_code(text) and "\n" not in as_code(text)
    assert shown(as_text("**bold** _x_ [a](b)")).replace("\u200b", "") == "**bold** _x_ [a](b)"
    assert as_text("") == "" and as_code("") == " "
    # discord.py's escape_markdown alone takes "[a](b) ... [c](d)" as one link and leaves what is between
    between = as_text("[a](b) **bold** ```fence``` ||spoiler|| [c](https://e.example/_x_)")
    assert re.sub(r"\\.", "", between).count("*") == 0 and "`" not in re.sub(r"\\.", "", between)
    assert "|" not in re.sub(r"\\.", "", between) and "_" not in re.sub(r"\\.", "", between)


def test_escaped_text_stays_within_discords_limits():
    """Escaping can double a text's length: the fitted payload still keeps every limit, and a cut never
    leaves half an escape (a lone backslash before the ellipsis)."""
    long = ("*_`|~>#[" * 1200)  # 9,600 characters, each one escaped
    for kind, payload in hostile_payloads(long).items():
        fitted = fit_discord_limits(payload)
        assert validate_payload(fitted) is None, kind
        assert total_length(fitted["embeds"]) <= LIMITS.total
        for slot in texts(fitted):
            assert discord_hazards(slot) == [], kind
            if slot.endswith("…"):
                head = slot[:-1]
                assert (len(head) - len(head.rstrip("\\"))) % 2 == 0, (kind, slot[-12:])


class _Ops:
    """The bot commands' operations: what a gatekeeper answers, with a hostile reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def promote(self, model_name, version, *, requested_by):
        return decision("promoted", version).model_copy(update={"reason": self.reason, "requested_by": self.reason})

    async def label(self, tile_id, label, *, labelled_by, note):
        return SimpleNamespace(labelled_by=labelled_by)


@pytest.mark.parametrize("text", HOSTILE)
async def test_the_bots_replies_escape_what_came_from_data_or_a_person(text):
    me = Invoker(user_id=1, name=text, role_ids=frozenset({7}))
    reply = await promote_command(_Ops(text), me, "8", allowed_role_ids={7}, model_name="wildfire")
    assert discord_hazards(reply.text) == [], reply.text
    for args in ((text, "fire"), ("ab" * 32, text), ("ab" * 32, "fire")):
        reply = await label_command(_Ops(text), me, *args, allowed_role_ids={7})
        assert discord_hazards(reply.text) == [], reply.text


# --- the CLI ---------------------------------------------------------------------------------------

# What rich writes itself: colours and styles (SGR). Anything else (OSC 8 links, cursor moves, screen
# clears, a title) would have come from the data.
_RICH_SGR = re.compile(r"\x1b\[[0-9;]*m")


def printed(renderable) -> str:
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=400)
    console.print(renderable)
    return console.file.getvalue()


def assert_inert(output: str) -> None:
    rest = _RICH_SGR.sub("", output)
    assert "\x1b" not in rest and "\x9b" not in rest and "\x07" not in rest, repr(rest)
    assert not re.search("[\u202a-\u202e\u2066-\u2069]", rest)
    assert "\x1b]8;" not in output  # no hyperlink, from markup or from the data


@pytest.mark.parametrize("text", HOSTILE)
def test_the_cli_prints_hostile_text_as_text(text):
    from datetime import datetime

    from emberwatch.operations.show_models import TritonView, VersionRow

    ev = Evidence(n=10, n_wildfire=5, rule=text, method=text,
                  deltas=[MetricDelta(metric=text, champion=0.8, challenger=0.9, delta=0.1)])
    d = SimpleNamespace(candidate_version=text, decision="promoted", champion_version=text, reason=text,
                        evidence=ev, warnings=[text])
    row = VersionRow(version=text, aliases=(text, "champion"), created=datetime(2026, 5, 1), metrics={},
                     backbone=text, run_id=text)
    triton = TritonView(url=text, public_model=text, public_ready=True, heads_ready=(text,))
    renderables = [cli_render.evidence_text(d), cli_render.models_table(text, [row], triton),
                   cli_render.triton_summary(triton), cli_render.where_to_look_table({text: text})]
    for renderable in renderables:
        out = printed(renderable)
        assert_inert(out)
    if "[bold red]" in text:  # markup in data is shown, not applied
        assert "[bold red]ALERT[/]" in _RICH_SGR.sub("", printed(cli_render.evidence_text(d)))
        assert "[link=https://evil.example]" in _RICH_SGR.sub("", printed(cli_render.triton_summary(triton)))
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=400)
    console.print(f"[red]failed:[/] {cli_render.markup_safe(text)}")
    assert_inert(console.file.getvalue())
    if "[link=" in text:
        assert "[link=https://evil.example]click[/link]" in _RICH_SGR.sub("", console.file.getvalue())


def test_print_event_shows_a_message_as_text(capsys, monkeypatch):
    from emberwatch.cli import consoles

    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=400)
    monkeypatch.setattr(consoles, "console", console)
    print_event("kafka", ALL)
    assert_inert(console.file.getvalue())
    assert "[bold red]ALERT[/]" in _RICH_SGR.sub("", console.file.getvalue())
