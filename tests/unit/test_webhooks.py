"""Webhook signatures: base64 HMAC-SHA256 of the raw body."""

from __future__ import annotations

import base64
import hashlib
import hmac

from erpsync.connectors.merchantpro.webhooks import sign, verify_signature

SECRET = "whsec-test-0001"
BODY = b'{"event":"order.created","id":"95750870.3"}'


def test_good_signature_is_accepted() -> None:
    expected = base64.b64encode(hmac.new(SECRET.encode(), BODY, hashlib.sha256).digest()).decode()
    assert sign(BODY, SECRET) == expected
    assert verify_signature(BODY, expected, SECRET)


def test_altered_body_is_rejected() -> None:
    signature = sign(BODY, SECRET)
    assert not verify_signature(BODY.replace(b"95750870.3", b"95750870.4"), signature, SECRET)
    # Same JSON, different bytes: signatures are over the raw body, never a re-serialisation.
    assert not verify_signature(b'{"event": "order.created", "id": "95750870.3"}', signature, SECRET)


def test_forged_or_missing_signatures_are_rejected() -> None:
    assert not verify_signature(BODY, sign(BODY, "other-secret"), SECRET)
    assert not verify_signature(BODY, "not base64 !!", SECRET)
    assert not verify_signature(BODY, "", SECRET)
    assert not verify_signature(BODY, None, SECRET)
    assert not verify_signature(BODY, sign(BODY, SECRET), "")
    hex_digest = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    assert not verify_signature(BODY, hex_digest, SECRET)
