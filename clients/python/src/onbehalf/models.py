"""Typed results of the service API: frozen dataclasses read from its JSON answers.

Reading is forward compatible: fields this client does not know are ignored (and kept in each object's ``raw``
mapping), and a status or outcome value it does not know is kept as a string. A field it needs that is missing or
of the wrong type raises :class:`~onbehalf.errors.ProtocolError` naming the field (never its value: a value may be a
token). Times (Unix milliseconds on the wire) become timezone-aware UTC :class:`~datetime.datetime` values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from .errors import ProtocolError

__all__ = [
    "Account",
    "ConnectSession",
    "Disconnected",
    "Event",
    "EventPage",
    "ResourceServer",
    "Scope",
    "Token",
    "User",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _no_fields() -> Mapping[str, Any]:
    return _EMPTY


class _Reader:
    """Typed access to one JSON object of an answer; errors name the path of the field (``accounts[0].id``)."""

    def __init__(self, value: Any, where: str, status: int | None = None, *, what: str = "The server's answer") -> None:
        self.where = where
        #: The HTTP status of the answer, for the errors.
        self.status = status
        #: What is being read, for the errors (a webhook's body is not an answer).
        self.what = what
        if not isinstance(value, Mapping):
            raise self._invalid(where, "an object")
        self.data: Mapping[str, Any] = value

    def _invalid(self, path: str, expected: str) -> ProtocolError:
        return ProtocolError(
            "invalid_response",
            f"{self.what} cannot be read: {path or 'the body'} should be {expected}.",
            self.status,
        )

    def _path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def raw(self) -> Mapping[str, Any]:
        return MappingProxyType(dict(self.data))

    def text(self, key: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str):
            raise self._invalid(self._path(key), "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._invalid(self._path(key), "a string or null")
        return value

    def integer(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._invalid(self._path(key), "an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        if self.data.get(key) is None:
            return None
        return self.integer(key)

    def flag(self, key: str, default: bool | None = None) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._invalid(self._path(key), "a boolean")
        return value

    def time(self, key: str) -> datetime:
        return _from_ms(self.integer(key))

    def opt_time(self, key: str) -> datetime | None:
        millis = self.opt_integer(key)
        return None if millis is None else _from_ms(millis)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._invalid(self._path(key), "a list of strings")
        return tuple(value)

    def objects(self, key: str) -> list[_Reader]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._invalid(self._path(key), "a list")
        return [
            _Reader(item, f"{self._path(key)}[{at}]", self.status, what=self.what) for at, item in enumerate(value)
        ]

    def child(self, key: str) -> _Reader:
        return _Reader(self.data.get(key), self._path(key), self.status, what=self.what)


def _from_ms(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, tz=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A platform user as onbehalf names them."""

    #: onbehalf's numeric id.
    id: int
    #: The platform's own id for the user, or ``None`` for a user created otherwise (e.g. who signed up).
    external_id: str | None
    email: str | None
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @classmethod
    def _read(cls, r: _Reader) -> User:
        return cls(id=r.integer("id"), external_id=r.opt_text("external_id"), email=r.opt_text("email"), raw=r.raw())


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """One scope the site requires or holds at a resource server."""

    scope: str
    #: What it lets onbehalf do, in words.
    description: str
    granted: bool
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @classmethod
    def _read(cls, r: _Reader) -> Scope:
        return cls(
            scope=r.text("scope"),
            description=r.opt_text("description") or "",
            granted=r.flag("granted"),
            raw=r.raw(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceServer:
    """Consent and token status of a linked account at one resource server (e.g. ``transfer.api.globus.org``)."""

    resource_server: str
    scopes: tuple[Scope, ...]
    #: Whether onbehalf holds a token for this resource server.
    has_token: bool
    #: When the access token expires; ``None`` when unknown or no token is held.
    expires_at: datetime | None
    has_refresh_token: bool
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @property
    def missing_scopes(self) -> tuple[str, ...]:
        """The scopes required here that the user has not granted."""
        return tuple(s.scope for s in self.scopes if not s.granted)

    @classmethod
    def _read(cls, r: _Reader) -> ResourceServer:
        return cls(
            resource_server=r.text("resource_server"),
            scopes=tuple(Scope._read(s) for s in r.objects("scopes")),
            has_token=r.flag("has_token", False),
            expires_at=r.opt_time("expires_at"),
            has_refresh_token=r.flag("has_refresh_token", False),
            raw=r.raw(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A user's linked account at a provider. Never holds a token: ask :meth:`Onbehalf.token` for one."""

    #: The account's id: what every account argument of the client takes.
    id: str
    provider_id: str
    provider_name: str
    #: The user's id at the provider.
    subject: str
    username: str | None
    display_name: str | None
    email: str | None
    #: ``active``, ``needs_reconnect``, ``needs_consent``, ``revoked`` or ``error`` (or a newer value).
    status: str
    #: Why the status is not ``active``, in words.
    status_reason: str | None
    resource_servers: tuple[ResourceServer, ...]
    created_at: datetime
    last_refreshed_at: datetime | None
    last_used_at: datetime | None
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @property
    def is_active(self) -> bool:
        """Whether onbehalf can act with the account now."""
        return self.status == "active"

    @property
    def needs_reconnect(self) -> bool:
        """Whether the user must sign in at the provider again (``connect_session(..., account=acct.id)``)."""
        return self.status == "needs_reconnect"

    @property
    def needs_consent(self) -> bool:
        """Whether the user must grant access: the status says so, or a required scope is not granted."""
        return self.status == "needs_consent" or bool(self.missing_scopes)

    @property
    def missing_scopes(self) -> tuple[str, ...]:
        """The required scopes not granted, over all resource servers."""
        return tuple(scope for rs in self.resource_servers for scope in rs.missing_scopes)

    @property
    def label(self) -> str:
        """The best name to show: username, else email, else display name, else the subject."""
        return self.username or self.email or self.display_name or self.subject

    def resource_server(self, name: str) -> ResourceServer | None:
        """The status at the resource server ``name``, or ``None``."""
        return next((rs for rs in self.resource_servers if rs.resource_server == name), None)

    @classmethod
    def _read(cls, r: _Reader) -> Account:
        return cls(
            id=r.text("id"),
            provider_id=r.text("provider_id"),
            provider_name=r.opt_text("provider_name") or r.text("provider_id"),
            subject=r.text("subject"),
            username=r.opt_text("username"),
            display_name=r.opt_text("display_name"),
            email=r.opt_text("email"),
            status=r.text("status"),
            status_reason=r.opt_text("status_reason"),
            resource_servers=tuple(ResourceServer._read(rs) for rs in r.objects("resource_servers")),
            created_at=r.time("created_at"),
            last_refreshed_at=r.opt_time("last_refreshed_at"),
            last_used_at=r.opt_time("last_used_at"),
            raw=r.raw(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Token:
    """A valid access token for one account and resource server. Its value is left out of ``repr()``."""

    access_token: str = field(repr=False)
    #: Always ``Bearer``.
    token_type: str
    #: When it expires; ``None`` when the provider gave no lifetime.
    expires_at: datetime | None
    scopes: tuple[str, ...]
    resource_server: str
    account_id: str
    provider: str
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @property
    def authorization(self) -> str:
        """The value of an ``Authorization`` header carrying the token."""
        return f"{self.token_type} {self.access_token}"

    @classmethod
    def _read(cls, r: _Reader) -> Token:
        return cls(
            access_token=r.text("access_token"),
            token_type=r.opt_text("token_type") or "Bearer",
            expires_at=r.opt_time("expires_at"),
            scopes=r.texts("scopes"),
            resource_server=r.text("resource_server"),
            account_id=r.text("account_id"),
            provider=r.text("provider"),
            raw=r.raw(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectSession:
    """A single-use link (valid about ten minutes) to send the user's browser to."""

    url: str
    expires_at: datetime
    user: User
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @classmethod
    def _read(cls, r: _Reader) -> ConnectSession:
        return cls(url=r.text("url"), expires_at=r.time("expires_at"), user=User._read(r.child("user")), raw=r.raw())


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnected:
    """What disconnecting an account did."""

    account_id: str
    provider: str
    #: Tokens the provider confirmed revoked.
    revoked: int
    #: Tokens whose revocation failed (onbehalf retries them).
    failed: int
    #: ``complete``, ``pending`` (some revocations will be retried) or ``not_offered`` (the provider has no
    #: revocation endpoint).
    revocation: str
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @classmethod
    def _read(cls, r: _Reader) -> Disconnected:
        return cls(
            account_id=r.text("account_id"),
            provider=r.text("provider"),
            revoked=r.integer("revoked"),
            failed=r.integer("failed"),
            revocation=r.text("revocation"),
            raw=r.raw(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One entry of a user's audit log."""

    id: int
    at: datetime
    #: What happened, in the past tense (``account_linked``, ``service_token_issued``, ...).
    action: str
    #: ``success``, ``failure`` or ``rejected`` (or a newer value).
    outcome: str
    provider: str | None
    account_id: str | None
    #: The event as a sentence.
    summary: str
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @classmethod
    def _read(cls, r: _Reader) -> Event:
        return cls(
            id=r.integer("id"),
            at=r.time("at"),
            action=r.text("action"),
            outcome=r.text("outcome"),
            provider=r.opt_text("provider"),
            account_id=r.opt_text("account_id"),
            summary=r.opt_text("summary") or "",
            raw=r.raw(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EventPage:
    """A page of a user's events, newest first. Pass ``next_before`` as ``before`` for the next page."""

    user: User
    events: tuple[Event, ...]
    #: ``None`` on the last page.
    next_before: int | None
    raw: Mapping[str, Any] = field(default_factory=_no_fields, repr=False, compare=False)

    @classmethod
    def _read(cls, r: _Reader) -> EventPage:
        return cls(
            user=User._read(r.child("user")),
            events=tuple(Event._read(e) for e in r.objects("events")),
            next_before=r.opt_integer("next_before"),
            raw=r.raw(),
        )
