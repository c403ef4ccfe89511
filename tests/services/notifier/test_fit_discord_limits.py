"""fit_discord_limits: every documented limit, Unicode-safe cuts, purity, idempotence."""

from __future__ import annotations

import copy
import random

import pytest

from services.notifier.fit_discord_limits import (
    BLANK,
    ELLIPSIS,
    LIMITS,
    fit_discord_limits,
    safe_boundary,
    shorten,
    total_length,
)
from simulators.discord.app import validate_payload


def test_short_text_is_left_alone():
    assert shorten("hello", 5) == "hello"
    payload = {"content": "hi", "embeds": [{"title": "t", "description": "d",
                                            "fields": [{"name": "n", "value": "v"}]}]}
    assert fit_discord_limits(payload) == payload


def test_each_limit_is_enforced_with_an_ellipsis():
    payload = {
        "content": "c" * 2500,
        "username": "u" * 100,
        "embeds": [{
            "title": "t" * 300, "description": "d" * 5000,
            "fields": [{"name": "n" * 300, "value": "v" * 2000}],
            "footer": {"text": "f" * 3000}, "author": {"name": "a" * 300},
        }],
    }
    out = fit_discord_limits(payload)
    e = out["embeds"][0]
    assert len(out["content"]) == LIMITS.content and out["content"].endswith(ELLIPSIS)
    assert len(out["username"]) == LIMITS.username
    assert len(e["title"]) == LIMITS.title and e["title"].endswith(ELLIPSIS)
    assert len(e["fields"][0]["name"]) <= LIMITS.field_name
    assert len(e["fields"][0]["value"]) <= LIMITS.field_value
    assert len(e["footer"]["text"]) <= LIMITS.footer
    assert len(e["author"]["name"]) <= LIMITS.author_name
    assert total_length(out["embeds"]) <= LIMITS.total
    assert validate_payload(out) is None


def test_total_across_embeds_is_at_most_6000_and_titles_survive():
    embeds = [{"title": f"embed {i}", "description": "x" * 4000,
               "fields": [{"name": f"f{j}", "value": "y" * 1000} for j in range(25)]} for i in range(12)]
    out = fit_discord_limits({"embeds": embeds})
    assert len(out["embeds"]) == LIMITS.embeds
    assert total_length(out["embeds"]) <= LIMITS.total
    assert [e["title"] for e in out["embeds"]] == [f"embed {i}" for i in range(10)]
    assert "2 more embeds not shown" in out["content"]
    assert validate_payload(out) is None


def test_more_than_25_fields_keeps_24_and_says_how_many_were_dropped():
    fields = [{"name": f"n{i}", "value": f"v{i}"} for i in range(40)]
    out = fit_discord_limits({"embeds": [{"title": "t", "fields": fields}]})
    got = out["embeds"][0]["fields"]
    assert len(got) == LIMITS.fields
    assert got[:24] == fields[:24]
    assert got[-1]["value"] == "16 more not shown"


def test_blank_required_values_become_a_zero_width_space_and_blank_optionals_disappear():
    out = fit_discord_limits({"embeds": [{"title": "  ", "description": "",
                                          "fields": [{"name": "", "value": "   "}],
                                          "footer": {"text": ""}}]})
    e = out["embeds"][0]
    assert "title" not in e and "description" not in e and "footer" not in e
    assert e["fields"] == [{"name": BLANK, "value": BLANK}]
    assert validate_payload(out) is None


def test_an_empty_message_gets_content():
    assert validate_payload(fit_discord_limits({})) is None
    assert validate_payload(fit_discord_limits({"content": "   ", "embeds": []})) is None


def test_the_username_never_contains_words_discord_refuses():
    out = fit_discord_limits({"content": "x", "username": "My Discord bot"})
    assert "discord" not in out["username"].lower()
    assert validate_payload(out) is None


def test_input_is_not_mutated_and_fitting_is_idempotent():
    payload = {"content": "é" * 3000, "embeds": [{"title": "🔥" * 400, "description": "z" * 9000}]}
    before = copy.deepcopy(payload)
    once = fit_discord_limits(payload)
    assert payload == before
    assert fit_discord_limits(once) == once


@pytest.mark.parametrize("text,limit,expected", [
    ("abc👍🏽def", 5, "abc…"),            # never separates a skin-tone modifier from its emoji
    ("ab👨‍👩‍👧‍👦cd", 6, "ab…"),     # never cuts inside a ZWJ family sequence
    ("x🇨🇦🇫🇷y", 4, "x🇨🇦…"),             # flags are pairs of regional indicators
    ("x🇨🇦🇫🇷y", 3, "x…"),
    ("cafe\u0301s", 5, "caf…"),          # the accent stays with its e (or both go)
    ("❤️❤️❤️", 4, "❤️…"),                # variation selector stays with its heart
    ("日本語のテキスト", 4, "日本語…"),
])
def test_unicode_cuts_at_safe_boundaries(text, limit, expected):
    got = shorten(text, limit)
    assert got == expected
    assert len(got) <= limit


def test_lone_surrogates_are_replaced_so_the_payload_encodes():
    out = fit_discord_limits({"content": "bad \ud83d half"})
    out["content"].encode("utf-8")
    assert "\ufffd" in out["content"]


def test_safe_boundary_never_moves_forward():
    text = "a\u0301\u0302b"
    assert safe_boundary(text, 1) == 0
    assert safe_boundary(text, 2) == 0
    assert safe_boundary(text, 3) == 3
    assert safe_boundary(text, 4) == 4


ALPHABET = ["a", "Z", " ", "\n", "é", "e\u0301", "👍🏽", "👨‍👩‍👧", "🇨🇦", "❤️", "日", "\u200b", "`", "*"]


def _random_text(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(n))


def test_random_payloads_always_fit_and_cuts_never_orphan_extenders():
    rng = random.Random(7)
    for _ in range(60):
        embeds = []
        for _ in range(rng.randint(0, 13)):
            embeds.append({
                "title": _random_text(rng, rng.randint(0, 200)),
                "description": _random_text(rng, rng.randint(0, 2500)),
                "fields": [{"name": _random_text(rng, rng.randint(0, 150)),
                            "value": _random_text(rng, rng.randint(0, 700))}
                           for _ in range(rng.randint(0, 30))],
                "footer": {"text": _random_text(rng, rng.randint(0, 1200))},
                "author": {"name": _random_text(rng, rng.randint(0, 150))},
            })
        payload = {"content": _random_text(rng, rng.randint(0, 1500)), "embeds": embeds}
        out = fit_discord_limits(payload)
        assert validate_payload(out) is None  # the simulator's independent model of Discord
        for i, e in enumerate(out.get("embeds", [])):
            original = payload["embeds"][i]
            pairs = [(e.get("title", ""), original["title"]),
                     (e.get("description", ""), original["description"])]
            pairs += [(f["value"], original["fields"][j]["value"])
                      for j, f in enumerate(e.get("fields", [])[:24])]
            for text, source in pairs:
                if text.endswith(ELLIPSIS) and text != source:
                    kept = text[: -len(ELLIPSIS)]
                    assert source.startswith(kept)
                    # the cut is where a user-perceived character ends: nothing dangles
                    assert safe_boundary(source, len(kept)) == len(kept)
                    assert not kept.endswith("\u200d")
