"""The example platform's webhook receiver and what its transfer page makes of the events, with onbehalf replaced by
an httpx.MockTransport that records every call (so a test sees that the page did not ask onbehalf).

Run from the repository root: `.venv/bin/python -m pytest examples/platform -q`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from onbehalf import Onbehalf
from standardwebhooks import Webhook

from app import LinkStates, create_app

SECRET = "whsec_" + base64.b64encode(os.urandom(32)).decode()
USER = "platform-user-1"
NOTE = "Your Globus account needs reconnecting."
T0 = 1_796_000_000_000


def account(status: str = "active") -> dict[str, Any]:
    return {
        "id": "acc-1",
        "provider_id": "demo",
        "provider_name": "Demo Globus",
        "subject": "3b9c4a7e",
        "username": "ada@demo.globus.org",
        "display_name": "Ada Lovelace",
        "email": None,
        "status": status,
        "status_reason": None if status == "active" else "Globus refused the refresh token.",
        "resource_servers": [],
        "created_at": T0,
        "last_refreshed_at": None,
        "last_used_at": None,
    }


def event(kind: str, status: str, *, at: int = T0, user: str = USER, event_id: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"user": {"id": 7, "external_id": user, "email": None}, "account": account(status)}
    if kind in {"account.needs_reconnect", "account.needs_consent"}:
        data["reason"] = "Globus refused the refresh token."
    return {"id": event_id or f"evt_{os.urandom(16).hex()}", "type": kind, "occurred_at": at, "data": data}


class FakeOnbehalf:
    """onbehalf as the page sees it: the calls it got, and the account status it answers with."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.status = "active"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(f"{request.method} {request.url.path}")
        if request.url.path == "/api/v1/accounts":
            return httpx.Response(200, json={"accounts": [account(self.status)]})
        if request.url.path.endswith("/actions/endpoint_search"):
            endpoints = [{"id": "ep-1", "display_name": "Lab Cluster"}, {"id": "ep-2", "display_name": "Laptop"}]
            return httpx.Response(200, json={"result": {"endpoints": endpoints}})
        return httpx.Response(404, json={"error": "not_found", "message": "No such path."})


@pytest.fixture
def onbehalf() -> FakeOnbehalf:
    return FakeOnbehalf()


@pytest.fixture
def app(onbehalf: FakeOnbehalf) -> Iterator[Flask]:
    with Onbehalf("http://onbehalf.test", "obk_test", transport=httpx.MockTransport(onbehalf)) as client:
        yield create_app(client, webhook_secret=SECRET)


@pytest.fixture
def browser(app: Flask) -> FlaskClient:
    """A signed-in user's browser."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["user"] = USER
    return client


def states(app: Flask) -> LinkStates:
    found: LinkStates = app.extensions["link_states"]
    return found


def deliver(
    app: Flask, document: dict[str, Any], *, secret: str = SECRET, headers: dict[str, str] | None = None
) -> int:
    """POSTs an event as onbehalf does: compact JSON, signed by standardwebhooks; returns the status."""
    body = json.dumps(document, separators=(",", ":"))
    now = datetime.now(UTC)
    signed = {
        "content-type": "application/json",
        "webhook-id": document["id"],
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(document["id"], now, body),
    }
    # A new client: onbehalf has no session cookie, and sends no CSRF token.
    return app.test_client().post("/webhooks", data=body, headers={**signed, **(headers or {})}).status_code


# -- the receiver ---------------------------------------------------------------------------------------------------


def test_a_signed_event_is_recorded(app: Flask) -> None:
    assert deliver(app, event("account.needs_reconnect", "needs_reconnect")) == 204
    [state] = states(app).of(USER)
    assert (state.id, state.status, state.label) == ("acc-1", "needs_reconnect", "ada@demo.globus.org")
    assert state.reason == "Globus refused the refresh token." and state.occurred_at == T0


@pytest.mark.parametrize(
    "forged",
    [
        {"secret": "whsec_" + base64.b64encode(os.urandom(32)).decode()},
        {"headers": {"webhook-signature": "v1,AAAA"}},
        {"headers": {"webhook-signature": "garbage"}},
        {"headers": {"webhook-timestamp": str(int(time.time()) - 3600)}},
        {"headers": {"webhook-id": "evt_other"}},
    ],
    ids=["wrong secret", "wrong signature", "malformed signature", "stale timestamp", "another id"],
)
def test_a_bad_signature_is_refused_and_nothing_is_stored(app: Flask, forged: dict[str, Any]) -> None:
    assert deliver(app, event("account.needs_reconnect", "needs_reconnect"), **forged) == 400
    assert states(app).of(USER) == [] and states(app).handled() == 0


def test_missing_headers_are_refused(app: Flask) -> None:
    response = app.test_client().post("/webhooks", json=event("account.linked", "active"))
    assert response.status_code == 400
    assert states(app).handled() == 0


def test_a_repeated_webhook_id_is_stored_once(app: Flask) -> None:
    first = event("account.needs_reconnect", "needs_reconnect", event_id="evt_1")
    assert deliver(app, first) == 204
    # The same id again (a retry), even with other content: handled already, nothing changes.
    assert deliver(app, first) == 204
    assert deliver(app, event("account.reconnected", "active", at=T0 + 1000, event_id="evt_1")) == 204
    assert states(app).handled() == 1
    [state] = states(app).of(USER)
    assert state.status == "needs_reconnect"


def test_an_older_event_that_comes_again_changes_nothing(app: Flask) -> None:
    assert deliver(app, event("account.reconnected", "active", at=T0 + 1000)) == 204
    assert deliver(app, event("account.needs_reconnect", "needs_reconnect", at=T0)) == 204  # a replay
    [state] = states(app).of(USER)
    assert state.status == "active"


def test_events_without_an_account_change_no_state(app: Flask) -> None:
    test = {"id": "evt_test", "type": "webhook.test", "occurred_at": T0, "data": {"user": None}}
    assert deliver(app, test) == 204
    assert states(app).handled() == 1 and states(app).of(USER) == []


def test_webhooks_skip_the_csrf_check_but_forms_do_not(browser: FlaskClient) -> None:
    assert browser.post("/sign-out").status_code == 400, "a form post without the CSRF token"


def test_without_a_secret_there_is_no_receiver(onbehalf: FakeOnbehalf) -> None:
    with Onbehalf("http://onbehalf.test", "obk_test", transport=httpx.MockTransport(onbehalf)) as client:
        app = create_app(client, webhook_secret="")
    assert deliver(app, event("account.linked", "active")) == 404


# -- the transfer page ----------------------------------------------------------------------------------------------


def test_the_page_says_needs_reconnecting_without_asking_onbehalf(
    app: Flask, browser: FlaskClient, onbehalf: FakeOnbehalf
) -> None:
    assert deliver(app, event("account.needs_reconnect", "needs_reconnect")) == 204
    page = browser.get("/transfer")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert re.search(rf'role="alert">\s*<p><strong>{re.escape(NOTE)}</strong>', text), text
    assert "Reconnect your Globus account" in text and 'name="account" value="acc-1"' in text
    assert "Your endpoints" not in text
    assert onbehalf.calls == [], "the page knew from the webhook"

    # Reconnected: the next event clears the note, and the page asks onbehalf as before.
    assert deliver(app, event("account.reconnected", "active", at=T0 + 1000)) == 204
    text = browser.get("/transfer").get_data(as_text=True)
    assert NOTE not in text and "Your endpoints" in text
    assert onbehalf.calls == ["GET /api/v1/accounts", "POST /api/v1/accounts/acc-1/actions/endpoint_search"]


def test_back_from_reconnecting_the_page_asks_onbehalf(app: Flask, browser: FlaskClient) -> None:
    # The browser is back before onbehalf's account.reconnected webhook: onbehalf, asked, says active.
    assert deliver(app, event("account.needs_reconnect", "needs_reconnect")) == 204
    text = browser.get("/transfer?result=linked&account=acc-1").get_data(as_text=True)
    assert NOTE not in text and "Your endpoints" in text


def test_another_users_event_is_not_shown(app: Flask, browser: FlaskClient) -> None:
    assert deliver(app, event("account.needs_reconnect", "needs_reconnect", user="platform-user-2")) == 204
    assert NOTE not in browser.get("/transfer").get_data(as_text=True)


def test_without_webhooks_the_page_finds_out_from_onbehalf(browser: FlaskClient, onbehalf: FakeOnbehalf) -> None:
    onbehalf.status = "needs_reconnect"
    text = browser.get("/transfer").get_data(as_text=True)
    assert "Globus no longer accepts" in text and NOTE not in text
    assert onbehalf.calls == ["GET /api/v1/accounts"]
