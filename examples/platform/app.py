"""Example Platform: a stand-in for InvenioRDM whose users transfer data with Globus through onbehalf.

The platform has its own sign-in (fixed demo users, no passwords) and never sees a Globus token: it names its user
by its own id (``external_id``) and asks onbehalf, with its API key, to list their endpoints and submit transfers.
When the user has no linked account, or Globus stopped accepting it, the platform creates a connect session and
sends the browser to onbehalf, which brings it back to ``/transfer`` with ``result=linked|denied|failed``.

onbehalf also tells the platform, by webhook (``POST /webhooks``, Standard Webhooks signatures checked with the
``standardwebhooks`` package), when an account changes: the transfer page shows "needs reconnecting" as soon as
Globus stopped accepting the account, before the platform itself asks onbehalf anything.

Configuration (environment):
    ONBEHALF_URL       onbehalf's base URL (default http://127.0.0.1:3000)
    ONBEHALF_API_KEY   the platform's API key (``onbehalf apikey create``; required)
    PLATFORM_BIND      host:port to listen on (default 127.0.0.1:5000)
    PLATFORM_URL       this app's URL as browsers see it (default http://<PLATFORM_BIND>); return_to is built on it
    FLASK_SECRET_KEY   signs the session cookie (default: random, so sessions end when the app restarts)
    ONBEHALF_WEBHOOK_SECRET  the ``whsec_...`` secret of the platform's webhook endpoint (``onbehalf webhook add
                       --url <PLATFORM_URL>/webhooks``); unset: /webhooks answers 404 and the page only asks onbehalf
    PLATFORM_ACCESS_LOG  0 to silence the request log
"""

from __future__ import annotations

import functools
import hmac
import logging
import os
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from flask import Flask, abort, flash, g, redirect, render_template, request, session, url_for
from onbehalf import Invalid, NeedsConsent, NeedsReconnect, Onbehalf, OnbehalfError, UserNotFound
from standardwebhooks import Webhook, WebhookVerificationError

PLATFORM_NAME = "Example Platform"
# The onbehalf provider the platform links (the built-in demo provider stands for Globus).
PROVIDER = "demo"
# Statuses of a linked account that a Reconnect fixes.
FIXABLE = {"needs_reconnect", "needs_consent", "error"}
TRANSFER_FIELDS = (
    "source_endpoint", "source_path", "destination_endpoint", "destination_path", "label", "recursive"
)
# What the transfer page says, without asking onbehalf, when a webhook said an account is in one of these statuses.
TOLD = {
    "needs_reconnect": "Your Globus account needs reconnecting.",
    "needs_consent": "Your Globus account needs more access granted.",
}
# Routes that skip the CSRF check: onbehalf's webhooks carry no session; their signature authenticates them.
CSRF_EXEMPT = {"onbehalf_webhook"}


@dataclass(frozen=True)
class User:
    external_id: str
    name: str


# The platform's own users: fixed, for the demo. `external_id` is how onbehalf knows them.
USERS = {
    user.external_id: user
    for user in (User("platform-user-1", "Ada Lovelace"), User("platform-user-2", "Charles Babbage"))
}


@dataclass(frozen=True)
class LinkState:
    """What onbehalf's webhooks last said about one linked account of a platform user."""

    #: The account's id (``id`` and ``label``, like the client's Account, so the templates take either).
    id: str
    provider: str
    label: str
    #: The account's status after the event (``active``, ``needs_reconnect``, ...), or ``disconnected``.
    status: str
    reason: str | None
    #: When it happened at onbehalf (Unix ms): an older event that comes again (a retry, a replay) changes nothing.
    occurred_at: int


class LinkStates:
    """The latest state of each linked account, per platform user (``external_id``), from ``account.*`` webhooks;
    and the webhook ids already handled, since a delivery can come more than once.

    In memory and behind one lock (Flask serves requests on threads), for the demo: a real platform keeps both in its
    database, the webhook id under a unique constraint.
    """

    def __init__(self, remembered: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._handled: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered
        self._states: dict[str, dict[str, LinkState]] = {}

    def record(self, webhook_id: str, event: dict[str, Any]) -> bool:
        """Handles an event once: ``False`` when ``webhook_id`` was handled already (nothing changes)."""
        with self._lock:
            if webhook_id in self._handled:
                return False
            self._handled[webhook_id] = None
            if len(self._handled) > self._remembered:
                self._handled.popitem(last=False)
            told = link_state(event)
            if told is not None:
                external_id, state = told
                accounts = self._states.setdefault(external_id, {})
                known = accounts.get(state.id)
                if known is None or known.occurred_at <= state.occurred_at:
                    accounts[state.id] = state
            return True

    def of(self, external_id: str) -> list[LinkState]:
        """The accounts of a platform user that webhooks told about."""
        with self._lock:
            return list(self._states.get(external_id, {}).values())

    def handled(self) -> int:
        """How many webhook ids were handled (for the tests)."""
        with self._lock:
            return len(self._handled)


def link_state(event: dict[str, Any]) -> tuple[str, LinkState] | None:
    """The user and account state an ``account.*`` event reports; ``None`` for other events (``user.*``,
    ``webhook.test``) and for ``account.revocation_failed``, whose account is gone already."""
    kind, data = event.get("type"), event.get("data")
    if not (isinstance(kind, str) and kind.startswith("account.") and isinstance(data, dict)):
        return None
    user, account = data.get("user"), data.get("account")
    if not (isinstance(user, dict) and isinstance(account, dict) and user.get("external_id") and account.get("id")):
        return None
    label = next((account[k] for k in ("username", "email", "display_name", "subject") if account.get(k)), "")
    return str(user["external_id"]), LinkState(
        id=str(account["id"]),
        provider=str(account.get("provider_id", "")),
        label=str(label),
        # The account object is as it is after the change, but as it was just before for a disconnect.
        status="disconnected" if kind == "account.disconnected" else str(account.get("status", "")),
        reason=data.get("reason") or account.get("status_reason"),
        occurred_at=int(event.get("occurred_at") or 0),
    )


def create_app(
    client: Onbehalf | None = None, webhook_secret: str | None = None, link_states: LinkStates | None = None
) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    bind = os.environ.get("PLATFORM_BIND", "127.0.0.1:5000")
    public_url = os.environ.get("PLATFORM_URL", f"http://{bind}").rstrip("/")
    return_to = f"{public_url}/transfer"
    if client is None:
        api_key = os.environ.get("ONBEHALF_API_KEY", "")
        if not api_key:
            raise SystemExit("ONBEHALF_API_KEY is not set: create a key with `onbehalf apikey create` (see README.md).")
        client = Onbehalf(os.environ.get("ONBEHALF_URL", "http://127.0.0.1:3000"), api_key)
    onbehalf = client
    secret = webhook_secret if webhook_secret is not None else os.environ.get("ONBEHALF_WEBHOOK_SECRET", "")
    # Fails at start on a secret that is not whsec_ + base64, rather than refusing every delivery later.
    webhook = Webhook(secret) if secret else None
    states = link_states if link_states is not None else LinkStates()
    app.extensions["link_states"] = states

    # --- sign-in and CSRF --------------------------------------------------------------------------------------

    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(32)
        return str(session["csrf"])

    app.jinja_env.globals.update(csrf_token=csrf_token, platform_name=PLATFORM_NAME)

    @app.before_request
    def check_csrf() -> None:
        g.user = USERS.get(session.get("user", ""))
        if request.method == "POST" and request.endpoint not in CSRF_EXEMPT:
            sent = request.form.get("csrf_token", "")
            if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
                abort(400, "This form has expired. Go back, reload the page and try again.")

    @app.after_request
    def headers(response: Any) -> Any:
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    def signed_in(view: Any) -> Any:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if g.user is None:
                return redirect(url_for("home"))
            return view(*args, **kwargs)

        return wrapped

    @app.get("/")
    def home() -> Any:
        return render_template("home.html", users=USERS.values())

    @app.post("/sign-in")
    def sign_in() -> Any:
        user = USERS.get(request.form.get("user", ""))
        if user is None:
            abort(400, "No such user.")
        session.clear()  # a fresh session (and CSRF token) for the signed-in user
        session["user"] = user.external_id
        return redirect(url_for("home"), 303)

    @app.post("/sign-out")
    def sign_out() -> Any:
        session.clear()
        return redirect(url_for("home"), 303)

    # --- onbehalf -----------------------------------------------------------------------------------------------

    def demo_accounts() -> list[Any]:
        """The signed-in user's linked accounts at the provider (none before their first connect session)."""
        try:
            return [a for a in onbehalf.accounts(external_id=g.user.external_id) if a.provider_id == PROVIDER]
        except UserNotFound:
            return []

    def own_account(account_id: str) -> Any:
        """One of the signed-in user's accounts, never another's: onbehalf answers for any user of the key."""
        account = next((a for a in demo_accounts() if a.id == account_id), None)
        if account is None:
            abort(404, "No such linked account.")
        return account

    def go_connect(**options: Any) -> Any:
        """Creates a connect session and sends the browser there (the URL is single use, valid 10 minutes)."""
        connect = onbehalf.connect_session(
            g.user.external_id, return_to=return_to, display_name=g.user.name, **options
        )
        return redirect(connect.url, 303)

    # --- onbehalf's webhooks ------------------------------------------------------------------------------------

    @app.post("/webhooks")
    def onbehalf_webhook() -> Any:
        """An event from onbehalf: answered 204 once verified and recorded (or already recorded: onbehalf sends an
        event again until it gets a 2xx), 400 with nothing stored when the signature does not hold."""
        if webhook is None:
            return {"error": "webhooks are not configured (ONBEHALF_WEBHOOK_SECRET)"}, 404
        try:
            # The body exactly as received: what was signed. The headers' names are compared in lower case.
            event = webhook.verify(request.get_data(), dict(request.headers.items()))
        except (WebhookVerificationError, ValueError) as e:
            # ValueError too: standardwebhooks raises it for a malformed signature list and a body that is not JSON.
            app.logger.warning("refused a webhook: %s", e)
            return {"error": "the webhook's signature does not verify"}, 400
        if not isinstance(event, dict):
            return {"error": "the webhook is not an event"}, 400
        # webhook-id is signed (and is the event's id): the same on every retry and redelivery.
        states.record(request.headers["webhook-id"], event)
        return "", 204

    def told_to_fix(wanted: str | None) -> LinkState | None:
        """The signed-in user's account that onbehalf's webhooks last said needs them (reconnect, consent), unless
        they also said another one (or this one) is active: known without asking onbehalf."""
        known = [s for s in states.of(g.user.external_id) if s.provider == PROVIDER and (not wanted or s.id == wanted)]
        if any(s.status == "active" for s in known):
            return None
        return next((s for s in known if s.status in TOLD), None)

    @app.post("/connect")
    @signed_in
    def connect() -> Any:
        account_id = request.form.get("account", "")
        if account_id:  # Reconnect (or grant more access to) this account
            return go_connect(mode="connect", account=own_account(account_id).id)
        return go_connect(mode="connect", provider=PROVIDER)

    @app.post("/manage")
    @signed_in
    def manage() -> Any:
        return go_connect(mode="manage")

    @app.get("/transfer")
    @signed_in
    def transfer() -> Any:
        return transfer_page(form={})

    def transfer_page(form: dict[str, str], problem: str | None = None, status: int = 200) -> Any:
        result = request.args.get("result")
        notice = None
        if result == "linked":
            notice = "Your Globus account is linked. Example Platform can now list your endpoints and start transfers."
        elif result == "denied":
            problem = "You did not allow access at Globus, so nothing was linked. You can try again."
        elif result == "failed":
            reason = request.args.get("reason") or "unknown"
            problem = f"Linking your Globus account did not work ({reason}). You can try again."
        wanted = request.args.get("account") or form.get("account")
        # Back from onbehalf with the account linked: onbehalf's webhook saying so may still be on its way.
        told = None if result == "linked" else told_to_fix(wanted)
        if told is not None:
            return render_template(
                "transfer.html", view="told", told=TOLD[told.status], reason=told.reason, account=told,
                notice=notice, problem=problem, form=form,
            ), status
        accounts = demo_accounts()
        account = (
            next((a for a in accounts if a.id == wanted), None)
            or next((a for a in accounts if a.status == "active"), None)
            or next((a for a in accounts if a.status in FIXABLE), None)
        )
        page: dict[str, Any] = {"notice": notice, "problem": problem, "account": account, "form": form}
        if account is None or account.status == "revoked":
            return render_template("transfer.html", view="connect", **page), status
        if account.status in FIXABLE:
            page["reason"] = account.status_reason
            return render_template("transfer.html", view="reconnect", **page), status
        try:
            endpoints = result_of(onbehalf.run_action(account, "endpoint_search", scope="my-endpoints"))
        except (NeedsReconnect, NeedsConsent) as e:
            page["reason"] = e.message
            return render_template("transfer.html", view="reconnect", **page), status
        except OnbehalfError as e:
            page["problem"] = f"Globus could not be asked right now: {e.message}"
            return render_template("transfer.html", view="unavailable", **page), 502
        page["endpoints"] = endpoints.get("endpoints", [])
        return render_template("transfer.html", view="linked", **page), status

    @app.post("/transfer")
    @signed_in
    def submit_transfer() -> Any:
        account = own_account(request.form.get("account", ""))
        form = {name: request.form.get(name, "").strip() for name in TRANSFER_FIELDS}
        form["account"] = account.id
        try:
            submission = result_of(onbehalf.run_action(account, "transfer", **form_params(form)))
        except (NeedsReconnect, NeedsConsent):
            return redirect(url_for("transfer", account=account.id), 303)  # the page offers Reconnect
        except Invalid as e:
            return transfer_page(form, problem=e.message, status=400)
        except OnbehalfError as e:
            return transfer_page(form, problem=f"The transfer was not submitted: {e.message}", status=502)
        flash(f"Transfer submitted: task {submission.get('task_id') or submission.get('id')}.")
        return redirect(url_for("transfer", account=account.id), 303)

    @app.errorhandler(OnbehalfError)
    def onbehalf_failed(e: OnbehalfError) -> Any:
        return render_template("error.html", message=f"onbehalf could not help just now: {e.message}"), 502

    @app.errorhandler(400)
    @app.errorhandler(404)
    def client_error(e: Any) -> Any:
        return render_template("error.html", message=e.description), e.code

    return app


def form_params(form: dict[str, str]) -> dict[str, str]:
    """The `transfer` action's parameters from the form (a ticked checkbox sends "on")."""
    params = {name: form[name] for name in TRANSFER_FIELDS if form.get(name) and name != "recursive"}
    if form.get("recursive"):
        params["recursive"] = "true"
    return params


def result_of(answer: Any) -> dict[str, Any]:
    """An action's result document (`run_action` answers with the API's `result` JSON)."""
    return answer if isinstance(answer, dict) else {}


def main() -> None:
    host, _, port = os.environ.get("PLATFORM_BIND", "127.0.0.1:5000").rpartition(":")
    if os.environ.get("PLATFORM_ACCESS_LOG", "1") == "0":
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    create_app().run(host=host or "127.0.0.1", port=int(port), threaded=True)


if __name__ == "__main__":
    main()
