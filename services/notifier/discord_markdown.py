"""Text from a feed, an event or a person, made inert for Discord before it goes into a message.

Discord renders markdown in content, embed descriptions and field values (titles and field names
too, in part): a fire name, a model name, a decision's reason or a person's note could otherwise
make a masked link (``[Open the console](https://evil.example)``), a heading, a quote, a spoiler,
break out of the code span it is shown in, or mention ``@everyone``, a role or a user. ``as_text``
escapes all of that with discord.py's own helpers plus what they leave open; ``as_code`` makes a
value safe inside an inline code span, where a backslash shows as itself. Control and bidi
formatting characters are dropped first (``emberwatch.common.plain_text``). Payloads also carry
``allowed_mentions: {"parse": []}``: nothing in them pings anyone, whatever gets through.
"""

from __future__ import annotations

import re

from discord.utils import escape_markdown, escape_mentions

from emberwatch.common.plain_text import plain_text

# A masked link needs "](" literally: a zero-width space between the two keeps both characters and
# breaks the link wherever it is. It goes in before escape_markdown, whose rule for links takes
# everything from a line's first "[" to its last "](...)" as one link and escapes only that "[",
# leaving the markdown between unescaped.
_LINK_JOIN = re.compile(r"\](?=\()")
# Mentions discord.py leaves: <@id>, <@!id>, <@&role> of any length, channels <#id>, slash commands
# </name:id>, emoji <:name:id> and <a:name:id>, timestamps <t:...>; and @everyone/@here glued to a word.
_ANGLE_MARKUP = re.compile(r"<(?=[@#/:]|a:|t:)")
_AT_ALL = re.compile(r"@(?=(?:everyone|here)\b)", re.IGNORECASE)
# A heading, a subtext (-#), a quote or a list item after leading spaces (escape_markdown escapes
# them only at the very start of a line).
_LINE_MARKUP = re.compile(r"^([ \t]+)(#{1,3}\s|-#\s|>|[-*+]\s)", re.MULTILINE)
_ZWSP = "\u200b"


def as_text(value: object, *, keep_lines: bool = True) -> str:
    """``value`` as Discord shows plain text: every markdown character escaped, no link, no mention,
    no heading; one line unless ``keep_lines``."""
    text = _LINK_JOIN.sub("]" + _ZWSP, plain_text(value, keep_lines=keep_lines))
    # ignore_links=False: a URL in data is escaped too (its markdown characters would otherwise stay
    # as they are, and where Discord's own URL rule ends is not ours to guess).
    text = escape_mentions(escape_markdown(text, ignore_links=False))
    text = _ANGLE_MARKUP.sub(r"\\<", text)
    text = _AT_ALL.sub("@" + _ZWSP, text)
    return _LINE_MARKUP.sub(lambda m: m[1] + "\\" + m[2], text)


def as_code(value: object) -> str:
    """``value`` for inside an inline code span (`...`): one line, no backtick to close it early."""
    text = plain_text(value).replace("`", "\u02cb")  # MODIFIER LETTER GRAVE ACCENT looks the same
    return text or " "
