"""The exceptions of the onbehalf client: one class per API error code, all subclasses of :class:`OnbehalfError`.

Every error answer of the service API is ``{"error": code, "message": str, ...}``; :func:`error_from_response` turns
it into the class of its code, with the extra fields (``field``, ``scopes``, ``retry_after_seconds``, ``transfer``,
``upstream_status``) as typed attributes. An unknown code becomes a plain :class:`OnbehalfError`, so a newer server
never breaks an older client.

Invariant: the API key is never part of an exception's message, ``str()`` or ``repr()``; the server's answers do not
contain it, and the client's own messages name the request by method and path only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

__all__ = [
    "BadRequest",
    "Busy",
    "ConnectionFailed",
    "EmailTaken",
    "Failed",
    "InternalError",
    "Invalid",
    "NeedsConsent",
    "NeedsReconnect",
    "NotFound",
    "OnbehalfError",
    "ProtocolError",
    "ProviderNotAllowed",
    "ProviderUnavailable",
    "RetryLater",
    "Unauthorized",
    "Upstream",
    "UserDisabled",
    "UserNotFound",
]

# How much of a non-JSON answer is kept in ``body``: enough to recognise a proxy's page, not a whole document.
_TEXT_KEPT = 2000


class OnbehalfError(Exception):
    """An onbehalf call that did not succeed.

    Attributes:
        code: The API's error code (``"needs_reconnect"``, ...), ``"http_<status>"`` when the answer was not an API
            error at all (e.g. a proxy's HTML page), ``"invalid_response"`` for a success answer that could not be
            read, ``"connection_failed"`` when no answer came.
        message: What happened, for a person (the server's sentence when it sent one).
        status: The HTTP status, or ``None`` when no answer came.
        body: The decoded JSON error body (a dict), the start of a non-JSON answer's text, or ``None``.
        transfer: The transfer submission a ``transfer`` call recorded before it failed, or ``None``. It is kept
            with its error: run ``transfer`` with ``resume=error.transfer`` once the cause is fixed, and at most one
            task starts (the submission keeps its Globus ``submission_id``).
    """

    #: The API error code this class stands for (``None`` for the base class and client-side errors).
    api_code: ClassVar[str | None] = None

    def __init__(self, code: str, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(code, message, status)
        self.code = code
        self.message = message
        self.status = status
        self.body = body
        self.transfer: str | None = _body_str(body, "transfer")

    def __str__(self) -> str:
        where = f"HTTP {self.status}, " if self.status is not None else ""
        return f"{self.message} ({where}{self.code})"

    def _details(self) -> dict[str, Any]:
        """Extra attributes shown by ``repr()``."""
        return {}

    def __repr__(self) -> str:
        parts = [f"code={self.code!r}", f"status={self.status!r}", f"message={self.message!r}"]
        details = self._details()
        if self.transfer is not None and "transfer" not in details:
            details["transfer"] = self.transfer
        parts += [f"{name}={value!r}" for name, value in details.items()]
        return f"{type(self).__name__}({', '.join(parts)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only extras would be lost by the default pickling of exceptions (which replays ``args``).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[OnbehalfError], state: dict[str, Any]) -> OnbehalfError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("code"), state.get("message"), state.get("status"))
    error.__dict__.update(state)
    return error


def _body_str(body: Any, key: str) -> str | None:
    value = body.get(key) if isinstance(body, Mapping) else None
    return value if isinstance(value, str) else None


def _body_int(body: Any, key: str) -> int | None:
    value = body.get(key) if isinstance(body, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _body_strs(body: Any, key: str) -> tuple[str, ...]:
    value = body.get(key) if isinstance(body, Mapping) else None
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(item for item in value if isinstance(item, str))
    return ()


class Unauthorized(OnbehalfError):
    """401 ``unauthorized``: the API key is missing, unknown or revoked."""

    api_code = "unauthorized"


class BadRequest(OnbehalfError):
    """400 ``bad_request``: the request itself is malformed (a bug in the caller or this client)."""

    api_code = "bad_request"


class Invalid(OnbehalfError):
    """400 ``invalid``: a parameter is wrong; ``field`` names it (e.g. ``"return_to"``, ``"user.email"``)."""

    api_code = "invalid"

    def __init__(
        self, code: str, message: str, status: int | None = None, body: Any = None, *, field: str | None = None
    ) -> None:
        super().__init__(code, message, status, body)
        self.field = field if field is not None else _body_str(body, "field")

    def _details(self) -> dict[str, Any]:
        return {"field": self.field}


class ProviderNotAllowed(OnbehalfError):
    """403 ``provider_not_allowed``: the API key may not be used with this provider."""

    api_code = "provider_not_allowed"


class UserDisabled(OnbehalfError):
    """403 ``user_disabled``: an administrator disabled the user; nothing is done on their behalf."""

    api_code = "user_disabled"


class NotFound(OnbehalfError):
    """404 ``not_found``: no such account (of this user), action, endpoint, task or API path."""

    api_code = "not_found"


class UserNotFound(OnbehalfError):
    """404 ``user_not_found``: no platform user has this external id (reads never create users)."""

    api_code = "user_not_found"


class EmailTaken(OnbehalfError):
    """409 ``email_taken``: another user has this email; ``field`` is ``"user.email"``."""

    api_code = "email_taken"

    def __init__(
        self, code: str, message: str, status: int | None = None, body: Any = None, *, field: str | None = None
    ) -> None:
        super().__init__(code, message, status, body)
        self.field = field if field is not None else _body_str(body, "field")

    def _details(self) -> dict[str, Any]:
        return {"field": self.field}


class NeedsReconnect(OnbehalfError):
    """409 ``needs_reconnect``: the user must sign in at the provider again.

    Send them there with ``client.connect_session(external_id, account=error.account, return_to=...)``.

    Attributes:
        account: The linked account's id (from the call that failed), or ``None``.
        provider: The account's provider id when the call knew it (an :class:`~onbehalf.Account` was passed).
        transfer: A transfer submission waiting for the fix: run ``transfer`` with ``resume=error.transfer`` after.
    """

    api_code = "needs_reconnect"

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        body: Any = None,
        *,
        account: str | None = None,
        provider: str | None = None,
        transfer: str | None = None,
    ) -> None:
        super().__init__(code, message, status, body)
        self.account = account
        self.provider = provider
        self.transfer = transfer if transfer is not None else _body_str(body, "transfer")

    def _details(self) -> dict[str, Any]:
        return {"account": self.account, "provider": self.provider, "transfer": self.transfer}


class NeedsConsent(OnbehalfError):
    """409 ``needs_consent``: the user must grant more access at the provider.

    Send them there with ``client.connect_session(external_id, account=error.account, return_to=...)``.

    Attributes:
        scopes: The scopes the provider asked for.
        transfer: A transfer submission waiting for the consent: run ``transfer`` with ``resume=error.transfer``.
        account: The linked account's id (from the call that failed), or ``None``.
        provider: The account's provider id when the call knew it.
    """

    api_code = "needs_consent"

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        body: Any = None,
        *,
        scopes: Sequence[str] | None = None,
        transfer: str | None = None,
        account: str | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(code, message, status, body)
        self.scopes = tuple(scopes) if scopes is not None else _body_strs(body, "scopes")
        self.transfer = transfer if transfer is not None else _body_str(body, "transfer")
        self.account = account
        self.provider = provider

    def _details(self) -> dict[str, Any]:
        return {
            "scopes": self.scopes,
            "transfer": self.transfer,
            "account": self.account,
            "provider": self.provider,
        }


class RetryLater(OnbehalfError):
    """Base of the 503s: ``retry_after`` is how many seconds to wait (from the body, else the ``Retry-After``
    header), or ``None``."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        body: Any = None,
        *,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(code, message, status, body)
        self.retry_after = retry_after if retry_after is not None else _body_int(body, "retry_after_seconds")

    def _details(self) -> dict[str, Any]:
        return {"retry_after": self.retry_after}


class ProviderUnavailable(RetryLater):
    """503 ``provider_unavailable``: the provider is not answering; do not retry before ``retry_after`` seconds."""

    api_code = "provider_unavailable"


class Busy(RetryLater):
    """503 ``busy``: onbehalf is busy with this account (e.g. a refresh in flight); retry after ``retry_after``."""

    api_code = "busy"


class Upstream(OnbehalfError):
    """502 ``upstream``: the provider refused the request; ``upstream_status`` is its HTTP status."""

    api_code = "upstream"

    def __init__(
        self,
        code: str,
        message: str,
        status: int | None = None,
        body: Any = None,
        *,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(code, message, status, body)
        self.upstream_status = upstream_status if upstream_status is not None else _body_int(body, "upstream_status")

    def _details(self) -> dict[str, Any]:
        return {"upstream_status": self.upstream_status}


class Failed(OnbehalfError):
    """502 ``failed``: the provider did not answer usefully."""

    api_code = "failed"


class InternalError(OnbehalfError):
    """500 ``internal``: something went wrong inside onbehalf (logged there)."""

    api_code = "internal"


class ProtocolError(OnbehalfError):
    """A success answer this client cannot read (code ``invalid_response``): not JSON, or a field is missing."""


class ConnectionFailed(OnbehalfError):
    """No answer: the connection failed, timed out or broke (code ``connection_failed``).

    ``error`` is httpx's exception (also ``__cause__``). Beware that ``error.request`` carries the request's headers,
    the API key among them: log the message, not the request.
    """

    def __init__(self, message: str, error: httpx.HTTPError) -> None:
        super().__init__("connection_failed", message, None, None)
        self.error = error

    def _details(self) -> dict[str, Any]:
        return {"error": type(self.error).__name__}


_BY_CODE: dict[str, type[OnbehalfError]] = {
    cls.api_code: cls
    for cls in (
        Unauthorized,
        BadRequest,
        Invalid,
        ProviderNotAllowed,
        UserDisabled,
        NotFound,
        UserNotFound,
        EmailTaken,
        NeedsReconnect,
        NeedsConsent,
        ProviderUnavailable,
        Busy,
        Upstream,
        Failed,
        InternalError,
    )
    if cls.api_code is not None
}


def error_class(code: str) -> type[OnbehalfError]:
    """The exception class of an API error code; :class:`OnbehalfError` for a code this client does not know."""
    return _BY_CODE.get(code, OnbehalfError)


def _retry_after_header(response: httpx.Response) -> int | None:
    value = response.headers.get("retry-after", "").strip()
    # Only the delay-seconds form (RFC 9110 §10.2.3); onbehalf never sends an HTTP date.
    return int(value) if value.isdigit() else None


def error_from_response(
    response: httpx.Response, *, account: str | None = None, provider: str | None = None
) -> OnbehalfError:
    """The exception for an error answer.

    ``account`` and ``provider`` are what the call knew about the account it named; they go into
    :class:`NeedsReconnect` and :class:`NeedsConsent` so the platform can send its user to fix it.
    """
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    code = _body_str(body, "error")
    if code is None:
        # Not an onbehalf API error: a proxy's page, a wrong base_url, a server from before the API.
        content_type = response.headers.get("content-type", "no content type").split(";")[0].strip()
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        message = (
            f"{response.request.method} {response.request.url.path} answered HTTP {status}{reason} with "
            f"{'a JSON body' if body is not None else content_type} that is not an onbehalf API error; is a proxy "
            f"in the way or the base_url wrong?"
        )
        if body is None:
            body = response.text[:_TEXT_KEPT]
        return OnbehalfError(f"http_{status}", message, status, body)
    message = _body_str(body, "message") or f"The server answered {code} without a message."
    cls = error_class(code)
    if cls is NeedsReconnect:
        return NeedsReconnect(code, message, status, body, account=account, provider=provider)
    if cls is NeedsConsent:
        return NeedsConsent(code, message, status, body, account=account, provider=provider)
    if issubclass(cls, RetryLater) and _body_int(body, "retry_after_seconds") is None:
        return cls(code, message, status, body, retry_after=_retry_after_header(response))
    return cls(code, message, status, body)
