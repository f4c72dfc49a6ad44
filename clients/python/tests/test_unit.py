"""Unit tests of the client with httpx.MockTransport: what it sends, how it reads answers, how errors map."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import onbehalf
from onbehalf import (
    Account,
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
    Onbehalf,
    OnbehalfError,
    ProtocolError,
    ProviderNotAllowed,
    ProviderUnavailable,
    RetryLater,
    Unauthorized,
    Upstream,
    UserDisabled,
    UserNotFound,
)

KEY = "obk_unit-test-secret-0123456789abcdef"
BASE = "http://onbehalf.test"
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
    "status": "active",
    "status_reason": None,
    "resource_servers": [
        {
            "resource_server": "transfer.api.globus.org",
            "scopes": [
                {"scope": "urn:transfer:all", "description": "Move your data", "granted": True, "new": 1},
                {"scope": "urn:transfer:more", "description": "More", "granted": False},
            ],
            "has_token": True,
            "expires_at": T0 + 3_600_000,
            "has_refresh_token": True,
            "a_newer_field": {"nested": True},
        }
    ],
    "created_at": T0,
    "last_refreshed_at": None,
    "last_used_at": T0 + 1000,
    "a_field_from_the_future": [1, 2, 3],
}

Handler = Callable[[httpx.Request], httpx.Response]


class Server:
    """A MockTransport that records requests and answers with one handler."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.handler: Handler = lambda request: httpx.Response(500)

    def answer(self, status: int = 200, body: Any = None, **kwargs: Any) -> None:
        self.handler = lambda request: httpx.Response(status, json=body, **kwargs)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def last_json(self) -> Any:
        return json.loads(self.last.content)


@pytest.fixture
def server() -> Server:
    return Server()


@pytest.fixture
def client(server: Server) -> Iterator[Onbehalf]:
    with Onbehalf(BASE, KEY, transport=httpx.MockTransport(server)) as ob:
        yield ob


def account_object() -> Account:
    with Onbehalf(BASE, KEY, transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"accounts": [ACCOUNT]}))) as ob:
        return ob.accounts(user_id=1)[0]


# -- requests and parsing -------------------------------------------------------------------------------------------


def test_accounts_by_external_id_sends_the_key_and_reads_every_field(client: Onbehalf, server: Server) -> None:
    server.answer(200, {"user": USER, "accounts": [ACCOUNT]})
    accounts = client.accounts("u-42")
    request = server.last
    assert request.method == "GET"
    assert request.url.path == "/api/v1/accounts"
    assert dict(request.url.params) == {"external_id": "u-42"}
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["accept"] == "application/json"
    [account] = accounts
    assert account.id == "acc-1"
    assert account.provider_id == "demo"
    assert account.provider_name == "Demo Globus"
    assert account.label == "ada@demo.globus.org"
    assert account.is_active and not account.needs_reconnect
    assert account.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert account.last_refreshed_at is None
    assert account.last_used_at == datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    [rs] = account.resource_servers
    assert rs.resource_server == "transfer.api.globus.org"
    assert rs.has_token and rs.has_refresh_token
    assert rs.expires_at == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert [s.scope for s in rs.scopes] == ["urn:transfer:all", "urn:transfer:more"]
    assert account.missing_scopes == ("urn:transfer:more",)
    assert account.needs_consent, "a required scope is not granted"
    assert account.resource_server("transfer.api.globus.org") is rs
    assert account.resource_server("nope") is None
    assert account.raw["a_field_from_the_future"] == [1, 2, 3]
    assert rs.raw["a_newer_field"] == {"nested": True}


def test_accounts_by_user_id_or_email_use_the_user_parameter(client: Onbehalf, server: Server) -> None:
    server.answer(200, {"user": USER, "accounts": []})
    assert client.accounts(user_id=7) == []
    assert dict(server.last.url.params) == {"user": "7"}
    client.accounts(email="ada@example.org")
    assert dict(server.last.url.params) == {"user": "ada@example.org"}


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"external_id": "u", "user_id": 1}, {"user_id": 1, "email": "a@b"}, {"external_id": "u", "email": "a@b"}],
)
def test_accounts_needs_exactly_one_way_to_name_the_user(client: Onbehalf, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        client.accounts(**kwargs)


def test_account_status_helpers() -> None:
    base = account_object()
    reconnect = Account(**{**_fields(base), "status": "needs_reconnect"})
    consent = Account(**{**_fields(base), "status": "needs_consent", "resource_servers": ()})
    future = Account(**{**_fields(base), "status": "some_new_status", "resource_servers": ()})
    assert reconnect.needs_reconnect and not reconnect.is_active
    assert consent.needs_consent and consent.missing_scopes == ()
    assert not future.needs_reconnect and not future.needs_consent and not future.is_active


def _fields(account: Account) -> dict[str, Any]:
    return {name: getattr(account, name) for name in Account.__dataclass_fields__}


def test_models_are_frozen_and_hashable() -> None:
    account = account_object()
    with pytest.raises(AttributeError):
        account.status = "revoked"  # type: ignore[misc]
    assert hash(account) == hash(account_object())
    assert account == account_object()


def test_token_posts_the_resource_server_and_hides_the_token_in_repr(client: Onbehalf, server: Server) -> None:
    server.answer(
        200,
        {
            "access_token": "at-SECRET",
            "token_type": "Bearer",
            "expires_at": T0,
            "scopes": ["urn:transfer:all"],
            "resource_server": "transfer.api.globus.org",
            "account_id": "acc-1",
            "provider": "demo",
            "extra": "ignored",
        },
    )
    token = client.token(account_object(), "transfer.api.globus.org")
    assert server.last.method == "POST"
    assert server.last.url.path == "/api/v1/accounts/acc-1/token"
    assert server.last_json() == {"resource_server": "transfer.api.globus.org"}
    assert token.access_token == "at-SECRET"
    assert token.authorization == "Bearer at-SECRET"
    assert token.expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert token.scopes == ("urn:transfer:all",)
    assert (token.account_id, token.provider) == ("acc-1", "demo")
    assert "at-SECRET" not in repr(token) and "at-SECRET" not in str(token)


def test_token_without_expiry(client: Onbehalf, server: Server) -> None:
    server.answer(
        200,
        {"access_token": "x", "token_type": "Bearer", "expires_at": None, "scopes": [], "resource_server": "r",
         "account_id": "a", "provider": "p"},
    )
    assert client.token("a", "r").expires_at is None


def test_account_ids_are_escaped_as_one_path_segment(client: Onbehalf, server: Server) -> None:
    server.answer(200, {"account_id": "a/b", "provider": "p", "revoked": 0, "failed": 0, "revocation": "complete"})
    client.disconnect("a/b c?d")
    assert server.last.url.raw_path == b"/api/v1/accounts/a%2Fb%20c%3Fd"
    client.disconnect("..")
    assert server.last.url.raw_path == b"/api/v1/accounts/%2E%2E"


def test_base_url_path_prefix_is_kept() -> None:
    server = Server()
    server.answer(200, {"user": USER, "accounts": []})
    with Onbehalf("https://example.org/onbehalf/", KEY, transport=httpx.MockTransport(server)) as ob:
        ob.accounts("u")
    assert str(server.last.url) == "https://example.org/onbehalf/api/v1/accounts?external_id=u"


def test_run_action_sends_params_as_strings_and_returns_the_result(client: Onbehalf, server: Server) -> None:
    result = {"endpoints": [{"id": "e1"}], "offset": 0, "has_next_page": False}
    server.answer(200, {"action": "endpoint_search", "result": result, "later": 1})
    got = client.run_action(
        "acc-1", "endpoint_search", scope="all", q="lab", offset=25, recursive=True, resume=None, sync=False
    )
    assert got == result
    assert server.last.url.path == "/api/v1/accounts/acc-1/actions/endpoint_search"
    assert server.last_json() == {
        "params": {"scope": "all", "q": "lab", "offset": "25", "recursive": "true", "sync": "false"}
    }


def test_run_action_accepts_params_named_like_its_arguments(client: Onbehalf, server: Server) -> None:
    server.answer(200, {"action": "x", "result": None})
    assert client.run_action("acc-1", "x", account="p1", action="p2") is None
    assert server.last_json() == {"params": {"account": "p1", "action": "p2"}}


def test_run_action_rejects_parameter_values_that_are_not_scalars_or_names(client: Onbehalf) -> None:
    with pytest.raises(TypeError, match="'ids'"):
        client.run_action("acc-1", "x", ids={"a": 1})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'ids'"):
        client.run_action("acc-1", "x", ids=[1, 2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="line break"):
        client.run_action("acc-1", "transfer", items=["a", "b\nc"])


def test_a_list_of_names_is_sent_one_per_line(client: Onbehalf, server: Server) -> None:
    server.answer(200, {"action": "transfer", "result": {"task_id": "t"}})
    client.run_action("acc-1", "transfer", items=["run-001.h5", "calibration/"])
    assert server.last_json() == {"params": {"items": "run-001.h5\ncalibration/"}}


def test_iter_folder_pages_until_the_total(client: Onbehalf, server: Server) -> None:
    def page(names: list[str]) -> dict[str, Any]:
        entries = [{"name": n, "kind": "file"} for n in names]
        return {"action": "ls", "result": {"entries": entries, "total": 3, "offset": 0, "limit": 2}}

    pages = iter([page(["a", "b"]), page(["c"])])
    server.handler = lambda request: httpx.Response(200, json=next(pages))
    names = [e["name"] for e in client.iter_folder("acc-1", "ep", "/~/x/", page_size=2)]
    assert names == ["a", "b", "c"]
    assert server.last_json() == {
        "params": {"endpoint_id": "ep", "path": "/~/x/", "offset": "2", "limit": "2"}
    }


def test_connect_session_sends_only_what_is_given(client: Onbehalf, server: Server) -> None:
    server.answer(201, {"url": f"{BASE}/connect/tok", "expires_at": T0, "user": USER, "new": True})
    session = client.connect_session("u-42", return_to="http://platform/back", provider="demo")
    assert server.last.method == "POST"
    assert server.last.url.path == "/api/v1/connect_sessions"
    assert server.last_json() == {
        "user": {"external_id": "u-42"},
        "mode": "connect",
        "provider": "demo",
        "return_to": "http://platform/back",
    }
    assert session.url == f"{BASE}/connect/tok"
    assert session.expires_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert session.user.id == 7 and session.user.external_id == "u-42"
    client.connect_session(
        "u-42",
        return_to="http://platform/back",
        mode="manage",
        account=account_object(),
        email="ada@example.org",
        display_name="Ada",
    )
    assert server.last_json() == {
        "user": {"external_id": "u-42", "email": "ada@example.org", "display_name": "Ada"},
        "mode": "manage",
        "account": "acc-1",
        "return_to": "http://platform/back",
    }


def test_disconnect_deletes_and_reads_the_outcome(client: Onbehalf, server: Server) -> None:
    server.answer(
        200, {"account_id": "acc-1", "provider": "demo", "revoked": 2, "failed": 0, "revocation": "complete"}
    )
    done = client.disconnect(account_object())
    assert server.last.method == "DELETE"
    assert server.last.url.path == "/api/v1/accounts/acc-1"
    assert (done.account_id, done.provider, done.revoked, done.failed, done.revocation) == (
        "acc-1", "demo", 2, 0, "complete")


def event(id: int) -> dict[str, Any]:
    return {
        "id": id,
        "at": T0 + id,
        "action": "service_token_issued",
        "outcome": "success",
        "provider": "demo",
        "account_id": "acc-1",
        "summary": "A token was issued.",
        "whatever": "new",
    }


def test_events_pass_before_and_limit(client: Onbehalf, server: Server) -> None:
    server.answer(200, {"user": USER, "events": [event(9), event(8)], "next_before": 8})
    page = client.events("u/42", before=10, limit=2)
    assert server.last.url.raw_path.startswith(b"/api/v1/users/u%2F42/events?")
    assert dict(server.last.url.params) == {"before": "10", "limit": "2"}
    assert [e.id for e in page.events] == [9, 8]
    assert page.next_before == 8
    assert page.user.external_id == "u-42"
    first = page.events[0]
    assert first.at == datetime.fromtimestamp((T0 + 9) / 1000, tz=UTC)
    assert (first.action, first.outcome, first.provider, first.account_id) == (
        "service_token_issued", "success", "demo", "acc-1")
    client.events("u-42")
    assert dict(server.last.url.params) == {}


def test_iter_events_follows_next_before_to_the_end(client: Onbehalf, server: Server) -> None:
    pages = {
        None: {"user": USER, "events": [event(5), event(4)], "next_before": 4},
        "4": {"user": USER, "events": [event(3), event(2)], "next_before": 2},
        "2": {"user": USER, "events": [event(1)], "next_before": None},
    }
    server.handler = lambda request: httpx.Response(200, json=pages[request.url.params.get("before")])
    ids = [e.id for e in client.iter_events("u-42", page_size=2)]
    assert ids == [5, 4, 3, 2, 1]
    assert [r.url.params.get("limit") for r in server.requests] == ["2", "2", "2"]


def test_events_refuse_an_empty_external_id(client: Onbehalf) -> None:
    with pytest.raises(ValueError):
        client.events("")


# -- answers that cannot be read ------------------------------------------------------------------------------------


def test_a_success_answer_that_is_not_json_is_a_protocol_error(client: Onbehalf, server: Server) -> None:
    server.handler = lambda request: httpx.Response(200, text="<html>hello</html>", headers={"content-type": "text/html"})
    with pytest.raises(ProtocolError) as caught:
        client.accounts("u")
    assert caught.value.code == "invalid_response"
    assert caught.value.status == 200
    assert "not JSON" in caught.value.message


def test_a_missing_field_is_named(client: Onbehalf, server: Server) -> None:
    broken = {key: value for key, value in ACCOUNT.items() if key != "subject"}
    server.answer(200, {"user": USER, "accounts": [broken]})
    with pytest.raises(ProtocolError, match=r"accounts\[0\]\.subject should be a string") as caught:
        client.accounts("u")
    assert caught.value.status == 200


def test_a_wrongly_typed_token_field_does_not_show_its_value(client: Onbehalf, server: Server) -> None:
    server.answer(200, {"access_token": 12345678, "resource_server": "r", "account_id": "a", "provider": "p"})
    with pytest.raises(ProtocolError) as caught:
        client.token("a", "r")
    assert "12345678" not in str(caught.value)
    assert "access_token" in str(caught.value)


def test_run_action_without_result_is_a_protocol_error(client: Onbehalf, server: Server) -> None:
    server.answer(200, {"action": "x"})
    with pytest.raises(ProtocolError, match="result"):
        client.run_action("a", "x")


# -- error mapping --------------------------------------------------------------------------------------------------

ERRORS: list[tuple[str, int, type[OnbehalfError]]] = [
    ("unauthorized", 401, Unauthorized),
    ("bad_request", 400, BadRequest),
    ("invalid", 400, Invalid),
    ("provider_not_allowed", 403, ProviderNotAllowed),
    ("user_disabled", 403, UserDisabled),
    ("not_found", 404, NotFound),
    ("user_not_found", 404, UserNotFound),
    ("email_taken", 409, EmailTaken),
    ("needs_reconnect", 409, NeedsReconnect),
    ("needs_consent", 409, NeedsConsent),
    ("provider_unavailable", 503, ProviderUnavailable),
    ("busy", 503, Busy),
    ("upstream", 502, Upstream),
    ("failed", 502, Failed),
    ("internal", 500, InternalError),
]


@pytest.mark.parametrize(("code", "status", "cls"), ERRORS, ids=[code for code, _, _ in ERRORS])
def test_every_error_code_maps_to_its_class(
    client: Onbehalf, server: Server, code: str, status: int, cls: type[OnbehalfError]
) -> None:
    body = {"error": code, "message": f"It went wrong: {code}.", "unknown_extra": [1]}
    server.answer(status, body)
    with pytest.raises(cls) as caught:
        client.token("acc-1", "rs")
    error = caught.value
    assert type(error) is cls
    assert isinstance(error, OnbehalfError)
    assert error.code == code
    assert error.status == status
    assert error.message == f"It went wrong: {code}."
    assert error.body == body
    assert cls.api_code == code
    assert onbehalf.error_class(code) is cls
    assert f"It went wrong: {code}." in str(error) and str(status) in str(error)
    assert repr(error).startswith(f"{cls.__name__}(code={code!r}, status={status}")


def test_every_api_error_class_is_exported() -> None:
    for _, _, cls in ERRORS:
        assert getattr(onbehalf, cls.__name__) is cls
    assert issubclass(ConnectionFailed, OnbehalfError)
    assert issubclass(ProviderUnavailable, RetryLater) and issubclass(Busy, RetryLater)


def test_invalid_names_its_field(client: Onbehalf, server: Server) -> None:
    server.answer(400, {"error": "invalid", "message": "Not under the key's return URLs.", "field": "return_to"})
    with pytest.raises(Invalid) as caught:
        client.connect_session("u", return_to="http://elsewhere/")
    assert caught.value.field == "return_to"
    assert "field='return_to'" in repr(caught.value)


def test_email_taken_names_its_field(client: Onbehalf, server: Server) -> None:
    server.answer(409, {"error": "email_taken", "message": "Taken.", "field": "user.email"})
    with pytest.raises(EmailTaken) as caught:
        client.connect_session("u", return_to="http://p/", email="a@b")
    assert caught.value.field == "user.email"


def test_needs_reconnect_carries_the_account_and_provider_of_the_call(client: Onbehalf, server: Server) -> None:
    server.answer(409, {"error": "needs_reconnect", "message": "Sign in again.", "transfer": "sub-1"})
    with pytest.raises(NeedsReconnect) as caught:
        client.run_action(account_object(), "transfer")
    assert (caught.value.account, caught.value.provider, caught.value.transfer) == ("acc-1", "demo", "sub-1")
    server.answer(409, {"error": "needs_reconnect", "message": "Sign in again."})
    with pytest.raises(NeedsReconnect) as caught:
        client.token("acc-2", "rs")
    assert (caught.value.account, caught.value.provider, caught.value.transfer) == ("acc-2", None, None)


def test_needs_consent_carries_scopes_transfer_and_account(client: Onbehalf, server: Server) -> None:
    server.answer(
        409, {"error": "needs_consent", "message": "Consent.", "scopes": ["s1", "s2"], "transfer": "sub-9"}
    )
    with pytest.raises(NeedsConsent) as caught:
        client.run_action("acc-1", "transfer", resume="x")
    error = caught.value
    assert error.scopes == ("s1", "s2")
    assert error.transfer == "sub-9"
    assert error.account == "acc-1"
    server.answer(409, {"error": "needs_consent", "message": "Consent."})
    with pytest.raises(NeedsConsent) as caught:
        client.token("acc-1", "rs")
    assert caught.value.scopes == () and caught.value.transfer is None


def test_retry_after_comes_from_the_body_else_the_header(client: Onbehalf, server: Server) -> None:
    server.answer(503, {"error": "provider_unavailable", "message": "Later.", "retry_after_seconds": 42},
                  headers={"Retry-After": "7"})
    with pytest.raises(ProviderUnavailable) as caught:
        client.token("a", "rs")
    assert caught.value.retry_after == 42
    server.answer(503, {"error": "busy", "message": "Busy."}, headers={"Retry-After": "3"})
    with pytest.raises(Busy) as busy:
        client.token("a", "rs")
    assert busy.value.retry_after == 3
    server.answer(503, {"error": "busy", "message": "Busy."})
    with pytest.raises(Busy) as busy:
        client.token("a", "rs")
    assert busy.value.retry_after is None


def test_upstream_carries_the_providers_status(client: Onbehalf, server: Server) -> None:
    server.answer(502, {"error": "upstream", "message": "Refused.", "upstream_status": 403})
    with pytest.raises(Upstream) as caught:
        client.run_action("a", "endpoint", endpoint_id="x")
    assert caught.value.upstream_status == 403


def test_an_unknown_code_is_the_base_class(client: Onbehalf, server: Server) -> None:
    server.answer(418, {"error": "teapot_mode", "message": "I am a teapot."})
    with pytest.raises(OnbehalfError) as caught:
        client.accounts("u")
    assert type(caught.value) is OnbehalfError
    assert (caught.value.code, caught.value.status, caught.value.message) == ("teapot_mode", 418, "I am a teapot.")


def test_an_error_without_a_message_still_reads(client: Onbehalf, server: Server) -> None:
    server.answer(404, {"error": "not_found"})
    with pytest.raises(NotFound) as caught:
        client.disconnect("x")
    assert "not_found" in caught.value.message


def test_a_proxys_html_502_is_an_http_error_with_a_clear_message(client: Onbehalf, server: Server) -> None:
    html = "<html><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
    server.handler = lambda request: httpx.Response(502, text=html, headers={"content-type": "text/html"})
    with pytest.raises(OnbehalfError) as caught:
        client.accounts("u")
    error = caught.value
    assert type(error) is OnbehalfError
    assert error.code == "http_502"
    assert error.status == 502
    assert error.body == html
    assert "HTTP 502" in error.message and "text/html" in error.message
    assert "not an onbehalf API error" in error.message
    assert "GET /api/v1/accounts" in error.message


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(404),
        httpx.Response(500, json={"detail": "something else"}),
        httpx.Response(401, json=["not", "an", "object"]),
        httpx.Response(307, headers={"location": "http://evil.test/"}),
    ],
    ids=["empty", "json-without-error", "json-list", "redirect"],
)
def test_other_non_api_answers_are_http_errors(client: Onbehalf, server: Server, response: httpx.Response) -> None:
    server.handler = lambda request: response
    with pytest.raises(OnbehalfError) as caught:
        client.accounts("u")
    assert type(caught.value) is OnbehalfError
    assert caught.value.code == f"http_{response.status_code}"
    assert len(server.requests) == 1, "redirects are not followed"


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("All connection attempts failed"), httpx.ReadTimeout("timed out"),
     httpx.RemoteProtocolError("Server disconnected without sending a response.")],
    ids=["connect", "timeout", "disconnect"],
)
def test_transport_failures_become_connection_failed(client: Onbehalf, server: Server, failure: httpx.HTTPError) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise failure

    server.handler = fail
    with pytest.raises(ConnectionFailed) as caught:
        client.token("acc-1", "rs")
    error = caught.value
    assert error.code == "connection_failed"
    assert error.status is None
    assert error.error is failure
    assert error.__cause__ is failure
    assert type(failure).__name__ in error.message
    assert "/api/v1/accounts/acc-1/token" in error.message
    assert KEY not in str(error) and KEY not in repr(error)


def test_a_real_connection_refusal_is_connection_failed() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Onbehalf(f"http://127.0.0.1:{port}", KEY, timeout=5) as ob, pytest.raises(ConnectionFailed) as caught:
        ob.accounts("u")
    assert isinstance(caught.value.error, httpx.ConnectError)
    assert KEY not in str(caught.value) and KEY not in repr(caught.value)


# -- the key stays secret -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "status", "cls"), ERRORS, ids=[code for code, _, _ in ERRORS])
def test_the_key_is_not_in_errors_even_when_the_server_echoes_it(
    client: Onbehalf, server: Server, code: str, status: int, cls: type[OnbehalfError]
) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        header = request.headers["authorization"]
        return httpx.Response(
            status,
            json={"error": code, "message": f"Bad header {header}", "field": header, "scopes": [header],
                  "transfer": header},
        )

    server.handler = echo
    with pytest.raises(cls) as caught:
        client.token(account_object(), "rs")
    error = caught.value
    for shown in (str(error), repr(error), error.message, json.dumps(error.body), repr(error.args), repr(vars(error))):
        assert KEY not in shown
    assert "[redacted]" in error.message


def test_the_key_is_not_in_a_non_json_error_that_echoes_it(client: Onbehalf, server: Server) -> None:
    server.handler = lambda request: httpx.Response(502, text=f"<pre>{request.headers['authorization']}</pre>")
    with pytest.raises(OnbehalfError) as caught:
        client.accounts("u")
    assert KEY not in str(caught.value.body) and KEY not in repr(caught.value)


def test_the_key_is_not_in_the_clients_repr_or_a_bad_key_error() -> None:
    with Onbehalf(BASE, KEY, transport=httpx.MockTransport(lambda r: httpx.Response(200))) as ob:
        assert KEY not in repr(ob) and KEY not in str(ob)
    bad = "obk_bad key\nwith newline"
    with pytest.raises(ValueError) as caught:
        Onbehalf(BASE, bad)
    assert bad not in str(caught.value) and "obk_bad" not in str(caught.value)
    with pytest.raises(ValueError):
        Onbehalf(BASE, "")


def test_errors_pickle_with_their_attributes() -> None:
    error = NeedsConsent("needs_consent", "Consent.", 409, {"error": "needs_consent"}, scopes=["s"], account="a")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is NeedsConsent
    assert (copy.code, copy.status, copy.scopes, copy.account) == ("needs_consent", 409, ("s",), "a")


# -- lifecycle ------------------------------------------------------------------------------------------------------


def test_context_manager_closes_and_close_is_idempotent() -> None:
    ob = Onbehalf(BASE, KEY, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    with ob as same:
        assert same is ob
    assert ob._http.is_closed
    ob.close()


def test_base_url_must_be_http() -> None:
    with pytest.raises(ValueError, match="base_url"):
        Onbehalf("onbehalf.example.org", KEY)


def test_account_arguments_must_be_an_account_or_an_id(client: Onbehalf) -> None:
    with pytest.raises(TypeError):
        client.token("", "rs")
    with pytest.raises(TypeError):
        client.token(42, "rs")  # type: ignore[arg-type]
