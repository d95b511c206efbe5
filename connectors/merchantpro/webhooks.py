"""MerchantPro webhook signatures: ``X-Webhook-Signature`` = base64(HMAC-SHA256(raw body, webhook secret)).

Verify against the raw bytes as received (never a re-serialised JSON), in constant time. A webhook is a
trigger, not the truth: after a valid one, re-fetch the order by id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

SIGNATURE_HEADER = "X-Webhook-Signature"


def sign(raw_body: bytes, secret: str) -> str:
    """The signature MerchantPro sends for ``raw_body`` (used by the simulator and the tests)."""
    digest = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_signature(raw_body: bytes, signature: str | None, secret: str) -> bool:
    """True when ``signature`` is the base64 HMAC-SHA256 of exactly ``raw_body`` under ``secret``."""
    if not signature or not secret:
        return False
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)
