"""Oblio's webhooks (``docs/oblio.md``, "Webhooks"): no signature is sent, only an ``X-Oblio-Request-Id`` header
that the endpoint must echo base64-encoded with HTTP 200. *(inference)* erpsync registers its endpoint with the
``webhook_secret`` in the URL (``?key=...``) and checks it here."""

from __future__ import annotations

import base64
import hmac

REQUEST_ID_HEADER = "X-Oblio-Request-Id"


def verify_oblio_webhook(key: str | None, secret: str, request_id: str | None) -> str | None:
    """The body Oblio expects (base64 of ``request_id``) when ``key`` is the configured secret, else None.

    Constant-time comparison; an empty secret, key or request id never verifies.
    """
    if not secret or not key or not request_id:
        return None
    if not hmac.compare_digest(key.encode(), secret.encode()):
        return None
    return base64.b64encode(request_id.encode()).decode()
