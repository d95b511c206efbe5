from __future__ import annotations

import base64

from erpsync.connectors.erp.oblio.webhook import verify_oblio_webhook


def test_the_right_key_echoes_the_request_id_in_base64() -> None:
    echo = verify_oblio_webhook("s3cret", "s3cret", "req-42")
    assert echo is not None and base64.b64decode(echo) == b"req-42"


def test_a_wrong_or_missing_key_or_id_never_verifies() -> None:
    assert verify_oblio_webhook("wrong", "s3cret", "req-42") is None
    assert verify_oblio_webhook(None, "s3cret", "req-42") is None
    assert verify_oblio_webhook("", "", "req-42") is None
    assert verify_oblio_webhook("s3cret", "s3cret", None) is None
