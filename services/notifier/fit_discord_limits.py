"""Make a webhook payload fit Discord's documented limits, so a post is never rejected for size.

Discord counts lengths in Unicode code points (its API is Python: ``len(str)``), limits are
inclusive, and the 6000-character total covers every embed's title, description, field names,
field values, footer text and author name together. This module is pure: it never mutates its
input, and ``fit_discord_limits(fit_discord_limits(p)) == fit_discord_limits(p)``.

Shortening is safe for people and for Unicode: text is cut at a grapheme-ish boundary (never
between a base character and its combining marks, inside a ZWJ emoji sequence, between a flag's
two regional indicators, before a skin-tone modifier or variation selector), lone surrogates are
replaced, and a cut is marked with ``…``. Text from data arrives markdown-escaped
(``discord_markdown``); a cut keeps escapes whole (never a lone backslash before the ``…``), and only
removes a tail, so it cannot make a link, a mention or a heading out of escaped text.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ELLIPSIS = "…"
BLANK = "\u200b"  # Discord's usual "empty" value for required-but-empty field names and values


@dataclass(frozen=True)
class DiscordLimits:
    content: int = 2000
    embeds: int = 10
    title: int = 256
    description: int = 4096
    fields: int = 25
    field_name: int = 256
    field_value: int = 1024
    footer: int = 2048
    author_name: int = 256
    total: int = 6000
    username: int = 80


LIMITS = DiscordLimits()

_ZWJ = "\u200d"


def _is_extender(ch: str) -> bool:
    """A code point that belongs to the character before it (must not start a cut-off tail)."""
    cp = ord(ch)
    return (
        ch == _ZWJ
        or unicodedata.combining(ch) != 0
        or unicodedata.category(ch) in ("Mn", "Me", "Mc")
        or 0xFE00 <= cp <= 0xFE0F          # variation selectors
        or 0xE0100 <= cp <= 0xE01EF        # variation selectors supplement
        or 0x1F3FB <= cp <= 0x1F3FF        # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F        # tag characters (subdivision flags)
    )


def _is_regional_indicator(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def safe_boundary(text: str, index: int) -> int:
    """The largest cut position ``<= index`` that does not split a user-perceived character."""
    i = max(0, min(index, len(text)))
    while 0 < i < len(text):
        if _is_extender(text[i]) or text[i - 1] == _ZWJ:
            i -= 1
            continue
        if _is_regional_indicator(text[i]) and _is_regional_indicator(text[i - 1]):
            run = 0
            j = i - 1
            while j >= 0 and _is_regional_indicator(text[j]):
                run += 1
                j -= 1
            if run % 2 == 1:  # text[i-1] is the first half of a flag
                i -= 1
                continue
        break
    return i


def clean_text(text: Any) -> str:
    """A string that JSON-encodes and that Discord accepts: lone surrogates become U+FFFD."""
    value = text if isinstance(text, str) else str(text)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` code points, cut at a safe boundary and marked with ``…``."""
    text = clean_text(text)
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    if limit == 1:
        return ELLIPSIS
    cut = safe_boundary(text, limit - len(ELLIPSIS))
    head = text[:cut].rstrip()
    if (len(head) - len(head.rstrip("\\"))) % 2:  # a markdown escape cut in two: not its backslash alone
        head = head[:-1]
    return head + ELLIPSIS


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def embed_length(embed: Mapping[str, Any]) -> int:
    """The characters of one embed that count towards the 6000 total."""
    total = len(embed.get("title") or "") + len(embed.get("description") or "")
    for field in embed.get("fields") or []:
        total += len(field.get("name") or "") + len(field.get("value") or "")
    total += len((embed.get("footer") or {}).get("text") or "")
    total += len((embed.get("author") or {}).get("name") or "")
    return total


def total_length(embeds: list[Mapping[str, Any]]) -> int:
    return sum(embed_length(e) for e in embeds)


def _fit_embed(embed: Mapping[str, Any], limits: DiscordLimits) -> dict[str, Any]:
    out = copy.deepcopy(dict(embed))
    for key, limit in (("title", limits.title), ("description", limits.description)):
        if key in out:
            if _blank(out[key]):
                del out[key]
            else:
                out[key] = shorten(out[key], limit)
    if "footer" in out:
        footer = dict(out["footer"] or {})
        if _blank(footer.get("text")):
            out.pop("footer")
        else:
            footer["text"] = shorten(footer["text"], limits.footer)
            out["footer"] = footer
    if "author" in out:
        author = dict(out["author"] or {})
        if _blank(author.get("name")):
            out.pop("author")
        else:
            author["name"] = shorten(author["name"], limits.author_name)
            out["author"] = author
    if "fields" in out:
        fields = [dict(f) for f in (out["fields"] or [])]
        if len(fields) > limits.fields:
            dropped = len(fields) - limits.fields + 1
            fields = fields[: limits.fields - 1] + [
                {"name": "…", "value": f"{dropped} more not shown", "inline": False}
            ]
        for field in fields:
            field["name"] = BLANK if _blank(field.get("name")) else shorten(field["name"], limits.field_name)
            field["value"] = (
                BLANK if _blank(field.get("value")) else shorten(field["value"], limits.field_value)
            )
        if fields:
            out["fields"] = fields
        else:
            out.pop("fields")
    return out


def _shrink_to_total(embeds: list[dict[str, Any]], limit: int) -> None:
    """Shorten text slots, least important first, until all embeds together fit ``limit``."""
    excess = total_length(embeds) - limit
    if excess <= 0:
        return
    # (getter, setter, minimum) slots in the order we are willing to shorten them.
    slots: list[tuple[Any, Any, int]] = []

    def slot(container: dict[str, Any], key: str, minimum: int) -> None:
        def get() -> str:
            return container.get(key) or ""

        def put(value: str) -> None:
            container[key] = value

        slots.append((get, put, minimum))

    for embed in reversed(embeds):
        if "description" in embed:
            slot(embed, "description", 1)
    for embed in reversed(embeds):
        for field in reversed(embed.get("fields") or []):
            slot(field, "value", 1)
    for embed in reversed(embeds):
        if "footer" in embed:
            slot(embed["footer"], "text", 1)
    for embed in reversed(embeds):
        for field in reversed(embed.get("fields") or []):
            slot(field, "name", 1)
    for embed in reversed(embeds):
        if "author" in embed:
            slot(embed["author"], "name", 1)
    for embed in reversed(embeds):
        if "title" in embed:
            slot(embed, "title", 1)

    for get, put, minimum in slots:
        if excess <= 0:
            break
        current = get()
        room = len(current) - minimum
        if room <= 0:
            continue
        target = len(current) - min(room, excess)
        shortened = shorten(current, target)
        if _blank(shortened):
            shortened = BLANK
        excess -= len(current) - len(shortened)
        put(shortened)


def fit_discord_limits(payload: Mapping[str, Any], limits: DiscordLimits = LIMITS) -> dict[str, Any]:
    """A copy of a webhook-execute ``payload`` that respects every documented size limit."""
    out: dict[str, Any] = copy.deepcopy(dict(payload))
    notes: list[str] = []

    if "username" in out:
        if _blank(out["username"]):
            del out["username"]
        else:
            name = clean_text(out["username"]).strip()
            # Discord refuses webhook names containing "discord" or "clyde".
            name = re.sub(r"(?i)discord", "Disc0rd", name)
            name = re.sub(r"(?i)clyde", "Clyd3", name)
            out["username"] = shorten(name, limits.username) or "Emberwatch"

    embeds = [dict(e) for e in (out.get("embeds") or [])]
    if len(embeds) > limits.embeds:
        notes.append(f"({len(embeds) - limits.embeds} more embeds not shown)")
        embeds = embeds[: limits.embeds]
    embeds = [_fit_embed(e, limits) for e in embeds]
    _shrink_to_total(embeds, limits.total)
    if embeds:
        out["embeds"] = embeds
    else:
        out.pop("embeds", None)

    content = out.get("content")
    if notes:
        content = ((content or "") + "\n" + " ".join(notes)).strip()
    if _blank(content):
        out.pop("content", None)
    else:
        out["content"] = shorten(content, limits.content)

    if "content" not in out and "embeds" not in out:
        out["content"] = "(empty message)"
    return out
