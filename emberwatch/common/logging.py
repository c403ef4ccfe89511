"""Structured logs on stderr: one JSON object per line, secrets redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import ahocorasick_rs


@dataclass(frozen=True)
class SecretShape:
    """One shape of secret that ``redact`` masks.

    ``anchors``: lowercase ASCII strings, one of which is in every match of ``pattern`` once its
    ASCII letters are lowercased, and stays there when the text is JSON-encoded (no quote, backslash or
    control character). ``hint``: written for that lowercased text (case-sensitive, so a literal
    start is searched fast), it matches wherever ``pattern`` does, in the text and in the text
    JSON-encoded (``\\"``, ``\\t``, a letter before a value's first character as in ``"\\npk.x"``); it
    may match more. ``redact`` tries ``pattern`` only where an anchor is; ``may_hold_secret`` tries
    ``hint`` only where an anchor is."""

    name: str
    pattern: re.Pattern[str]
    repl: str | Callable[[re.Match[str]], str]
    anchors: tuple[str, ...]
    hint: re.Pattern[str]
    hint_ascii: re.Pattern[bytes]  # ``hint`` over ASCII bytes: the same matches, no decoding


def _shape(name: str, pattern: str, repl: str | Callable[[re.Match[str]], str], anchors: tuple[str, ...],
           hint: str, *, ignore_case: bool = False) -> SecretShape:
    # Case-insensitive shapes are ASCII-only: a lowercased anchor then finds every match (re.I alone
    # would let "ſ" match "s", which no lowercased text holds as "s").
    flags = re.IGNORECASE | re.ASCII if ignore_case else 0
    return SecretShape(name, re.compile(pattern, flags), repl, anchors, re.compile(hint), re.compile(hint.encode()))


def _mask_value(match: re.Match[str]) -> str:
    """A secret field's name and separator as they were, its value masked (its quotes kept)."""
    value = match[2]
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match[1]}{quote}***{quote}"


# The separator after a field's name in JSON, YAML, a header, key=value or a Python repr; JSON-encoded,
# a quote is escaped (\") and a tab is \t. A value: quoted (up to its closing quote) or a bare word.
_SEP = r"""["']?[ \t]*[:=][ \t]*"""
_SEP_HINT = r"""\\?["']?(?:[ \t]|\\t)*[:=]"""
_VALUE = r"""("[^"\r\n]*"|'[^'\r\n]*'|[^\s"'&,;})\]]+)"""
# Names that say a field holds a secret, with any prefix: password, passwd, secret, token
# (discord_bot_token, EMBERWATCH_MLFLOW_TRACKING_PASSWORD, client_secret) and api/access/admin/private/
# secret keys (aws_secret_access_key, emberwatch-admin-key: Triton's admin-key header).
_SECRET_WORD = r"(?:password|passwd|secret|token)"
_KEY_KINDS = ("api", "access", "admin", "private", "secret")
_SECRET_KEY = rf"(?:{'|'.join(_KEY_KINDS)})[ _-]?key"
# "key" first, then a look behind at the kind: a literal start, fast to search for.
_SECRET_KEY_HINT = "key(?:" + "|".join(f"(?<={kind}{sep}key)" for kind in _KEY_KINDS
                                       for sep in ("", " ", "_", "-")) + ")"
_TOKEN_CHARS = "A-Za-z0-9_-"

SECRET_SHAPES = (
    _shape("discord webhook", r"(/api/(?:v\d+/)?webhooks/\d+/)[A-Za-z0-9_\-\.]+", r"\1***", ("webhooks/",),
           hint=r"/api/(?:v\d+/)?webhooks/\d+/[a-z0-9_\-\.]"),
    _shape("mapbox token", r"\b(pk|sk|tk)\.[A-Za-z0-9_\-\.]{8,}", r"\1.***", ("k.",),
           hint=r"[pst]k\.[a-z0-9_\-\.]{8}"),
    # base64url(user id) . timestamp . HMAC: MTA4NzY1NDMyMTA5ODc2NTQzMg.GaBcDe.<27 or more>.
    # The hint starts with its literal "." and looks behind for the first part.
    _shape("discord bot token",
           rf"(?<![{_TOKEN_CHARS}])[{_TOKEN_CHARS}]{{23,28}}\.[{_TOKEN_CHARS}]{{6,7}}\.[{_TOKEN_CHARS}]{{27,}}",
           "***", (".",), hint=r"\.(?<=[a-z0-9_-]{23}\.)[a-z0-9_-]{6,7}\.[a-z0-9_-]{27}"),
    # user:password@host in a URL of any scheme (postgresql://, https://, amqp://, s3://): the password.
    _shape("url password", r"""(://[^\s/@:"'<>]*):[^\s/@"'<>]+@""", r"\1:***@", ("@",),
           hint=r"""://[^\s/@:"'<>]*:[^\s/@"'<>]+@"""),
    # Authorization headers (the whole value, any scheme) and bearer tokens wherever they are.
    _shape("authorization header", rf"""(authorization{_SEP})("[^"\r\n]*"|'[^'\r\n]*'|[^\r\n"']+)""",
           _mask_value, ("authorization",),
           hint=rf"authorization{_SEP_HINT}", ignore_case=True),
    _shape("bearer token", r"\b(bearer[ \t]+)[A-Za-z0-9\-._~+/]+=*", r"\1***", ("bearer",),
           hint=r"bearer(?:[ \t]|\\t)+[a-z0-9\-._~+/]", ignore_case=True),
    # An AWS/S3 secret access key: 40 base64 characters a few characters after its label, whatever
    # separates them ("Secret Access Key  wJalr...", "aws_secret_access_key = wJalr...").
    _shape("aws secret access key",
           r"(secret[ _-]?(?:access[ _-]?)?key[^A-Za-z0-9/+\r\n]{1,8})[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])",
           r"\1***", ("secret",), hint=r"secret[ _-]?(?:access[ _-]?)?key", ignore_case=True),
    # A secret-named field's value: "password": "...", token=..., api_key: ..., emberwatch-admin-key: ...
    _shape("secret field", rf"({_SECRET_WORD}{_SEP}){_VALUE}", _mask_value, ("pass", "secret", "token"),
           hint=rf"{_SECRET_WORD}{_SEP_HINT}", ignore_case=True),
    # Anchored on the kind and "key" together (20 anchors), not on "key" alone: "fire_key" is in every tile.
    _shape("secret key field", rf"({_SECRET_KEY}{_SEP}){_VALUE}", _mask_value,
           tuple(f"{kind}{sep}key" for kind in _KEY_KINDS for sep in ("", " ", "_", "-")),
           hint=rf"{_SECRET_KEY_HINT}{_SEP_HINT}", ignore_case=True),
    # AWS access key ids (the S3 tile store) and the key id in a signed request's Authorization.
    _shape("aws access key id", r"\b(AKIA|ASIA)[A-Z0-9]{16}\b", r"\1***", ("akia", "asia"),
           hint=r"(?:akia|asia)[a-z0-9]{16}"),
    _shape("aws credential", r"(Credential=)[^/,\s\"']+", r"\1***", ("credential=",),
           hint=r"credential=[^/,\s\"']"),
)
# Each anchor with its shape, flat (a shape's anchors next to each other): one loop of substring
# searches finds the shapes to try.
_ANCHORS = tuple((anchor, anchor.encode(), shape) for shape in SECRET_SHAPES for anchor in shape.anchors)
# Every distinct anchor in one Aho-Corasick automaton (one pass over an event's body finds all that are
# there, overlapping ones included), and the shapes each one opens, in SECRET_SHAPES' order.
_ANCHOR_WORDS = tuple(dict.fromkeys(word for _, word, _ in _ANCHORS))
_ANCHOR_FINDER = ahocorasick_rs.BytesAhoCorasick(_ANCHOR_WORDS)
_SHAPES_OF_ANCHOR = tuple(tuple(s for _, w, s in _ANCHORS if w == word) for word in _ANCHOR_WORDS)
# Whether a dict key names a secret: redact_value masks its value.
_SECRET_NAME = re.compile(rf"(?:{_SECRET_WORD}|{_SECRET_KEY})$", re.IGNORECASE | re.ASCII)


def redact(text: str) -> str:
    """Remove anything that looks like a secret from ``text`` (each of ``SECRET_SHAPES``)."""
    # The anchors and hints are lowercase ASCII; str.lower() lowercases ASCII letters as they expect
    # (what it does to other characters only adds false alarms, which ``pattern`` then dismisses).
    lowered = text.lower()
    done = None
    for anchor, _, shape in _ANCHORS:
        if shape is not done and anchor in lowered:
            if shape.hint.search(lowered):
                text = shape.pattern.sub(shape.repl, text)
            done = shape
    return text


def may_hold_secret(data: bytes) -> bool:
    """False when ``redact`` would change nothing in the UTF-8 text ``data``, nor in any string it
    holds JSON-encoded, nor find a value under a secret-named key to mask (True may be a false alarm).
    Cheap: one pass of an automaton over the bytes finds the shapes' anchors that are there (every
    match holds one), then, only for the shapes whose anchor is there, one search for a literal
    start each."""
    lowered = data.lower()  # ASCII letters only, as the shapes' hints expect
    found = {word for word, _, _ in _ANCHOR_FINDER.find_matches_as_indexes(lowered, overlapping=True)}
    if not found:
        return False
    shapes = {shape.name: shape for word in found for shape in _SHAPES_OF_ANCHOR[word]}.values()
    if lowered.isascii():  # the common body: ASCII, where a bytes pattern matches what its str twin does
        return any(shape.hint_ascii.search(lowered) for shape in shapes)
    text = lowered.decode()
    return any(shape.hint.search(text) for shape in shapes)


def redact_value(value: object) -> object:
    """``value`` with every string in it redacted: dict keys and values, list and tuple items, nested;
    the value of a dict key that names a secret ("password", "api_key", ...) is masked whole."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): "***" if isinstance(k, str) and _SECRET_NAME.search(k)
                and isinstance(v, (str, bytes, int, float)) and not isinstance(v, bool) else redact_value(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(v) for v in value)
    return value


_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # Each value redacted before it is JSON-encoded (the patterns see the text, not its escapes);
        # what JSON cannot hold is written as its redacted str.
        return json.dumps(redact_value(entry), default=lambda obj: redact(str(obj)))


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = redact_value({
            k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")
        })
        line = f"{record.levelname[0]} {record.name}: {record.getMessage()}"
        if extras:
            line += " " + " ".join(f"{k}={v}" for k, v in extras.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # botocore logs whole signed requests at DEBUG: never below WARNING, like the other HTTP clients.
    for noisy in ("aiokafka", "kafka", "httpx", "httpcore", "botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
