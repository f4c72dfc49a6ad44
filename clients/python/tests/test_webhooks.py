"""Unit tests of verify_webhook and sign_webhook, checked against `standardwebhooks` (the reference Python
implementation of Standard Webhooks) both ways: what it signs we accept, what we sign it accepts, and both refuse the
same tampering. The test vector is the one the spec's reference libraries share."""

from __future__ import annotations

import base64
import json
import os
import pickle
import time
from datetime import UTC, datetime
from math import floor
from typing import Any

import httpx
import pytest
import standardwebhooks

import onbehalf
from onbehalf import (
    DEFAULT_WEBHOOK_TOLERANCE,
    Account,
    OnbehalfError,
    User,
    WebhookEvent,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in Unix ms

USER = {"id": 7, "external_id": "u-42", "email": "ada@example.org"}

ACCOUNT = {
    "id": "acc-1",
    "provider_id": "demo",
    "provider_name": "Demo Globus",
    "subject": "3b9c4a7e",
    "username": "ada@demo.globus.org",
    "display_name": "Ada Lovelace",
    "email": None,
    "status": "needs_reconnect",
    "status_reason": "Globus refused the refresh token (invalid_grant).",
    "resource_servers": [
        {
            "resource_server": "transfer.api.globus.org",
            "scopes": [{"scope": "urn:transfer:all", "description": "Move your data", "granted": True}],
            "has_token": True,
            "expires_at": T0 + 3_600_000,
            "has_refresh_token": True,
        }
    ],
    "created_at": T0,
    "last_refreshed_at": None,
    "last_used_at": T0 + 1000,
}

MSG_ID = "evt_0123456789abcdef0123456789abcdef"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


SECRET = new_secret()


def event(kind: str = "account.needs_reconnect", **data: Any) -> dict[str, Any]:
    body = {"user": USER, "account": ACCOUNT, "reason": "Globus refused the refresh token (invalid_grant)."}
    return {"id": MSG_ID, "type": kind, "occurred_at": T0, "data": {**body, **data}}


def compact(document: Any) -> str:
    """JSON as onbehalf sends it: compact, the exact bytes signed."""
    return json.dumps(document, separators=(",", ":"))


def signed(body: str, *, secret: str = SECRET, msg_id: str = MSG_ID, at: int | None = None) -> dict[str, str]:
    """Headers of a delivery signed by the reference implementation."""
    when = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(floor(when.timestamp())),
        "webhook-signature": standardwebhooks.Webhook(secret).sign(msg_id, when, body),
    }


def ours(body: str | bytes, *, secrets: tuple[str, ...] = (SECRET,), msg_id: str = MSG_ID) -> dict[str, str]:
    """Headers of a delivery signed by sign_webhook, one signature per secret (a rotation signs with two)."""
    now = int(time.time())
    signatures = " ".join(sign_webhook(secret, msg_id, now, body) for secret in secrets)
    return {"webhook-id": msg_id, "webhook-timestamp": str(now), "webhook-signature": signatures}


# -- the spec's test vector -----------------------------------------------------------------------------------------

VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_spec_test_vector() -> None:
    assert sign_webhook(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    assert sign_webhook(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY.encode()) == VECTOR_SIGNATURE
    at = datetime.fromtimestamp(VECTOR_TIMESTAMP, tz=UTC)
    assert sign_webhook(VECTOR_SECRET, VECTOR_ID, at, VECTOR_BODY) == VECTOR_SIGNATURE
    assert standardwebhooks.Webhook(VECTOR_SECRET).sign(VECTOR_ID, at, VECTOR_BODY) == VECTOR_SIGNATURE
    headers = {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(VECTOR_TIMESTAMP),
        "webhook-signature": VECTOR_SIGNATURE,
    }
    # The signature matches; the body is the vector's, not an onbehalf event, so only reading it fails.
    with pytest.raises(WebhookVerificationError, match=r"body \(signed correctly\) cannot be read: data should be"):
        verify_webhook(headers, VECTOR_BODY, VECTOR_SECRET, now=VECTOR_TIMESTAMP + 10)
    with pytest.raises(WebhookVerificationError, match="No signature"):
        verify_webhook(headers, VECTOR_BODY.replace("4}", "5}"), VECTOR_SECRET, now=VECTOR_TIMESTAMP)


# -- interoperability with standardwebhooks -------------------------------------------------------------------------


def test_accepts_what_standardwebhooks_signs_and_reads_the_event() -> None:
    body = compact(event())
    got = verify_webhook(signed(body), body.encode(), SECRET)
    assert isinstance(got, WebhookEvent)
    assert (got.id, got.type, got.occurred_at) == (MSG_ID, "account.needs_reconnect", T0)
    assert got.occurred == datetime(2026, 1, 1, tzinfo=UTC)
    assert got.user == User(id=7, external_id="u-42", email="ada@example.org")
    assert isinstance(got.account, Account)
    assert got.account.id == "acc-1" and got.account.needs_reconnect and not got.account.is_active
    assert got.account.status_reason == ACCOUNT["status_reason"]
    assert got.account.resource_servers[0].expires_at == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert got.reason == "Globus refused the refresh token (invalid_grant)."
    assert (got.account_id, got.provider) == ("acc-1", "demo")
    assert got.data["account"] == ACCOUNT and got.raw["type"] == "account.needs_reconnect"
    assert verify_webhook(signed(body), body, SECRET) == got, "a str body is its UTF-8 bytes"


def test_standardwebhooks_accepts_what_we_sign() -> None:
    body = compact(event())
    assert standardwebhooks.Webhook(SECRET).verify(body, ours(body)) == event()
    assert standardwebhooks.Webhook(SECRET).verify(body.encode(), ours(body.encode())) == event()
    assert verify_webhook(ours(body), body, SECRET).id == MSG_ID


def test_non_ascii_bodies_are_signed_as_utf8_bytes() -> None:
    body = compact(event(reason="Globus a refusé le jeton — réessayez"))
    assert verify_webhook(signed(body), body.encode("utf-8"), SECRET).reason == "Globus a refusé le jeton — réessayez"
    assert standardwebhooks.Webhook(SECRET).verify(body, ours(body))["data"]["reason"].startswith("Globus a refusé")


def test_any_of_the_signatures_of_a_rotation_matches() -> None:
    old, new, other = new_secret(), new_secret(), new_secret()
    body = compact(event("account.linked"))
    headers = ours(body, secrets=(new, old))
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert verify_webhook(headers, body, secret).type == "account.linked"
        assert standardwebhooks.Webhook(secret).verify(body, headers)["type"] == "account.linked"
    with pytest.raises(WebhookVerificationError, match="No signature of the webhook matches the secret"):
        verify_webhook(headers, body, other)
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(other).verify(body, headers)


def test_header_names_in_any_case_and_any_mapping() -> None:
    body = compact(event())
    headers = signed(body)
    shouted = {name.upper(): value for name, value in headers.items()}
    titled = {name.title(): value for name, value in headers.items()}
    for given in (shouted, titled, httpx.Headers(headers)):
        assert verify_webhook(given, body, SECRET).id == MSG_ID


def test_other_signature_versions_and_garbage_are_skipped() -> None:
    body = compact(event())
    headers = signed(body)
    headers["webhook-signature"] = f"v1a,Zm9v v2,{'x' * 44} v1,!!!notbase64 {headers['webhook-signature']}"
    assert verify_webhook(headers, body, SECRET).id == MSG_ID
    headers["webhook-signature"] = "v1a,Zm9v v1,!!!notbase64 nonsense"
    with pytest.raises(WebhookVerificationError, match="No signature"):
        verify_webhook(headers, body, SECRET)


# -- what is refused ------------------------------------------------------------------------------------------------


def test_tampering_is_refused_by_both() -> None:
    body = compact(event())
    headers = signed(body)
    later = str(int(headers["webhook-timestamp"]) + 1)
    cases: list[tuple[str, dict[str, str], str]] = [
        ("body", headers, body.replace('"u-42"', '"u-43"')),
        ("body re-serialized", headers, json.dumps(event())),
        ("id", {**headers, "webhook-id": "evt_ffffffffffffffffffffffffffffffff"}, body),
        ("timestamp", {**headers, "webhook-timestamp": later}, body),
    ]
    for what, given, sent in cases:
        with pytest.raises(WebhookVerificationError, match="No signature of the webhook matches the secret") as caught:
            verify_webhook(given, sent, SECRET)
        assert body not in str(caught.value) and SECRET not in repr(caught.value), what
        with pytest.raises(standardwebhooks.WebhookVerificationError, match="No matching signature"):
            standardwebhooks.Webhook(SECRET).verify(sent, given)


def test_a_wrong_secret_is_refused() -> None:
    body = compact(event())
    with pytest.raises(WebhookVerificationError, match="No signature of the webhook matches the secret"):
        verify_webhook(signed(body), body, new_secret())


def test_a_stale_or_future_timestamp_is_refused() -> None:
    body = compact(event())
    now = time.time()
    stale = signed(body, at=int(now) - DEFAULT_WEBHOOK_TOLERANCE - 60)
    with pytest.raises(WebhookVerificationError, match=r"timestamp is 3[56]\d s old, more than the 300 s allowed"):
        verify_webhook(stale, body, SECRET)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="too old"):
        standardwebhooks.Webhook(SECRET).verify(body, stale)
    future = signed(body, at=int(now) + DEFAULT_WEBHOOK_TOLERANCE + 60)
    with pytest.raises(WebhookVerificationError, match=r"timestamp is 3[56]\d s in the future"):
        verify_webhook(future, body, SECRET)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="too new"):
        standardwebhooks.Webhook(SECRET).verify(body, future)


def test_tolerance_and_now_are_the_callers() -> None:
    body = compact(event())
    headers = signed(body, at=1_700_000_000)
    assert verify_webhook(headers, body, SECRET, now=1_700_000_300).id == MSG_ID, "300 s is still within"
    assert verify_webhook(headers, body, SECRET, now=datetime.fromtimestamp(1_699_999_700, tz=UTC)).id == MSG_ID
    with pytest.raises(WebhookVerificationError, match="301 s old"):
        verify_webhook(headers, body, SECRET, now=1_700_000_301)
    with pytest.raises(WebhookVerificationError, match="11 s old, more than the 10 s allowed"):
        verify_webhook(headers, body, SECRET, now=1_700_000_011, tolerance=10)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_webhook(headers, body, SECRET, now=datetime(2026, 1, 1))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named(missing: str) -> None:
    body = compact(event())
    headers = {name: value for name, value in signed(body).items() if name != missing}
    with pytest.raises(WebhookVerificationError, match=f"The webhook lacks the header {missing}: is it from onbehalf"):
        verify_webhook(headers, body, SECRET)
    with pytest.raises(WebhookVerificationError, match=f"lacks the header {missing}"):
        verify_webhook({**headers, missing: "  "}, body, SECRET)


def test_every_missing_header_is_named() -> None:
    with pytest.raises(WebhookVerificationError, match="lacks the headers webhook-id, webhook-timestamp, webhook-sig"):
        verify_webhook({"content-type": "application/json"}, "{}", SECRET)


@pytest.mark.parametrize("timestamp", ["soon", "1614265330.5", "-1614265330", "1e9", "0x10", "1" * 16])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(timestamp: str) -> None:
    body = compact(event())
    headers = {**signed(body), "webhook-timestamp": timestamp}
    with pytest.raises(WebhookVerificationError, match="webhook-timestamp header is not a Unix time in whole seconds"):
        verify_webhook(headers, body, SECRET)


@pytest.mark.parametrize("body", [b"not json", b"\xff\xfe{}", b""])
def test_a_signed_body_that_is_not_json_is_refused(body: bytes) -> None:
    now = int(time.time())
    signature = sign_webhook(SECRET, MSG_ID, now, body)
    headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(now), "webhook-signature": signature}
    with pytest.raises(WebhookVerificationError, match="signature matches but its body is not JSON"):
        verify_webhook(headers, body, SECRET)


def test_a_signed_body_that_is_not_an_event_names_the_field() -> None:
    broken = event()
    broken["data"]["account"] = {**ACCOUNT, "id": 17}
    body = compact(broken)
    with pytest.raises(WebhookVerificationError, match=r"cannot be read: data\.account\.id should be a string"):
        verify_webhook(ours(body), body, SECRET)
    for document, field in (([1, 2], "the body"), ({"id": MSG_ID, "type": "x", "data": {}}, "occurred_at")):
        text = compact(document)
        with pytest.raises(WebhookVerificationError, match=f"cannot be read: {field} should be"):
            verify_webhook(ours(text), text, SECRET)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!", "obk_1234"])
def test_a_secret_that_is_not_whsec_is_a_configuration_error(secret: str) -> None:
    body = compact(event())
    with pytest.raises(ValueError, match="whsec_ followed by base64") as caught:
        verify_webhook(signed(body), body, secret)
    assert secret in ("", "whsec_") or secret not in str(caught.value), "the message never shows the value"


def test_a_secret_without_prefix_or_padding_is_the_same_key() -> None:
    body = compact(event())
    headers = signed(body)
    bare = SECRET.removeprefix("whsec_")
    assert verify_webhook(headers, body, bare).id == MSG_ID
    assert verify_webhook(headers, body, "whsec_" + bare.rstrip("=")).id == MSG_ID


# -- the events -----------------------------------------------------------------------------------------------------


def test_a_test_event_has_no_user_and_no_account() -> None:
    for data in ({}, {"user": None}):
        body = compact({"id": MSG_ID, "type": "webhook.test", "occurred_at": T0, "data": data})
        got = verify_webhook(ours(body), body, SECRET)
        assert (got.type, got.user, got.account, got.data) == ("webhook.test", None, None, data)
        assert got.reason is None and got.account_id is None and got.scopes == ()


def test_optional_fields_of_the_event_types() -> None:
    cases: list[tuple[dict[str, Any], str, Any]] = [
        (event("account.needs_consent", scopes=["urn:a", "urn:b"]), "scopes", ("urn:a", "urn:b")),
        (event("account.provider_unavailable", resource_server="transfer.api.globus.org"), "resource_server",
         "transfer.api.globus.org"),
        (event("account.disconnected", disconnected_by="admin"), "disconnected_by", "admin"),
    ]
    for document, name, expected in cases:
        body = compact(document)
        assert getattr(verify_webhook(ours(body), body, SECRET), name) == expected, name

    gone = {"id": MSG_ID, "type": "account.revocation_failed", "occurred_at": T0,
            "data": {"user": USER, "account_id": "acc-9", "provider": "demo", "failed_tokens": 2, "reason": "503"}}
    body = compact(gone)
    got = verify_webhook(ours(body), body, SECRET)
    assert got.account is None
    assert (got.account_id, got.provider, got.failed_tokens, got.reason) == ("acc-9", "demo", 2, "503")
    assert got.user is not None and got.user.external_id == "u-42"


def test_unknown_types_and_fields_are_kept() -> None:
    document = event("account.something_new", extra={"nested": [1]})
    document["newer_top_level"] = True
    body = compact(document)
    got = verify_webhook(ours(body), body, SECRET)
    assert got.type == "account.something_new"
    assert got.data["extra"] == {"nested": [1]} and got.raw["newer_top_level"] is True


def test_the_error_is_an_onbehalf_error_and_exported() -> None:
    assert issubclass(WebhookVerificationError, OnbehalfError)
    for name in ("verify_webhook", "sign_webhook", "WebhookEvent", "WebhookVerificationError"):
        assert name in onbehalf.__all__ and getattr(onbehalf, name)
    error = WebhookVerificationError("No signature matches.")
    assert (error.code, error.status, error.message) == ("invalid_webhook", None, "No signature matches.")
    assert str(error) == "No signature matches. (invalid_webhook)"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is WebhookVerificationError and copy.message == error.message


def test_events_are_frozen_and_compare_by_value() -> None:
    body = compact(event())
    first, second = verify_webhook(ours(body), body, SECRET), verify_webhook(signed(body), body, SECRET)
    assert first == second and hash(first) == hash(second)
    with pytest.raises(AttributeError):
        first.type = "x"  # type: ignore[misc]
