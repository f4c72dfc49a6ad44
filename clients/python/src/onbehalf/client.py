"""The client of onbehalf's service API (``/api/v1``): one :class:`Onbehalf` per platform backend and API key.

It speaks JSON over one :class:`httpx.Client` (connection reuse, a timeout on every call) and turns every error
answer into the exception of its code (:mod:`onbehalf.errors`), every success answer into a frozen dataclass
(:mod:`onbehalf.models`).

Invariant: the API key lives only in the ``Authorization`` header of the underlying client; it is never part of a
message, a ``repr()`` or a URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from ._version import __version__
from .errors import ConnectionFailed, OnbehalfError, ProtocolError, error_from_response
from .models import Account, ConnectSession, Disconnected, Event, EventPage, Token, _Reader

__all__ = ["DEFAULT_TIMEOUT", "Onbehalf"]

#: Seconds for each call: a token call may wait for a refresh at the provider (onbehalf's own outbound timeout is
#: 15 s by default), so give it more than that.
DEFAULT_TIMEOUT = 30.0

# What an HTTP header value may hold (RFC 9110 §5.5, visible ASCII): anything else would make httpx raise an error
# that quotes the header, key included.
_KEY_SHAPE = re.compile(r"[\x21-\x7e]+")


def _account_id(account: Account | str) -> str:
    if isinstance(account, Account):
        return account.id
    if isinstance(account, str) and account:
        return account
    raise TypeError("account must be an Account or a non-empty account id string")


def _segment(value: str) -> str:
    """``value`` as one path segment: every reserved character escaped, and dot segments too, which URL
    normalisation would otherwise remove (RFC 3986 §5.2.4)."""
    escaped = quote(value, safe="")
    return escaped.replace(".", "%2E") if escaped in {".", ".."} else escaped


def _param(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    # A list of names (``transfer``'s ``items``): one per line, so no name may hold a line break.
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        if any("\n" in item or "\r" in item for item in value):
            raise ValueError(f"action parameter {name!r}: a name cannot contain a line break")
        return "\n".join(value)
    raise TypeError(
        f"action parameter {name!r} must be a str, int, float, bool or a list of str, not {type(value).__name__}"
    )


def _scrubbed(value: Any, key: str) -> Any:
    if isinstance(value, str):
        return value.replace(key, "[redacted]")
    if isinstance(value, (list, tuple)):
        return type(value)(_scrubbed(item, key) for item in value)
    if isinstance(value, dict):
        return {name: _scrubbed(item, key) for name, item in value.items()}
    return value


def _redact(error: OnbehalfError, key: str) -> None:
    """Blanks ``key`` out of everything the error shows (a broken proxy or server might echo the request)."""
    for name, value in list(vars(error).items()):
        if name != "error":  # httpx's own exception, kept as it is for the caller to inspect
            setattr(error, name, _scrubbed(value, key))
    error.args = tuple(_scrubbed(arg, key) for arg in error.args)


class Onbehalf:
    """A client of the onbehalf service API.

    >>> with Onbehalf("http://127.0.0.1:3000", "obk_...") as ob:  # doctest: +SKIP
    ...     accounts = ob.accounts("u-42")

    Args:
        base_url: Where onbehalf is reached, e.g. ``https://onbehalf.example.org`` (a path prefix is kept).
        api_key: A key from ``onbehalf apikey create`` (``obk_...``).
        timeout: Seconds per call (or an :class:`httpx.Timeout`).
        transport: An httpx transport to use instead of the network, e.g. :class:`httpx.MockTransport` in tests.

    Every method raises a subclass of :class:`~onbehalf.OnbehalfError` when the call does not succeed.
    Thread-safe as httpx's client is; use one instance per process and :meth:`close` it (or use ``with``).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not _KEY_SHAPE.fullmatch(api_key):
            # Deliberately without the value.
            raise ValueError("api_key must be a non-empty string of visible ASCII characters (obk_...)")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Accept": "application/json",
                "User-Agent": f"onbehalf-python/{__version__}",
            },
            timeout=timeout,
            transport=transport,
            # onbehalf's API never redirects; following one could send the key to another host.
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"Onbehalf(base_url={self.base_url!r})"

    # -- lifecycle --------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Closes the connections. The client cannot be used afterwards."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the API ----------------------------------------------------------------------------------------------------

    def accounts(
        self,
        external_id: str | None = None,
        *,
        user_id: int | None = None,
        email: str | None = None,
    ) -> list[Account]:
        """A user's linked accounts, at the providers the key may use.

        Name the user by exactly one of ``external_id`` (the platform's id), ``user_id`` (onbehalf's numeric id) or
        ``email``. Raises :class:`~onbehalf.UserNotFound` for an unknown user (reads never create users).
        """
        given = [value for value in (external_id, user_id, email) if value is not None]
        if len(given) != 1:
            raise ValueError("name the user by exactly one of external_id, user_id or email")
        params: dict[str, str]
        if external_id is not None:
            params = {"external_id": external_id}
        elif user_id is not None:
            if isinstance(user_id, bool) or not isinstance(user_id, int):
                raise TypeError("user_id must be an int")
            params = {"user": str(user_id)}
        else:
            params = {"user": str(email)}
        body = self._call("GET", "/api/v1/accounts", params=params)
        return [Account._read(r) for r in body.objects("accounts")]

    def token(self, account: Account | str, resource_server: str) -> Token:
        """A valid access token of ``account`` for ``resource_server`` (e.g. ``transfer.api.globus.org``),
        refreshed first when due.

        Raises :class:`~onbehalf.NeedsReconnect` / :class:`~onbehalf.NeedsConsent` when the user must act first,
        :class:`~onbehalf.NotFound` when the account (or a token for that resource server) does not exist.
        """
        account_id = _account_id(account)
        body = self._call(
            "POST",
            f"/api/v1/accounts/{_segment(account_id)}/token",
            json={"resource_server": resource_server},
            account=account,
        )
        return Token._read(body)

    def run_action(
        self, account: Account | str, action: str, /, **params: str | int | float | bool | list[str] | None
    ) -> Any:
        """Runs ``action`` at the account's provider as its user and returns the action's ``result`` JSON.

        Parameter values are sent as strings (``True``/``False`` as ``"true"``/``"false"``, a list of names one per
        line); ``None`` leaves a parameter out. Globus actions: ``endpoint_search`` (``scope``, ``q``, ``offset``),
        ``endpoint`` (``endpoint_id``), ``ls`` (``endpoint_id``, ``path``, ``sort``, ``order``, ``filter``,
        ``offset``, ``limit``; see :meth:`iter_folder`), ``tasks`` (``limit``), ``task`` (``task_id``),
        ``task_events`` (``task_id``, ``limit``), ``transfer`` (``source_endpoint``, ``source_path``,
        ``destination_endpoint``, ``destination_path``, ``label``, ``sync_level``, ``recursive``, ``items`` (names in
        the source folder, a folder's ending in ``/``), ``verify_checksum``, ``preserve_timestamp``,
        ``encrypt_data``, ``delete_destination_extra``, or ``resume``), ``cancel`` (``task_id``).
        """
        account_id = _account_id(account)
        sent = {name: _param(name, value) for name, value in params.items() if value is not None}
        body = self._call(
            "POST",
            f"/api/v1/accounts/{_segment(account_id)}/actions/{_segment(action)}",
            json={"params": sent},
            account=account,
        )
        if "result" not in body.data:
            raise ProtocolError(
                "invalid_response", "The server's answer cannot be read: result is missing.", body.status
            )
        return body.data["result"]

    def iter_folder(
        self,
        account: Account | str,
        endpoint_id: str,
        path: str = "/~/",
        *,
        sort: str | None = None,
        order: str | None = None,
        filter: str | None = None,
        page_size: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Every entry of a folder of a Globus collection (folders first), fetched a page (``ls``) at a time.

        Each entry is a dict with ``name``, ``kind`` (``dir``, ``file``, ``link``), ``size``, ``last_modified``,
        ``permissions`` and ``link_target``. ``filter`` keeps names containing it (``*`` and ``?`` are wildcards).
        """
        offset = 0
        while True:
            listing = self.run_action(
                account,
                "ls",
                endpoint_id=endpoint_id,
                path=path,
                sort=sort,
                order=order,
                filter=filter,
                offset=offset,
                limit=page_size,
            )
            entries = listing.get("entries") if isinstance(listing, dict) else None
            if not isinstance(entries, list):
                raise ProtocolError("invalid_response", "The server's answer cannot be read: entries is missing.", 200)
            yield from entries
            offset += len(entries)
            if not entries or offset >= int(listing.get("total", 0)):
                return

    def connect_session(
        self,
        external_id: str,
        *,
        return_to: str,
        mode: str = "connect",
        provider: str | None = None,
        account: Account | str | None = None,
        email: str | None = None,
        display_name: str | None = None,
    ) -> ConnectSession:
        """A single-use link (about ten minutes) to send the user's browser to, creating the user on first use.

        ``mode="connect"`` with ``provider`` goes straight to the provider's consent; with ``account`` it
        reconnects that account or asks for more consent; with neither it shows a chooser. ``mode="manage"``
        shows the user's linked accounts. The browser comes back to ``return_to`` (which must start with one of
        the key's return URL prefixes) with ``result=linked&account=<id>`` (or ``result=denied`` /
        ``result=failed&reason=...``) added in connect mode.
        """
        user: dict[str, str] = {"external_id": external_id}
        if email is not None:
            user["email"] = email
        if display_name is not None:
            user["display_name"] = display_name
        request: dict[str, Any] = {"user": user, "mode": mode, "return_to": return_to}
        if provider is not None:
            request["provider"] = provider
        if account is not None:
            request["account"] = _account_id(account)
        body = self._call("POST", "/api/v1/connect_sessions", json=request)
        return ConnectSession._read(body)

    def disconnect(self, account: Account | str) -> Disconnected:
        """Unlinks ``account`` and revokes its tokens at the provider. :class:`~onbehalf.NotFound` when gone."""
        account_id = _account_id(account)
        body = self._call("DELETE", f"/api/v1/accounts/{_segment(account_id)}", account=account)
        return Disconnected._read(body)

    def events(self, external_id: str, *, before: int | None = None, limit: int | None = None) -> EventPage:
        """A page of the user's audit events, newest first (``limit`` 1..100, default 25 on the server).

        Pass the page's ``next_before`` as ``before`` for the next one, or use :meth:`iter_events`.
        """
        if not external_id:
            raise ValueError("external_id must not be empty")
        params: dict[str, int] = {}
        if before is not None:
            params["before"] = before
        if limit is not None:
            params["limit"] = limit
        body = self._call("GET", f"/api/v1/users/{_segment(external_id)}/events", params=params)
        return EventPage._read(body)

    def iter_events(
        self, external_id: str, *, before: int | None = None, page_size: int | None = None
    ) -> Iterator[Event]:
        """Every event of the user, newest first, fetching pages of ``page_size`` as they are consumed."""
        while True:
            page = self.events(external_id, before=before, limit=page_size)
            yield from page.events
            if page.next_before is None or not page.events:
                return
            before = page.next_before

    # -- plumbing ---------------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        account: Account | str | None = None,
    ) -> _Reader:
        """Sends one request and returns its JSON object body; raises the error of an error answer, with the API key
        blanked out should the answer have echoed it."""
        try:
            return self._send(method, path, params=params, json=json, account=account)
        except OnbehalfError as error:
            _redact(error, self._key)
            raise

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        account: Account | str | None = None,
    ) -> _Reader:
        try:
            response = self._http.request(method, path, params=params, json=json)
        except httpx.HTTPError as error:
            # httpx's messages name the failure, never the headers.
            raise ConnectionFailed(
                f"{method} {path.split('?')[0]} got no answer from {self.base_url}: {type(error).__name__}: "
                f"{error or 'no details'}",
                error,
            ) from error
        if not response.is_success:
            account_id = provider = None
            if isinstance(account, Account):
                account_id, provider = account.id, account.provider_id
            elif isinstance(account, str):
                account_id = account
            raise error_from_response(response, account=account_id, provider=provider)
        try:
            body = response.json()
        except ValueError:
            content_type = response.headers.get("content-type", "no content type")
            raise ProtocolError(
                "invalid_response",
                f"{method} {response.request.url.path} answered HTTP {response.status_code} with {content_type}, "
                f"not JSON; is the base_url that of onbehalf?",
                response.status_code,
                response.text[:2000],
            ) from None
        return _Reader(body, "", response.status_code)
