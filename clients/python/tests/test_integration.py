"""The client against the real server (`target/release/onbehalf serve`, started by the `live` fixture in conftest.py)
and its demo provider: every method, every error the server can be made to answer, and the webhooks it sends (to a
receiver in the test, checked by `standardwebhooks` and by verify_webhook).

Each test that links an account uses a demo identity of its own (conftest.IDENTITIES), so that the demo's switches
(revoked grants, expired tokens, required consent) aimed at one identity or collection touch only that test.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
import standardwebhooks

from conftest import (
    CONFIG,
    IDENTITIES,
    RETURN_PREFIX,
    Delivery,
    LiveServer,
    Receiver,
    confirmation_page,
    demo_entry,
    forwarded_to,
    unique,
)
from onbehalf import (
    Account,
    BadRequest,
    Busy,
    ConnectionFailed,
    ConnectSession,
    EmailTaken,
    Failed,
    InternalError,
    Invalid,
    NeedsConsent,
    NeedsReconnect,
    NotFound,
    Onbehalf,
    ProtocolError,
    ProviderNotAllowed,
    ProviderUnavailable,
    RetryLater,
    Token,
    Unauthorized,
    Upstream,
    UserDisabled,
    UserNotFound,
    WebhookEvent,
    WebhookVerificationError,
    verify_webhook,
)

pytestmark = pytest.mark.integration

TRANSFER = "transfer.api.globus.org"


@dataclass(frozen=True)
class Person:
    external_id: str
    email: str
    account: Account


def linked_person(live: LiveServer, ob: Onbehalf, identity: str) -> Person:
    external_id = unique(identity)
    email = f"{external_id}@example.org"
    account_id = live.link(ob, external_id, identity, email=email, display_name=identity.title())
    [account] = [a for a in ob.accounts(external_id) if a.id == account_id]
    return Person(external_id, email, account)


@pytest.fixture(scope="module")
def ada(live: LiveServer, ob: Onbehalf) -> Person:
    """A platform user with the demo identity that owns collections, linked once for the module."""
    return linked_person(live, ob, "ada")


@pytest.fixture(scope="module")
def ada_endpoints(ob: Onbehalf, ada: Person) -> list[str]:
    result = ob.run_action(ada.account, "endpoint_search", scope="my-endpoints")
    ids = [endpoint["id"] for endpoint in result["endpoints"]]
    assert len(ids) >= 4, result
    return ids


class Recording(httpx.HTTPTransport):
    """The network, remembering each answer's status and headers."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[tuple[str, str, int, httpx.Headers]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.answers.append((request.method, request.url.path, response.status_code, response.headers))
        return response


def browser_get(url: str) -> httpx.Response:
    with httpx.Client(follow_redirects=False, timeout=30) as browser:
        return browser.get(url)


# -- the server and its keys ----------------------------------------------------------------------------------------


def test_openapi_documents_every_path_the_client_calls(live: LiveServer) -> None:
    document = httpx.get(f"{live.base_url}/api/v1/openapi.json", timeout=10).json()
    paths = {re.sub(r"\{[^}]+\}", "{}", path): set(ops) for path, ops in document["paths"].items()}
    expected = {
        "/api/v1/accounts": "get",
        "/api/v1/accounts/{}/token": "post",
        "/api/v1/accounts/{}/actions/{}": "post",
        "/api/v1/accounts/{}": "delete",
        "/api/v1/connect_sessions": "post",
        "/api/v1/users/{}/events": "get",
    }
    for path, method in expected.items():
        assert method in paths.get(path, set()), f"{method.upper()} {path} is not in the OpenAPI document: {paths}"


def test_statuses_and_headers_of_the_contract(live: LiveServer, ada: Person) -> None:
    recording, refusing = Recording(), Recording()
    with Onbehalf(live.base_url, live.key, transport=recording) as client:
        client.connect_session(unique("status"), return_to=f"{RETURN_PREFIX}x", mode="manage")
        client.token(ada.account, TRANSFER)
    with Onbehalf(live.base_url, "obk_wrong", transport=refusing) as wrong, pytest.raises(Unauthorized):
        wrong.accounts("x")
    [created, token] = recording.answers
    [refused] = refusing.answers
    assert created[:3] == ("POST", "/api/v1/connect_sessions", 201)
    assert token[2] == 200 and token[3].get("cache-control") == "no-store"
    assert refused[2] == 401 and refused[3].get("www-authenticate", "").lower().startswith("bearer")


def test_a_wrong_key_is_unauthorized(live: LiveServer) -> None:
    wrong = "obk_" + "x" * 40
    with live.client(wrong) as client, pytest.raises(Unauthorized) as caught:
        client.accounts("anyone")
    assert caught.value.status == 401
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)


def test_a_revoked_key_is_unauthorized(live: LiveServer) -> None:
    name = unique("revoked")
    key = live.apikey("--provider", "demo", name=name)
    with live.client(key) as client:
        with pytest.raises(UserNotFound):
            client.accounts(unique("nobody"))  # the key works...
        live.cli("apikey", "revoke", "--name", name)
        with pytest.raises(Unauthorized):
            client.accounts(unique("nobody"))  # ...until revoked


# -- connect sessions -----------------------------------------------------------------------------------------------


def test_a_connect_session_creates_the_user_and_its_link_works_once(live: LiveServer, ob: Onbehalf) -> None:
    external_id = unique("new")
    email = f"{external_id}@example.org"
    with pytest.raises(UserNotFound):
        ob.accounts(external_id)
    before = datetime.now(UTC)
    session = ob.connect_session(
        external_id, return_to=f"{RETURN_PREFIX}manage", mode="manage", email=email, display_name="New Person"
    )
    assert isinstance(session, ConnectSession)
    assert session.url.startswith(f"{live.base_url}/connect/")
    assert before + timedelta(minutes=9) < session.expires_at < before + timedelta(minutes=11)
    assert session.user.external_id == external_id
    assert session.user.email == email
    assert ob.accounts(external_id) == []
    assert [a.id for a in ob.accounts(user_id=session.user.id)] == []
    assert ob.accounts(email=email) == []

    # Opening the link shows a confirmation page and consumes nothing (a link scanner or a prefetch may GET it).
    with live.browser() as browser:
        for _ in range(2):
            shown = browser.get(session.url)
            confirmation = confirmation_page(shown)
            assert confirmation.heading == "Manage your linked accounts", confirmation
            assert "Python Client Tests" in confirmation.text, confirmation.text
            assert "set-cookie" not in shown.headers, "showing the page starts no session"
            # Under no-referrer a browser posts the page's form with `Origin: null`, which onbehalf's Origin check
            # refuses: Continue would never work in a browser (httpx sends whatever Origin it is given).
            policy = shown.headers.get("referrer-policy", "").split(",")[-1].strip().lower()
            assert policy != "no-referrer", "a no-referrer confirmation page: a browser posts it with Origin: null"
        assert browser.head(session.url).status_code == 200

        # A post from another site is refused and leaves the link alone.
        forged = browser.post(session.url, headers={"Origin": "https://evil.example"}, data=confirmation.fields)
        assert forged.status_code == 403, f"a cross-origin post answered {forged.status_code}"
        assert browser.get(session.url).status_code == 200

        # Continue: the link is spent, the session starts, and the browser goes to the user's linked accounts.
        opened = live.post(browser, urljoin(session.url, confirmation.action), confirmation.fields)
        assert opened.status_code == 303, f"Continue answered {opened.status_code}: {opened.text[:500]}"
        assert urljoin(session.url, opened.headers["location"]) == f"{live.base_url}/linked-accounts"
        assert "set-cookie" in opened.headers, "Continue starts the connect session"
        assert browser.get(f"{live.base_url}/linked-accounts").status_code == 200

        # Back to the platform: a page of onbehalf's that moves the browser on (not a redirect), to return_to.
        back = live.post(browser, f"{live.base_url}/connect/end")
        assert forwarded_to(back) == f"{RETURN_PREFIX}manage"
        assert "Continue to Python Client Tests" in back.text
        assert "onbehalf_session" not in browser.cookies, "the session cookie is cleared"
        ended = browser.get(f"{live.base_url}/linked-accounts")
        assert httpx.URL(urljoin(live.base_url, ended.headers.get("location", ""))).path == "/sign-in", (
            f"the session ended, so the linked accounts send to sign-in: {ended.status_code} {ended.headers}"
        )

        again = live.post(browser, urljoin(session.url, confirmation.action), confirmation.fields)
        assert again.status_code == 410, f"a reused link answered {again.status_code} to Continue"
        assert "expired" in again.text.lower()
    for method in ("GET", "HEAD"):
        reused = httpx.request(method, session.url, timeout=30)
        assert reused.status_code == 410, f"{method} of a spent link answered {reused.status_code}"
    assert "This link has expired" in browser_get(session.url).text


def test_a_tampered_link_shows_the_expired_page(live: LiveServer) -> None:
    url = f"{live.base_url}/connect/not-a-real-token"
    response = browser_get(url)
    assert response.status_code == 404
    assert "This link has expired" in response.text
    with live.browser() as browser:
        posted = live.post(browser, url)
    assert posted.status_code == 404 and "This link has expired" in posted.text


def test_a_link_without_a_provider_opens_the_chooser(live: LiveServer, ob: Onbehalf) -> None:
    session = ob.connect_session(unique("chooser"), return_to=f"{RETURN_PREFIX}chooser", display_name="Chooser")
    with live.browser() as browser:
        confirmation = confirmation_page(browser.get(session.url))
        assert confirmation.heading == "Link an account", confirmation
        assert "Python Client Tests" in confirmation.text, confirmation.text
        opened = live.post(browser, urljoin(session.url, confirmation.action), confirmation.fields)
    assert opened.status_code == 303, f"Continue answered {opened.status_code}: {opened.text[:500]}"
    assert urljoin(session.url, opened.headers["location"]) == f"{live.base_url}/connect"


def test_linking_through_the_consent_pages(live: LiveServer, ob: Onbehalf) -> None:
    external_id = unique("alan")
    email = f"{external_id}@example.org"
    session = ob.connect_session(
        external_id, return_to=f"{RETURN_PREFIX}linked", provider="demo", email=email, display_name="Alan"
    )
    linked = live.open_link(session.url, "alan")
    # The confirmation page, Continue (303), the demo's consent page ... onbehalf's callback page, the platform.
    assert linked.hops[0] == (200, session.url), linked.hops
    assert linked.hops[1] == (303, session.url), f"Continue did not answer 303: {linked.hops}"
    assert urlsplit_netloc(linked.hops[2][1]) == urlsplit_netloc(live.demo_url), linked.hops
    [(callback_status, callback), (_, landed)] = linked.hops[-2:]
    assert callback_status == 200 and httpx.URL(callback).path == "/oauth/demo/callback", linked.hops
    assert landed == linked.location
    assert linked.location.startswith(f"{RETURN_PREFIX}linked?")
    assert linked.query["result"] == "linked"
    account_id = linked.account

    [account] = ob.accounts(external_id)
    assert account.id == account_id
    assert account.provider_id == "demo"
    assert account.provider_name
    assert account.username == "alan@demo.globus.org"
    assert account.label == "alan@demo.globus.org"
    assert account.is_active and not account.needs_reconnect and not account.needs_consent
    assert account.missing_scopes == ()
    assert account.created_at <= datetime.now(UTC) + timedelta(seconds=5)
    transfer = account.resource_server(TRANSFER)
    assert transfer is not None and transfer.has_token, account.resource_servers
    assert all(scope.granted for scope in transfer.scopes)
    assert [a.id for a in ob.accounts(user_id=session.user.id)] == [account_id]
    assert [a.id for a in ob.accounts(email=email)] == [account_id]

    reused = browser_get(session.url)
    assert reused.status_code == 410 and "expired" in reused.text.lower()


def urlsplit_netloc(url: str) -> str:
    return httpx.URL(url).netloc.decode()


def test_a_denied_consent_returns_denied(live: LiveServer, ob: Onbehalf) -> None:
    external_id = unique("dorothy")
    session = ob.connect_session(external_id, return_to=f"{RETURN_PREFIX}denied", provider="demo")
    back = live.open_link(session.url, "dorothy", decision="deny")
    assert back.query.get("result") == "denied", back.location
    assert back.query.get("reason") == "access_denied", back.location
    assert ob.accounts(external_id) == []


def test_connect_session_refuses_bad_fields(live: LiveServer, ob: Onbehalf) -> None:
    external_id = unique("fields")
    cases: list[tuple[dict[str, Any], str]] = [
        ({"return_to": "http://127.0.0.1:9/elsewhere/"}, "return_to"),
        ({"return_to": "https://evil.example/return/"}, "return_to"),
        ({"mode": "sideways"}, "mode"),
        ({"email": "not an email"}, "user.email"),
    ]
    for overrides, field in cases:
        kwargs: dict[str, Any] = {"return_to": f"{RETURN_PREFIX}x", **overrides}
        with pytest.raises(Invalid) as caught:
            ob.connect_session(external_id, **kwargs)
        assert caught.value.field == field, (overrides, caught.value)
        assert caught.value.status == 400
    for bad_id in ("", "x" * 256):
        with pytest.raises(Invalid) as caught:
            ob.connect_session(bad_id, return_to=f"{RETURN_PREFIX}x")
        assert caught.value.field == "user.external_id"
    # A key for every provider may name any; an unknown one is a bad field.
    with live.client(live.apikey("--return-url", RETURN_PREFIX)) as everything, pytest.raises(Invalid) as caught:
        everything.connect_session(external_id, return_to=f"{RETURN_PREFIX}x", provider="no-such-provider")
    assert caught.value.field == "provider"


def test_connect_session_refuses_another_users_account(ob: Onbehalf, ada: Person) -> None:
    with pytest.raises(NotFound):
        ob.connect_session(unique("other"), return_to=f"{RETURN_PREFIX}x", account=ada.account)


def test_an_email_of_another_user_is_taken(ob: Onbehalf) -> None:
    email = f"{unique('shared')}@example.org"
    ob.connect_session(unique("first"), return_to=f"{RETURN_PREFIX}x", mode="manage", email=email)
    with pytest.raises(EmailTaken) as caught:
        ob.connect_session(unique("second"), return_to=f"{RETURN_PREFIX}x", mode="manage", email=email)
    assert caught.value.field == "user.email"
    assert caught.value.status == 409


# -- accounts, tokens, actions --------------------------------------------------------------------------------------


def test_an_unknown_user_is_not_found(ob: Onbehalf) -> None:
    nobody = unique("nobody")
    with pytest.raises(UserNotFound) as caught:
        ob.accounts(nobody)
    assert caught.value.status == 404
    with pytest.raises(UserNotFound):
        ob.events(nobody)
    with pytest.raises(UserNotFound):
        ob.accounts(email=f"{nobody}@example.org")


def test_an_unknown_account_is_not_found(ob: Onbehalf) -> None:
    with pytest.raises(NotFound) as caught:
        ob.token("no-such-account", TRANSFER)
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        ob.run_action("no-such-account", "tasks")
    with pytest.raises(NotFound):
        ob.disconnect("no-such-account")


def test_token_is_a_valid_access_token(ob: Onbehalf, ada: Person) -> None:
    for account in (ada.account, ada.account.id):
        token = ob.token(account, TRANSFER)
        assert isinstance(token, Token)
        assert token.access_token and token.token_type == "Bearer"
        assert token.account_id == ada.account.id
        assert token.provider == "demo"
        assert token.resource_server == TRANSFER
        assert token.scopes
        assert token.expires_at is None or token.expires_at > datetime.now(UTC)
        assert token.access_token not in repr(token)


def test_token_for_a_resource_server_without_one_is_not_found(ob: Onbehalf, ada: Person) -> None:
    with pytest.raises(NotFound):
        ob.token(ada.account, "no.such.resource.server")


def test_run_action_reads_and_transfers(ob: Onbehalf, ada: Person, ada_endpoints: list[str]) -> None:
    page = ob.run_action(ada.account, "endpoint_search", scope="my-endpoints", offset=0)
    assert page["endpoints"] and page["offset"] == 0
    first = ob.run_action(ada.account.id, "endpoint", endpoint_id=ada_endpoints[0])
    assert first["id"] == ada_endpoints[0]
    found = ob.run_action(ada.account, "endpoint_search", scope="all", q="Lab Cluster")
    assert isinstance(found["endpoints"], list)

    submission = ob.run_action(
        ada.account,
        "transfer",
        source_endpoint=ada_endpoints[0],
        source_path="/~/data/",
        destination_endpoint=ada_endpoints[1],
        destination_path="/~/copy/",
        label="python client test",
        sync_level="checksum",
        recursive=True,
    )
    task_id = submission["task_id"]
    assert task_id, submission
    task = ob.run_action(ada.account, "task", task_id=task_id)
    assert task["task_id"] == task_id
    assert task["label"] == "python client test"
    tasks = ob.run_action(ada.account, "tasks")
    assert task_id in {t["task_id"] for t in tasks}, tasks


def test_cancel_a_running_task(live: LiveServer, ob: Onbehalf, ada: Person, ada_endpoints: list[str]) -> None:
    # Ada's tasks run for an hour while this test needs one running; the default (3 s) is back afterwards.
    live.demo("task-duration", {"millis": 3_600_000, "identity": IDENTITIES["ada"]})
    try:
        submission = ob.run_action(
            ada.account,
            "transfer",
            source_endpoint=ada_endpoints[0],
            source_path="/~/big/",
            destination_endpoint=ada_endpoints[1],
            destination_path="/~/big-copy/",
            recursive=True,
        )
    finally:
        live.demo("task-duration", {"millis": 3_000, "identity": IDENTITIES["ada"]})
    task_id = submission["task_id"]
    assert ob.run_action(ada.account, "task", task_id=task_id)["status"] == "ACTIVE"
    cancelled = ob.run_action(ada.account, "cancel", task_id=task_id)
    assert cancelled["cancelled"] is True and cancelled["task_id"] == task_id, cancelled
    assert ob.run_action(ada.account, "task", task_id=task_id)["status"] == "FAILED"
    events = ob.run_action(ada.account, "task_events", task_id=task_id)
    assert [e["code"] for e in events] == ["CANCELED", "STARTED"], events
    assert ob.run_action(ada.account, "cancel", task_id=task_id)["cancelled"] is False
    with pytest.raises(Invalid) as caught:
        ob.run_action(ada.account, "cancel", task=task_id)
    assert caught.value.field == "task"


def test_browse_a_folder_and_transfer_picked_items(ob: Onbehalf, ada: Person, ada_endpoints: list[str]) -> None:
    entries = list(ob.iter_folder(ada.account, ada_endpoints[0], "/~/many-files/", page_size=300))
    assert len(entries) == 2000, len(entries)
    assert entries[0]["name"] == "sample-0001.dat" and entries[-1]["name"] == "sample-2000.dat"
    home = ob.run_action(ada.account, "ls", endpoint_id=ada_endpoints[0])
    kinds = {e["name"]: e["kind"] for e in home["entries"]}
    assert kinds["datasets"] == "dir" and kinds["latest"] == "link" and kinds["notes.txt"] == "file", kinds
    for bad in ["/~/../etc/", "/~/a\x07b/", "no-slash"]:
        with pytest.raises(Invalid) as caught:
            ob.run_action(ada.account, "ls", endpoint_id=ada_endpoints[0], path=bad)
        assert caught.value.field == "path", bad
    submission = ob.run_action(
        ada.account,
        "transfer",
        source_endpoint=ada_endpoints[0],
        source_path="/~/datasets/2024/",
        destination_endpoint=ada_endpoints[1],
        destination_path="/~/incoming/",
        items=["run-001.h5", "run-002.h5", "calibration/"],
        label="picked items",
        verify_checksum=True,
    )
    assert submission["form"]["items"] == ["run-001.h5", "run-002.h5", "calibration/"], submission
    task = ob.run_action(ada.account, "task", task_id=submission["task_id"])
    assert task["files"] == 2 and task["label"] == "picked items", task


def test_run_action_refuses_bad_parameters(ob: Onbehalf, ada: Person, ada_endpoints: list[str]) -> None:
    with pytest.raises(Invalid) as caught:
        ob.run_action(ada.account, "endpoint_search", scope="everything-ever")
    assert caught.value.field == "scope"
    with pytest.raises(Invalid) as caught:
        ob.run_action(ada.account, "endpoint_search", offset="minus one")
    assert caught.value.field == "offset"
    with pytest.raises(Invalid) as caught:
        ob.run_action(
            ada.account,
            "transfer",
            source_endpoint=ada_endpoints[0],
            source_path="relative/path",
            destination_endpoint=ada_endpoints[1],
            destination_path="/~/x/",
        )
    assert caught.value.field == "source_path"
    with pytest.raises(NotFound):
        ob.run_action(ada.account, "no_such_action")


def test_needs_consent_then_grant_and_resume(
    live: LiveServer, ob: Onbehalf, ada: Person, ada_endpoints: list[str]
) -> None:
    # Collections of its own: the switch stays on for the rest of the run.
    source, destination = ada_endpoints[2], ada_endpoints[3]
    live.demo("require-consent", {"collection_id": source})
    with pytest.raises(NeedsConsent) as caught:
        ob.run_action(
            ada.account,
            "transfer",
            source_endpoint=source,
            source_path="/~/in/",
            destination_endpoint=destination,
            destination_path="/~/out/",
            label="needs consent",
        )
    error = caught.value
    assert error.status == 409
    assert error.scopes and any(source in scope for scope in error.scopes), error.scopes
    assert error.transfer, "the pending submission is named, to resume it after consent"
    assert (error.account, error.provider) == (ada.account.id, "demo")

    # What the platform does: send the user to grant it, then resume the submission.
    link = ob.connect_session(ada.external_id, account=error.account, return_to=f"{RETURN_PREFIX}consent")
    back = live.open_link(link.url, "ada")
    assert back.account == ada.account.id
    submission = ob.run_action(ada.account, "transfer", resume=error.transfer)
    assert submission["task_id"], submission


def test_needs_reconnect_after_the_grant_is_revoked(live: LiveServer, ob: Onbehalf) -> None:
    grace = linked_person(live, ob, "grace")
    assert ob.token(grace.account, TRANSFER).access_token
    live.demo("revoke-grants", {"identity": IDENTITIES["grace"]})
    live.demo("expire-tokens", {"identity": IDENTITIES["grace"]})
    # onbehalf finds out when it uses the token (the provider answers 401) and the refresh is refused.
    with pytest.raises(NeedsReconnect) as caught:
        ob.run_action(grace.account, "tasks")
    error = caught.value
    assert error.status == 409
    assert (error.account, error.provider) == (grace.account.id, "demo")
    with pytest.raises(NeedsReconnect) as by_id:
        ob.token(grace.account.id, TRANSFER)
    assert (by_id.value.account, by_id.value.provider) == (grace.account.id, None)
    [account] = ob.accounts(grace.external_id)
    assert account.needs_reconnect and not account.is_active
    assert account.status_reason

    # What the platform does: send the user to reconnect that account.
    link = ob.connect_session(grace.external_id, account=error.account, return_to=f"{RETURN_PREFIX}reconnect")
    assert live.open_link(link.url, "grace").account == grace.account.id
    [account] = ob.accounts(grace.external_id)
    assert account.is_active
    assert ob.token(account, TRANSFER).access_token
    assert isinstance(ob.run_action(account, "tasks"), list)


def test_provider_unavailable_while_the_token_endpoint_fails(live: LiveServer, ob: Onbehalf) -> None:
    katherine = linked_person(live, ob, "katherine")
    live.demo("token-fault", {"fault": "server_error"})
    try:
        live.demo("expire-tokens", {"identity": IDENTITIES["katherine"]})
        # The provider answers 401 to the expired token; every refresh attempt gets a 503.
        with pytest.raises(ProviderUnavailable) as caught:
            ob.run_action(katherine.account, "tasks")
        assert caught.value.status == 503
        assert caught.value.retry_after is not None and caught.value.retry_after >= 1
        with pytest.raises(ProviderUnavailable) as again:
            ob.run_action(katherine.account.id, "tasks")  # fails fast during the cooldown
        assert again.value.retry_after is not None
        assert 1 <= again.value.retry_after <= caught.value.retry_after
    finally:
        live.demo("token-fault", method="DELETE")


def test_a_disabled_user_is_refused(live: LiveServer, ob: Onbehalf) -> None:
    external_id = unique("disabled")
    email = f"{external_id}@example.org"
    ob.connect_session(external_id, return_to=f"{RETURN_PREFIX}x", mode="manage", email=email)
    live.cli("user", "disable", "--email", email)
    with pytest.raises(UserDisabled) as caught:
        ob.accounts(external_id)
    assert caught.value.status == 403
    with pytest.raises(UserDisabled):
        ob.connect_session(external_id, return_to=f"{RETURN_PREFIX}x", mode="manage")


def test_a_key_for_another_provider_is_not_allowed(live: LiveServer, ada: Person) -> None:
    key = live.apikey("--provider", "github", "--return-url", RETURN_PREFIX)
    with live.client(key) as github_only:
        assert github_only.accounts(ada.external_id) == [], "accounts of other providers are left out"
        with pytest.raises(ProviderNotAllowed) as caught:
            github_only.token(ada.account, TRANSFER)
        assert caught.value.status == 403
        with pytest.raises(ProviderNotAllowed):
            github_only.run_action(ada.account, "tasks")
        with pytest.raises(ProviderNotAllowed):
            github_only.connect_session(unique("gh"), return_to=f"{RETURN_PREFIX}x", provider="demo")


def test_a_malformed_request_is_a_bad_request(ob: Onbehalf, ada: Person) -> None:
    # The client never sends one: go under it to see the server's answer map.
    with pytest.raises(BadRequest) as caught:
        ob._call("POST", f"/api/v1/accounts/{ada.account.id}/token", json={"resource_server": TRANSFER, "x": 1})
    assert caught.value.status == 400
    with pytest.raises(NotFound):
        ob._call("GET", "/api/v1/no/such/path")


# -- when things break: the provider, the database, another instance, the network -----------------------------------
#
# The real server made to fail: the session's server where nothing is left broken (a refused transfer, a wrong
# base_url), else servers of the test's own (`spawn`): stopped, their database locked, a second instance on the same
# database.


def expire_in_db(database: Path, account_id: str) -> None:
    """Makes the account's Transfer token expired in onbehalf's records, as the two days the demo's tokens live would
    (nothing else can: the demo's lifetime is fixed). The same move as the Rust tests' `expire_in_db`
    (tests/delegation.rs): the clock, not the token; the token at the provider is left as it is."""
    now_ms = int(time.time() * 1000)
    with closing(sqlite3.connect(database, timeout=30)) as db, db:
        changed = db.execute(
            "UPDATE token_sets SET expires_at = ? WHERE account_id = ? AND resource_server = ?",
            (now_ms - 1000, account_id, TRANSFER),
        ).rowcount
    assert changed == 1, f"no Transfer token set of {account_id} in {database}"


def wait_until(what: str, done: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)


def test_upstream_when_the_provider_refuses_the_action(ob: Onbehalf, ada: Person, ada_endpoints: list[str]) -> None:
    # A well-formed transfer from a collection the demo does not have: its Transfer API answers 404 EndpointNotFound.
    missing = str(uuid.uuid4())
    with pytest.raises(Upstream) as caught:
        ob.run_action(
            ada.account,
            "transfer",
            source_endpoint=missing,
            source_path="/~/data/",
            destination_endpoint=ada_endpoints[1],
            destination_path="/~/copy/",
            label="no such source",
        )
    error = caught.value
    assert (error.status, error.code) == (502, "upstream"), repr(error)
    assert error.upstream_status == 404
    assert error.message == f"The provider refused: No such endpoint with id '{missing}' (EndpointNotFound).", error
    # The submission was recorded before Globus refused it, and the error names it (resumable once fixed).
    assert isinstance(error.transfer, str) and error.transfer, repr(error)
    assert f"transfer={error.transfer!r}" in repr(error)
    assert error.body == {
        "error": "upstream",
        "message": error.message,
        "upstream_status": 404,
        "transfer": error.transfer,
    }
    # The provider refused one request; the account is fine.
    [account] = [a for a in ob.accounts(ada.external_id) if a.id == ada.account.id]
    assert account.is_active


def test_failed_when_the_providers_api_does_not_answer(spawn: Callable[..., LiveServer]) -> None:
    first = spawn()
    with first.client() as client:
        person = linked_person(first, client, "grace")
        assert isinstance(client.run_action(person.account, "tasks"), list)
    # The provider goes down (the demo provider stops with the instance it runs in); the deployment's other instance,
    # on the same database and configured for that same provider, is asked to act.
    first.stop()
    demo_port = httpx.URL(first.demo_url).port
    assert demo_port is not None
    second = spawn(
        database=first.database,
        config=CONFIG + demo_entry(first.demo_url),
        env={"ONBEHALF_DEMO__ENABLED": "false"},
        avoid={demo_port},
    )
    with second.client(first.key) as client:
        # The stored token is fine (it is onbehalf's to hand out)...
        assert client.token(person.account, TRANSFER).access_token
        # ...but the provider's API does not answer.
        with pytest.raises(Failed) as caught:
            client.run_action(person.account, "tasks")
        error = caught.value
        assert (error.status, error.code) == (502, "failed"), repr(error)
        assert error.message == "the provider's API did not answer (connection failed)", error
        assert error.body == {"error": "failed", "message": error.message}
        with pytest.raises(Failed):
            client.run_action(person.account, "endpoint_search", scope="my-endpoints")
        [account] = client.accounts(person.external_id)
        assert account.is_active, "an outage of the provider's API is not the account's fault"


def test_busy_while_another_instance_holds_the_refresh(spawn: Callable[..., LiveServer]) -> None:
    # No background refresher: only the calls below refresh.
    quiet = {"ONBEHALF_DELEGATION__BACKGROUND__ENABLED": "false"}
    first = spawn(env={**quiet, "ONBEHALF_OUTBOUND__TIMEOUT": "30s"})
    with first.client() as client:
        person = linked_person(first, client, "ada")
        assert client.token(person.account, TRANSFER).access_token
    expire_in_db(first.database, person.account.id)
    # The demo's token endpoint stops answering: the first instance's refresh holds the token set's lease while it
    # waits (three attempts of 30 s). Its caller gives up after 2 s: no answer in time is a ConnectionFailed.
    first.demo("token-fault", {"fault": "timeout"})
    with Onbehalf(first.base_url, first.key, timeout=2) as impatient, pytest.raises(ConnectionFailed) as hung:
        impatient.token(person.account, TRANSFER)
    assert isinstance(hung.value.error, httpx.TimeoutException), repr(hung.value)
    assert (hung.value.code, hung.value.status, hung.value.body) == ("connection_failed", None, None)
    assert hung.value.__cause__ is hung.value.error
    assert first.key not in str(hung.value) and first.key not in repr(hung.value)
    wait_until("the refresh reaches the demo's token endpoint", lambda: first.demo_counters()["faults_injected"] >= 1)

    # A second instance of the deployment (same database and provider) whose refreshes may take at most 7 s (one
    # attempt of 2 s): it waits that long for the lease, then says busy.
    second = spawn(
        database=first.database,
        config=CONFIG + demo_entry(first.demo_url),
        env={
            **quiet,
            "ONBEHALF_DEMO__ENABLED": "false",
            "ONBEHALF_OUTBOUND__TIMEOUT": "2s",
            "ONBEHALF_DELEGATION__REFRESH_ATTEMPTS": "1",
        },
    )
    recording = Recording()
    started = time.monotonic()
    with Onbehalf(second.base_url, first.key, transport=recording) as other, pytest.raises(Busy) as caught:
        other.token(person.account, TRANSFER)
    waited = time.monotonic() - started
    error = caught.value
    assert isinstance(error, RetryLater)
    assert (error.status, error.code) == (503, "busy"), repr(error)
    assert error.retry_after == 1
    assert error.message == "a refresh of this token is still running elsewhere; try again in a moment", error
    assert error.body == {"error": "busy", "message": error.message, "retry_after_seconds": 1}
    [(_, _, status, headers)] = recording.answers
    assert status == 503 and headers.get("retry-after") == "1"
    assert waited >= 5, f"answered after {waited:.1f} s, without waiting for the other instance's refresh"
    assert "refresh_token" not in first.demo_counters()["grants"], "no refresh got through"
    first.demo("token-fault", method="DELETE")


def test_internal_error_while_the_database_is_locked(spawn: Callable[..., LiveServer]) -> None:
    server = spawn()
    external_id = unique("locked")
    with server.client() as client:
        client.connect_session(external_id, return_to=f"{RETURN_PREFIX}x", mode="manage")
        assert client.accounts(external_id) == []
        # Another process holds SQLite's write lock (a backup, a migration, an operator's sqlite3 shell): onbehalf's
        # writes wait `busy_timeout` (5 s, src/db.rs) for it, then fail; the call's audit record is one.
        with closing(sqlite3.connect(server.database, timeout=30, isolation_level=None)) as db:
            db.execute("BEGIN EXCLUSIVE")
            try:
                with pytest.raises(InternalError) as caught:
                    client.accounts(external_id)
            finally:
                db.execute("ROLLBACK")
        error = caught.value
        assert (error.status, error.code) == (500, "internal"), repr(error)
        assert error.message == "Something went wrong on our side."
        assert error.body == {"error": "internal", "message": error.message}, "the details go to the log only"
        assert "database is locked" in server.stderr()
        # The lock released, the same call works again.
        assert client.accounts(external_id) == []


def test_a_base_url_copied_from_the_browser_is_a_protocol_error(live: LiveServer) -> None:
    # Where a browser that opens onbehalf lands without a session, as its address bar shows it: the sign-in page,
    # with a query. A client given that finds onbehalf's HTML page, 200, at every GET. (Asked as a browser asks, with
    # `Accept: text/html`: without it the page answers 200 with the Location header instead of 302.)
    landed = httpx.get(f"{live.base_url}/linked-accounts", headers={"Accept": "text/html"}, timeout=30)
    assert landed.is_redirect, landed.status_code
    address = urljoin(live.base_url, landed.headers["location"])
    assert httpx.URL(address).path == "/sign-in" and httpx.URL(address).query, address
    with Onbehalf(address, live.key) as wrong:
        for call in (lambda: wrong.accounts(unique("anyone")), lambda: wrong.events(unique("anyone"))):
            with pytest.raises(ProtocolError) as caught:
                call()
            error = caught.value
            assert (error.status, error.code) == (200, "invalid_response"), repr(error)
            assert "text/html" in error.message and "not JSON" in error.message, error.message
            assert isinstance(error.body, str) and "<html" in error.body.lower(), error.body
            assert live.key not in str(error) and live.key not in repr(error) and live.key not in error.body


def test_connection_failed_when_the_server_is_stopped(spawn: Callable[..., LiveServer]) -> None:
    server = spawn()
    external_id = unique("stopped")
    with server.client() as client:
        client.connect_session(external_id, return_to=f"{RETURN_PREFIX}x", mode="manage")
        assert client.accounts(external_id) == []
        server.stop()
        calls: dict[str, Callable[[], object]] = {
            "accounts": lambda: client.accounts(external_id),
            "token": lambda: client.token("some-account", TRANSFER),
            "run_action": lambda: client.run_action("some-account", "tasks"),
            "connect_session": lambda: client.connect_session(external_id, return_to=f"{RETURN_PREFIX}x"),
            "disconnect": lambda: client.disconnect("some-account"),
            "events": lambda: client.events(external_id),
        }
        for name, call in calls.items():
            with pytest.raises(ConnectionFailed) as caught:
                call()
            error = caught.value
            assert (error.code, error.status, error.body) == ("connection_failed", None, None), (name, repr(error))
            assert isinstance(error.error, httpx.ConnectError), (name, repr(error))
            assert error.__cause__ is error.error
            assert f"got no answer from {server.base_url}: ConnectError" in error.message, (name, error.message)
            assert server.key not in str(error) and server.key not in repr(error)



# -- disconnect and events ------------------------------------------------------------------------------------------


def test_disconnect_then_the_events_show_it(live: LiveServer, ob: Onbehalf) -> None:
    mary = linked_person(live, ob, "mary")
    ob.token(mary.account, TRANSFER)
    done = ob.disconnect(mary.account)
    assert done.account_id == mary.account.id
    assert done.provider == "demo"
    assert done.revocation == "complete", done
    assert done.revoked >= 1 and done.failed == 0
    assert ob.accounts(mary.external_id) == []
    with pytest.raises(NotFound):
        ob.disconnect(mary.account)
    with pytest.raises(NotFound):
        ob.token(mary.account, TRANSFER)

    page = ob.events(mary.external_id)
    assert page.user.external_id == mary.external_id
    actions = [event.action for event in page.events]
    assert "account_disconnected" in actions, actions
    assert "account_linked" in actions, actions
    assert actions.index("account_disconnected") < actions.index("account_linked"), "newest first"
    [disconnected] = [event for event in page.events if event.action == "account_disconnected"]
    assert disconnected.account_id == mary.account.id
    assert disconnected.provider == "demo"
    assert disconnected.outcome == "success"
    assert disconnected.summary
    assert abs(disconnected.at - datetime.now(UTC)) < timedelta(minutes=5)


def test_events_page_back_through_next_before(ob: Onbehalf, ada: Person) -> None:
    for _ in range(3):
        ob.token(ada.account, TRANSFER)
    everything = ob.events(ada.external_id, limit=100)
    ids = [event.id for event in everything.events]
    assert len(ids) >= 6, everything
    assert ids == sorted(ids, reverse=True), "newest first"
    assert len(ids) == len(set(ids))
    assert [e.action for e in everything.events[:3]] == ["service_token_issued"] * 3

    # Reading events is itself audited (after the read): the newest event is now that read.
    newest = ob.events(ada.external_id, limit=1)
    assert newest.events[0].action == "service_events_read"
    assert newest.events[0].id > ids[0]

    # Paging from a fixed point sees exactly the events that were there.
    start = ids[0] + 1
    first = ob.events(ada.external_id, before=start, limit=2)
    assert [e.id for e in first.events] == ids[:2]
    assert first.next_before is not None
    second = ob.events(ada.external_id, before=first.next_before, limit=2)
    assert [e.id for e in second.events] == ids[2:4]
    assert [e.id for e in ob.iter_events(ada.external_id, before=start, page_size=2)] == ids
    last = ob.events(ada.external_id, before=ids[-1])
    assert last.events == () and last.next_before is None
    tail = ob.events(ada.external_id, before=ids[-2], limit=100)
    assert [e.id for e in tail.events] == ids[-1:] and tail.next_before is None


def test_events_refuse_a_limit_out_of_range(ob: Onbehalf, ada: Person) -> None:
    for limit in (0, 101):
        with pytest.raises(Invalid) as caught:
            ob.events(ada.external_id, limit=limit)
        assert caught.value.field == "limit"


# -- webhooks -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hook:
    """The test receiver, registered with `onbehalf webhook add` for every event."""

    receiver: Receiver
    endpoint: str
    secret: str = field(repr=False)

    def verified(self, delivery: Delivery) -> WebhookEvent:
        """The delivery checked by both implementations: the reference `standardwebhooks` and verify_webhook."""
        document = standardwebhooks.Webhook(self.secret).verify(delivery.body, delivery.headers)
        event = verify_webhook(delivery.headers, delivery.body, self.secret)
        assert document == json.loads(delivery.body) and event.raw == document
        return event

    def wait_for(self, kind: str, external_id: str | None = None, after: int = 0) -> Delivery:
        """The first delivery of an event of type `kind` (for the user `external_id`, after `after` ms) to /hook."""
        return self.receiver.wait_for(
            f"{kind} for {external_id or 'anyone'}",
            lambda d: d.path == "/hook"
            and d.event.get("type") == kind
            and (external_id is None or d.external_id == external_id)
            and int(d.event.get("occurred_at") or 0) > after,
        )


@pytest.fixture(scope="module")
def hook(live: LiveServer) -> Iterator[Hook]:
    """A receiver on 127.0.0.1 registered for every event; disabled and stopped after the module."""
    receiver = Receiver()
    endpoint, secret = live.webhook_add(receiver.url("/hook"))
    try:
        yield Hook(receiver, endpoint, secret)
    finally:
        live.cli("webhook", "disable", endpoint, "--reason", "the Python client's tests are done")
        receiver.close()


def test_webhook_test_is_delivered_signed_per_standard_webhooks(live: LiveServer, hook: Hook) -> None:
    before = int(time.time() * 1000)
    out = live.cli("webhook", "test", hook.endpoint)
    queued = re.search(r"(evt_[0-9a-f]+)", out)
    assert queued, f"no event id in the output of webhook test:\n{out}"
    delivery = hook.wait_for("webhook.test")
    event = hook.verified(delivery)
    assert event.id == queued.group(1) == delivery.headers["webhook-id"]
    assert re.fullmatch(r"evt_[0-9a-f]{32}", event.id), event.id
    assert (event.type, event.user, event.account) == ("webhook.test", None, None)
    assert event.data in ({}, {"user": None}), "no user (null or left out), nothing else"
    assert before - 1000 <= event.occurred_at <= int(time.time() * 1000)
    assert delivery.headers["content-type"].startswith("application/json")
    assert delivery.headers["user-agent"].startswith("onbehalf-webhooks/")
    assert abs(int(delivery.headers["webhook-timestamp"]) - time.time()) < 60
    assert re.fullmatch(r"v1,[A-Za-z0-9+/]{43}=", delivery.headers["webhook-signature"]), "one secret, one signature"
    # The body is what was signed, byte for byte: a receiver that re-serializes it breaks the signature.
    with pytest.raises(WebhookVerificationError, match="No signature"):
        verify_webhook(delivery.headers, json.dumps(json.loads(delivery.body), indent=1), hook.secret)


def test_linking_an_account_sends_account_linked(live: LiveServer, ob: Onbehalf, hook: Hook) -> None:
    external_id = unique("hedy")
    email = f"{external_id}@example.org"
    account_id = live.link(ob, external_id, "hedy", email=email)
    delivery = hook.wait_for("account.linked", external_id)
    event = hook.verified(delivery)
    [account] = ob.accounts(external_id)
    assert account.id == account_id
    assert event.user is not None and (event.user.external_id, event.user.email) == (external_id, email)
    assert event.account is not None
    assert (event.account.id, event.account.provider_id, event.account.subject) == (
        account.id,
        "demo",
        account.subject,
    )
    assert event.account.is_active and event.account.username == "hedy@demo.globus.org"
    assert event.account.resource_server(TRANSFER) is not None, event.account.resource_servers
    assert delivery.headers["webhook-id"] == event.id


def test_a_revoked_grant_sends_needs_reconnect_then_reconnected(live: LiveServer, ob: Onbehalf, hook: Hook) -> None:
    radia = linked_person(live, ob, "radia")
    linked = hook.verified(hook.wait_for("account.linked", radia.external_id))
    live.demo("revoke-grants", {"identity": IDENTITIES["radia"]})
    live.demo("expire-tokens", {"identity": IDENTITIES["radia"]})
    with pytest.raises(NeedsReconnect):
        ob.run_action(radia.account, "tasks")

    # onbehalf tells the platform at once: no call of the platform's needed to find out.
    lost = hook.verified(hook.wait_for("account.needs_reconnect", radia.external_id))
    assert lost.account is not None and lost.account.id == radia.account.id
    assert lost.account.needs_reconnect and lost.reason, lost
    assert lost.occurred_at >= linked.occurred_at

    link = ob.connect_session(radia.external_id, account=radia.account, return_to=f"{RETURN_PREFIX}reconnect")
    assert live.open_link(link.url, "radia").account == radia.account.id
    back = hook.receiver.wait_for(
        f"account.reconnected (or linked) for {radia.external_id}",
        lambda d: d.event.get("type") in {"account.reconnected", "account.linked"}
        and d.external_id == radia.external_id
        and int(d.event.get("occurred_at") or 0) > lost.occurred_at,
    )
    fixed = hook.verified(back)
    assert fixed.account is not None and fixed.account.id == radia.account.id and fixed.account.is_active


def test_a_rotated_secret_signs_with_both_secrets(live: LiveServer, hook: Hook) -> None:
    # An endpoint of its own, so the module's endpoint keeps a single secret.
    endpoint, old = live.webhook_add(hook.receiver.url("/rotated"))
    try:
        out = live.cli("webhook", "rotate-secret", endpoint)
        found = re.search(r"(whsec_\S+)", out)
        assert found, f"no secret in the output of rotate-secret:\n{out}"
        new = found.group(1)
        assert new != old
        live.cli("webhook", "test", endpoint)
        delivery = hook.receiver.wait_for("webhook.test at /rotated", lambda d: d.path == "/rotated")
        assert len(delivery.headers["webhook-signature"].split(" ")) == 2, delivery.headers
        for secret in (old, new):
            assert verify_webhook(delivery.headers, delivery.body, secret).type == "webhook.test"
            standardwebhooks.Webhook(secret).verify(delivery.body, delivery.headers)
    finally:
        live.cli("webhook", "disable", endpoint)
