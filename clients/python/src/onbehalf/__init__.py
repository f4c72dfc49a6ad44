"""Python client of onbehalf's service API: a user's linked accounts at research platforms, fresh access tokens,
and actions taken on the user's behalf, from a platform's backend.

>>> from onbehalf import Onbehalf, NeedsReconnect
>>> with Onbehalf("http://127.0.0.1:3000", "obk_...") as ob:  # doctest: +SKIP
...     account = ob.accounts("u-42")[0]
...     token = ob.token(account, "transfer.api.globus.org")

A webhook receiver checks each delivery with :func:`verify_webhook` (the endpoint's ``whsec_...`` secret).
"""

from ._version import __version__
from .client import DEFAULT_TIMEOUT, Onbehalf
from .errors import (
    BadRequest,
    Busy,
    ConnectionFailed,
    EmailTaken,
    Failed,
    InternalError,
    Invalid,
    NeedsConsent,
    NeedsReconnect,
    NotFound,
    OnbehalfError,
    ProtocolError,
    ProviderNotAllowed,
    ProviderUnavailable,
    RetryLater,
    Unauthorized,
    Upstream,
    UserDisabled,
    UserNotFound,
    error_class,
)
from .models import Account, ConnectSession, Disconnected, Event, EventPage, ResourceServer, Scope, Token, User
from .webhooks import (
    DEFAULT_WEBHOOK_TOLERANCE,
    WebhookEvent,
    WebhookVerificationError,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_WEBHOOK_TOLERANCE",
    "Account",
    "BadRequest",
    "Busy",
    "ConnectSession",
    "ConnectionFailed",
    "Disconnected",
    "EmailTaken",
    "Event",
    "EventPage",
    "Failed",
    "InternalError",
    "Invalid",
    "NeedsConsent",
    "NeedsReconnect",
    "NotFound",
    "Onbehalf",
    "OnbehalfError",
    "ProtocolError",
    "ProviderNotAllowed",
    "ProviderUnavailable",
    "ResourceServer",
    "RetryLater",
    "Scope",
    "Token",
    "Unauthorized",
    "Upstream",
    "User",
    "UserDisabled",
    "UserNotFound",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
    "error_class",
    "sign_webhook",
    "verify_webhook",
]
