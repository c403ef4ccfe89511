"""Structured logs on stderr: one JSON object per line, secrets redacted."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

# (pattern, replacement, anchor): every match of the pattern contains its anchor as it is, whatever
# the case of the rest (``may_hold_secret`` looks for the anchors first; tests/messaging/
# test_redaction.py checks that it misses nothing ``redact`` changes).
_SECRET_PATTERNS = [
    # Discord webhook tokens, Mapbox tokens (pk./sk.), access_token query parameters.
    (re.compile(r"(/api/(?:v\d+/)?webhooks/\d+/)[A-Za-z0-9_\-\.]+"), r"\1***", "webhooks/"),
    (re.compile(r"\b(pk|sk|tk)\.[A-Za-z0-9_\-\.]{8,}"), r"\1.***", "k."),
    (re.compile(r"(access_token=)[^&\s\"']+"), r"\1***", "="),
    (re.compile(r"(password=)[^&\s\"']+", re.I), r"\1***", "="),
    # AWS-style access key ids (the S3 tile store) and the key id in a signed request's Authorization.
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), r"\1***", "IA"),
    (re.compile(r"(Credential=)[^/,\s\"']+"), r"\1***", "="),
]
_ANCHORS = tuple(dict.fromkeys(anchor.encode() for _, _, anchor in _SECRET_PATTERNS))


def redact(text: str) -> str:
    """Remove anything that looks like a secret from ``text``."""
    for pattern, repl, _ in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


# One scan that finds whatever ``redact`` would change, in a text or in the JSON that holds it: the
# patterns without their word boundaries (JSON escapes put a letter before a value's first character,
# e.g. "\npk.x"), the others unchanged (the characters they match are never escaped in JSON, and an
# escaped one still matches their negated classes).
_SECRET_HINT = re.compile("|".join(
    f"(?i:{p.pattern.replace(chr(92) + 'b', '')})" if p.flags & re.IGNORECASE else
    f"(?:{p.pattern.replace(chr(92) + 'b', '')})" for p, _, _ in _SECRET_PATTERNS))


def may_hold_secret(data: bytes) -> bool:
    """False when ``redact`` would change nothing in the UTF-8 text ``data``, nor in any string it
    holds JSON-encoded (True may be a false alarm). Cheap: a few substring searches for the patterns'
    anchors (every match holds one), then, only where one is, one regex scan."""
    if not any(anchor in data for anchor in _ANCHORS):
        return False
    return _SECRET_HINT.search(data.decode()) is not None


def redact_value(value: object) -> object:
    """``value`` with every string in it redacted: dict keys and values, list and tuple items, nested."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
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
        return redact(json.dumps(entry, default=str))


class ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = {
            k: v for k, v in vars(record).items() if k not in _RESERVED and not k.startswith("_")
        }
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
