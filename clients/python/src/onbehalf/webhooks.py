"""Receiving onbehalf's webhooks: check a delivery's signature (Standard Webhooks 1.0) and read its event.

onbehalf POSTs each event to the platform's endpoint (registered with ``onbehalf webhook add --url URL``, which
prints the endpoint's ``whsec_...`` signing secret once). A delivery carries three headers:

- ``webhook-id``: the event's id, the same on every retry and redelivery: de-duplicate on it;
- ``webhook-timestamp``: when this attempt was signed, in Unix seconds;
- ``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` values, one per
  current secret (two while a secret is being rotated), where ``key`` is the base64-decoded secret after ``whsec_``.

:func:`verify_webhook` checks them exactly as the reference ``standardwebhooks`` packages do, with only the standard
library, and returns a typed :class:`WebhookEvent`. Anything it refuses raises :class:`WebhookVerificationError`:
answer 400 and use nothing from the request.

Invariant: no message names the secret, a signature or the body; the secret is never kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .errors import OnbehalfError, ProtocolError
from .models import Account, User, _from_ms, _Reader

__all__ = [
    "DEFAULT_WEBHOOK_TOLERANCE",
    "WebhookEvent",
    "WebhookVerificationError",
    "sign_webhook",
    "verify_webhook",
]

#: How far (seconds) a delivery's timestamp may be from now, either way: the reference libraries' five minutes.
#: Older is refused as a possible replay of a captured request; newer, as a clock gone wrong.
DEFAULT_WEBHOOK_TOLERANCE = 300

_SECRET_PREFIX = "whsec_"
_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
# Unix seconds as onbehalf (and the spec) writes them; a fraction or an exponent is not a timestamp of the spec.
_TIMESTAMP = re.compile(r"[0-9]{1,15}")


class HeaderItems(Protocol):
    """A request's headers as any framework has them: a dict, ``httpx.Headers``, Flask's ``request.headers``, Django's
    ``request.headers``, ``http.server``'s ``self.headers``: all that is read is ``items()``."""

    def items(self) -> Iterable[tuple[str, str]]: ...


class WebhookVerificationError(OnbehalfError):
    """A webhook delivery that must not be trusted or used (code ``invalid_webhook``): a header is missing, the
    timestamp is unreadable or too far from now, no signature matches the secret, or the signed body is not an
    event. Answer it with 400: onbehalf retries, and a forged or replayed request gets nothing."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_webhook", message, None, None)


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEvent:
    """One event of onbehalf, as a webhook delivered it.

    ``data`` is the event's ``data`` object as sent (the optional fields are read from it by the properties below,
    and fields a newer server adds stay there). ``account`` is the account as it is after the change (for
    ``account.disconnected``: as it was just before); ``None`` for events without one (``account.revocation_failed``,
    ``user.*``, ``webhook.test``). ``user`` is ``None`` only for ``webhook.test``.
    """

    #: The event's id (``evt_...``), also the ``webhook-id`` header: the same on every retry and redelivery.
    id: str
    #: ``account.linked``, ``account.needs_reconnect``, ... (an unknown, newer type stays a plain string).
    type: str
    #: When the change committed, Unix milliseconds (like every time of the service API's JSON).
    occurred_at: int
    user: User | None
    account: Account | None
    data: dict[str, Any] = field(repr=False, compare=False)
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def occurred(self) -> datetime:
        """``occurred_at`` as a timezone-aware UTC datetime."""
        return _from_ms(self.occurred_at)

    @property
    def reason(self) -> str | None:
        """Why, in words: the status reason, the provider's error, an administrator's reason for a disconnect."""
        return self._text("reason")

    @property
    def scopes(self) -> tuple[str, ...]:
        """``account.needs_consent``: the scopes to request."""
        value = self.data.get("scopes")
        return tuple(s for s in value if isinstance(s, str)) if isinstance(value, list) else ()

    @property
    def resource_server(self) -> str | None:
        """``account.provider_unavailable`` / ``account.recovered``: whose token could not be (and now is) renewed."""
        return self._text("resource_server")

    @property
    def disconnected_by(self) -> str | None:
        """``account.disconnected``: ``user``, ``admin`` or ``platform``."""
        return self._text("disconnected_by")

    @property
    def account_id(self) -> str | None:
        """The account's id: of ``account``, else ``data.account_id`` (``account.revocation_failed``, whose account is
        gone)."""
        return self.account.id if self.account is not None else self._text("account_id")

    @property
    def provider(self) -> str | None:
        """The account's provider id: of ``account``, else ``data.provider``."""
        return self.account.provider_id if self.account is not None else self._text("provider")

    @property
    def failed_tokens(self) -> int | None:
        """``account.revocation_failed``: how many tokens the provider did not confirm revoked."""
        value = self.data.get("failed_tokens")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _text(self, key: str) -> str | None:
        value = self.data.get(key)
        return value if isinstance(value, str) else None

    @classmethod
    def _read(cls, r: _Reader) -> WebhookEvent:
        data = r.child("data")
        return cls(
            id=r.text("id"),
            type=r.text("type"),
            occurred_at=r.integer("occurred_at"),
            user=None if data.data.get("user") is None else User._read(data.child("user")),
            account=None if data.data.get("account") is None else Account._read(data.child("account")),
            data=dict(data.data),
            raw=r.raw(),
        )


def verify_webhook(
    headers: HeaderItems,
    body: bytes | str,
    secret: str,
    *,
    tolerance: int = DEFAULT_WEBHOOK_TOLERANCE,
    now: float | datetime | None = None,
) -> WebhookEvent:
    """Checks a webhook delivery and returns its event.

    Args:
        headers: The request's headers: a mapping, or anything with ``items()``; names in any case.
        body: The request's body exactly as received (bytes, or text that is encoded as UTF-8): a body parsed and
            serialized again no longer matches its signature.
        secret: The endpoint's signing secret (``whsec_...``). During a rotation onbehalf signs with both the old and
            the new secret, so a receiver that has either one accepts the delivery.
        tolerance: How many seconds the ``webhook-timestamp`` may be away from ``now``, either way.
        now: The time to compare with (Unix seconds or an aware datetime); the clock when ``None``. For tests.

    Raises:
        WebhookVerificationError: a header is missing, the timestamp is not Unix seconds or too old or too new, no
            signature matches, or the body is not an event. Answer 400 and use nothing of the request.
        ValueError: ``secret`` is not a ``whsec_`` secret (a mistake in the receiver's configuration).
    """
    key = _key(secret)
    msg_id, timestamp, signatures = _headers(headers)
    seconds = _timestamp(timestamp)
    _check_age(seconds, _now(now), tolerance)
    payload = body.encode() if isinstance(body, str) else bytes(body)
    expected = _digest(key, msg_id, seconds, payload)
    if not any(hmac.compare_digest(expected, given) for given in _signatures(signatures)):
        raise WebhookVerificationError(
            "No signature of the webhook matches the secret: the secret is not this endpoint's (or was rotated "
            "away), or the id, timestamp or body changed on the way."
        )
    return _event(payload)


def sign_webhook(secret: str, msg_id: str, timestamp: int | datetime, body: bytes | str) -> str:
    """One ``v1,<base64>`` signature, as onbehalf puts in ``webhook-signature``: for a receiver's own tests.

    ``timestamp`` is Unix seconds (a datetime is truncated to its second); ``body`` is signed as its UTF-8 bytes.
    """
    seconds = math.floor(timestamp.timestamp()) if isinstance(timestamp, datetime) else timestamp
    payload = body.encode() if isinstance(body, str) else bytes(body)
    return "v1," + base64.b64encode(_digest(_key(secret), msg_id, seconds, payload)).decode("ascii")


# -- the steps ------------------------------------------------------------------------------------------------------


def _key(secret: str) -> bytes:
    """The HMAC key of a secret: base64 after ``whsec_`` (unpadded base64 is accepted, as the reference does)."""
    if not isinstance(secret, str):
        raise TypeError("secret must be a str (whsec_...)")
    encoded = secret.removeprefix(_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        # Deliberately without the value.
        raise ValueError("the webhook secret must be whsec_ followed by base64 (as `onbehalf webhook add` printed it)")
    return key


def _headers(headers: HeaderItems) -> tuple[str, str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature``, names compared without case (as HTTP does);
    refuses the delivery naming every one that is missing or empty."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower() if isinstance(name, str) else ""
        if lowered in _HEADERS and lowered not in found and isinstance(value, str) and value.strip():
            found[lowered] = value.strip()
    missing = [name for name in _HEADERS if name not in found]
    if missing:
        raise WebhookVerificationError(
            f"The webhook lacks the header{'s' if len(missing) > 1 else ''} {', '.join(missing)}: is it from onbehalf?"
        )
    return found["webhook-id"], found["webhook-timestamp"], found["webhook-signature"]


def _timestamp(value: str) -> int:
    if not _TIMESTAMP.fullmatch(value):
        raise WebhookVerificationError("The webhook-timestamp header is not a Unix time in whole seconds.")
    return int(value)


def _now(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be a timezone-aware datetime (or Unix seconds)")
        return now.timestamp()
    return float(now)


def _check_age(seconds: int, now: float, tolerance: int) -> None:
    """Refuses a timestamp more than ``tolerance`` seconds away from ``now``: older could be a captured request
    sent again, newer means a clock is wrong."""
    age = now - seconds
    if age > tolerance:
        raise WebhookVerificationError(
            f"The webhook's timestamp is {age:.0f} s old, more than the {tolerance} s allowed: a replayed request, "
            f"or this host's clock is wrong."
        )
    if -age > tolerance:
        raise WebhookVerificationError(
            f"The webhook's timestamp is {-age:.0f} s in the future, more than the {tolerance} s allowed: this "
            f"host's clock (or onbehalf's) is wrong."
        )


def _digest(key: bytes, msg_id: str, seconds: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{seconds}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def _signatures(header: str) -> list[bytes]:
    """The ``v1`` signatures of a ``webhook-signature`` header; other versions and unreadable ones are skipped."""
    found = []
    for item in header.split():
        version, _, encoded = item.partition(",")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def _event(body: bytes) -> WebhookEvent:
    """The event of a body whose signature matched."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise WebhookVerificationError("The webhook's signature matches but its body is not JSON.") from None
    try:
        return WebhookEvent._read(_Reader(document, "", what="The webhook's body (signed correctly)"))
    except ProtocolError as error:
        raise WebhookVerificationError(error.message) from None
