"""Secret redaction: secrets never leave through logs, exceptions, artifacts or the database.

Every secret value that erpsync resolves (API secrets, passwords, tokens) is registered here, together
with the encodings under which it could travel (the Basic-auth header value, for instance). ``redact``
replaces each of them with ``***``; ``install_log_redaction`` makes every log record pass through it,
whatever logger produced it (ours, httpx's, Prefect's run loggers).
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable

MASK = "***"
_MIN_SECRET_LENGTH = 4

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

# Credentials in headers are masked even when their value was never registered.
_HEADER_PATTERN = re.compile(r"(?i)\b(authorization\s*[:=]\s*['\"]?(?:basic|bearer|session)\s+)[A-Za-z0-9+/=._:-]+")


def register_secret(value: str | None, *, also: Iterable[str] = ()) -> None:
    """Remember a secret (and extra encodings of it) so that ``redact`` masks it from now on."""
    global _pattern
    candidates = [v for v in (value, *also) if v and len(v) >= _MIN_SECRET_LENGTH]
    if not candidates:
        return
    with _lock:
        before = len(_secrets)
        _secrets.update(candidates)
        if len(_secrets) != before:
            ordered = sorted(_secrets, key=len, reverse=True)
            _pattern = re.compile("|".join(re.escape(s) for s in ordered))


def register_basic_auth(username: str, password: str) -> None:
    """Register a Basic-auth pair: the password and the base64 token that carries both."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    register_secret(password, also=(token,))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and every credential header value masked."""
    if not text:
        return text
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _HEADER_PATTERN.sub(lambda m: m.group(1) + MASK, text)


class RedactingFilter(logging.Filter):
    """A logging filter that renders the message, masks secrets in it and drops the arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed log call must not break logging
        message = str(record.msg)
    cleaned = redact(message)
    record.msg = cleaned
    record.args = None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)


_installed = False


def install_log_redaction() -> None:
    """Redact every log record created in this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            redact_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


def forget_all_secrets() -> None:
    """Test helper: drop every registered secret."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None
