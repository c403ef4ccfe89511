"""Text from outside, made plain: no control characters, no bidi controls, one Unicode form.

A feed row, an event field or a person's input may carry characters that act on whoever displays them:
C0/C1 controls (ESC starts terminal escape sequences: colours, OSC 8 hyperlinks, window titles; BEL,
backspace and carriage return overwrite what was printed) and the bidirectional formatting characters
(U+202E RIGHT-TO-LEFT OVERRIDE shows ``exe.txt`` for ``txt.exe``). ``plain_text`` drops them; the
text itself (HTML included) stays as it is: it is data, and every place that shows it shows it as text.
"""

from __future__ import annotations

import re
import unicodedata

# C0 controls but tab and newline, DEL and the C1 controls (U+0080-U+009F, CSI U+009B among them),
# the bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the bidi marks
# (U+061C ARABIC LETTER MARK, U+200E/U+200F LEFT-TO-RIGHT/RIGHT-TO-LEFT MARK).
_CONTROLS_KEEPING_LINES = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain_text(value: object, *, keep_lines: bool = False) -> str:
    """``value`` as a string in NFC with its control and bidi formatting characters removed.

    ``keep_lines``: tabs and newlines stay (a multi-line note); otherwise each becomes a space (a name,
    a title: one line)."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii() and text.isprintable():
        return text  # the common case: nothing to do
    if not keep_lines:
        text = text.replace("\r\n", " ").replace("\n", " ").replace("\t", " ")
        text = _CONTROLS.sub("", text)
    else:
        text = _CONTROLS_KEEPING_LINES.sub("", text)
    return unicodedata.normalize("NFC", text)
