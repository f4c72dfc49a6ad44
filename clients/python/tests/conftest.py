"""The real server for the integration tests: `target/release/onbehalf serve` on a free port with a fresh SQLite
database, the demo provider ("Demo Globus", id `demo`) on another, API keys from the CLI, a helper that links
demo accounts by driving the browser pages over HTTP, and a webhook receiver on 127.0.0.1 that records what
onbehalf delivers (the server may send webhooks to plain http:// on loopback, and retries within a second).

Without the binary the integration tests are skipped (say how to build it); with `ONBEHALF_REQUIRE_SERVER=1` a
missing binary fails them instead, which is what CI wants. `ONBEHALF_BINARY` names another build.

Tests that must break a server (stop it, lock its database, run a second instance on its database) start servers of
their own with the `spawn` fixture, so the session's server stays as the other tests expect it.
"""

from __future__ import annotations

import html
import json
import os
import re
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from onbehalf import Onbehalf

#: The repository root: clients/python/tests/ is three levels below it.
ROOT = Path(__file__).resolve().parents[3]
BINARY = Path(os.environ.get("ONBEHALF_BINARY") or ROOT / "target" / "release" / "onbehalf")
READY_TIMEOUT = 30.0

#: Where connect sessions return: never fetched (port 9 is discard), only the URL onbehalf sends the browser to is read.
RETURN_PREFIX = "http://127.0.0.1:9/return/"

#: The demo provider's identities, in the order its consent page offers them (src/demo/data.rs); the first four own
#: collections. Each test that links uses an identity of its own, so that switches aimed at one identity (revoked
#: grants, expired tokens) touch only that test; the webhook tests use the last two.
IDENTITIES = {
    "ada": "3b9c4a7e-6f21-4d0b-8a5e-1c2f7e9d0a11",
    "grace": "7e2d1f90-48ac-4b6e-b3d1-95c0a4e8f622",
    "alan": "c41a8e37-0d5b-4f9e-a26c-8b7f3e1d5a33",
    "katherine": "e95f2b6c-71d8-4a03-9e4f-3a6c0b8d2e44",
    "mary": "5d7a9c21-3e8f-4b60-a1d4-6f2b8e0c9a55",
    "dorothy": "a83e6d05-9b2c-4f71-8e3a-2c5d7f1b0e66",
    "hedy": "b2f4c8e1-5a3d-4e7f-9c60-7d1e3f5a9b77",
    "radia": "f6a1d3b9-2c7e-4f58-8b04-9e2a6c4d1f88",
}

# A second provider the key scoping can name (never contacted: no account of it is ever linked).
CONFIG = """\
# Written by the Python client's tests: keeps a developer's onbehalf.toml out of the run.
[providers.github]
kind = "github"
client_id = "python-client-tests"
client_secret = "not-a-real-secret"
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Linked:
    """The browser's way back to the platform after a connect link."""

    #: Where onbehalf sent the browser at the end (the platform's return_to, with the result in the query).
    location: str
    query: dict[str, str]
    #: Every (status, URL) the browser saw on the way, for assertions and failure messages.
    hops: list[tuple[int, str]] = field(default_factory=list)

    @property
    def account(self) -> str:
        assert self.query.get("result") == "linked", f"not linked: {self.location} via {self.hops}"
        return self.query["account"]


@dataclass
class LiveServer:
    """A running onbehalf and what the tests need to talk to it."""

    base_url: str
    #: The built-in demo provider's URL; "" when the server runs without it (`ONBEHALF_DEMO__ENABLED=false`).
    demo_url: str
    env: dict[str, str] = field(repr=False)
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    #: The SQLite database file (`database.url`); a second instance may be started on it.
    database: Path
    #: A key for the demo provider that may create connect sessions returning under RETURN_PREFIX.
    key: str = field(default="", repr=False)

    def cli(self, *args: str) -> str:
        """Runs the CLI against the server's database; returns its standard output."""
        done = subprocess.run(
            [str(BINARY), *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"onbehalf {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def apikey(self, *args: str, name: str | None = None) -> str:
        """Creates an API key (a unique name unless given) and returns its secret."""
        out = self.cli("apikey", "create", "--name", name or unique("py"), *args)
        found = re.search(r"key \(shown once, store it now\): (obk_\S+)", out)
        assert found, f"no key in the output of apikey create:\n{out}"
        return found.group(1)

    def webhook_add(self, url: str) -> tuple[str, str]:
        """Registers a webhook endpoint for every event; returns its id (`ep_...`) and signing secret (`whsec_...`)."""
        out = self.cli("webhook", "add", "--url", url, "--description", "Python client tests")
        endpoint = re.search(r"added webhook endpoint (ep_\w+)", out)
        secret = re.search(r"signing secret \(shown once, store it now\): (whsec_\S+)", out)
        assert endpoint and secret, f"no endpoint id or secret in the output of webhook add:\n{out}"
        return endpoint.group(1), secret.group(1)

    def client(self, key: str | None = None) -> Onbehalf:
        return Onbehalf(self.base_url, key or self.key, timeout=60)

    def demo(self, path: str, body: dict[str, Any] | None = None, *, method: str = "POST") -> None:
        """Flips a demo provider switch (src/demo/control.rs)."""
        response = httpx.request(method, f"{self.demo_url}/demo/control/{path}", json=body, timeout=10)
        assert response.status_code == 200, f"{method} /demo/control/{path}: {response.status_code} {response.text}"

    def demo_counters(self) -> dict[str, Any]:
        """What the demo provider has seen (src/demo/control.rs `counters`)."""
        response = httpx.get(f"{self.demo_url}/demo/control/counters", timeout=10)
        assert response.status_code == 200, f"GET /demo/control/counters: {response.status_code} {response.text}"
        counters: dict[str, Any] = response.json()
        return counters

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Stops the server (SIGTERM, then SIGKILL after `timeout` seconds); nothing listens on its ports after."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    # -- the browser ------------------------------------------------------------------------------------------------

    def browser(self) -> httpx.Client:
        """A browser: keeps cookies and follows nothing by itself (each step is looked at)."""
        return httpx.Client(follow_redirects=False, timeout=30)

    def confirm(self, browser: httpx.Client, url: str, hops: list[tuple[int, str]]) -> httpx.Response:
        """Opens a connect link as a browser does: `GET` shows onbehalf's confirmation page (which consumes nothing),
        and its button Continue posts the form back to the link from onbehalf's origin (the browser sends `Origin`),
        which consumes the link, starts the session and answers 303. Returns that answer, not followed."""
        shown = browser.get(url)
        hops.append((shown.status_code, str(shown.url)))
        confirmation = confirmation_page(shown)
        return self.post(browser, urljoin(str(shown.url), confirmation.action), confirmation.fields)

    def post(self, browser: httpx.Client, url: str, data: dict[str, str] | None = None) -> httpx.Response:
        """A form post from one of onbehalf's pages (same origin, as its Origin check wants)."""
        return browser.post(url, headers={"Origin": self.base_url}, data=data or {})

    def open_link(self, url: str, identity: str = "ada", decision: str = "allow") -> Linked:
        """Opens a connect link (mode connect) as a browser would: Continue on onbehalf's confirmation page, then the
        demo's consent page as `identity`; returns where onbehalf's last page sends the browser back to the platform
        (not fetched)."""
        hops: list[tuple[int, str]] = []
        with self.browser() as browser:
            response = self._follow(browser, self.confirm(browser, url, hops), hops)
            if isinstance(response, str):
                return _linked(response, hops)
            assert response.status_code == 200 and urlsplit(str(response.url)).netloc == urlsplit(self.demo_url).netloc, (
                f"expected the demo's consent page, got {response.status_code} at {response.url} via {hops}:\n"
                f"{response.text[:2000]}"
            )
            page = response.text
            request_id = _input(page, "request_id")
            identities = [html.unescape(v) for v in re.findall(r'name="identity" value="([^"]+)"', page)]
            sub = IDENTITIES[identity]
            assert sub in identities, f"{identity} is not offered on the consent page: {identities}"
            action = re.search(r'<form method="post" action="([^"]+)"', page)
            assert action, f"no form on the consent page:\n{page[:2000]}"
            decided = browser.post(
                urljoin(str(response.url), html.unescape(action.group(1))),
                data={"request_id": request_id, "identity": sub, "decision": decision},
            )
            assert decided.status_code == 303, f"the demo's decision answered {decided.status_code}: {decided.text[:500]}"
            back = self._follow(browser, decided, hops)
            assert isinstance(back, str), (
                f"onbehalf did not send the browser back to {RETURN_PREFIX}: {back.status_code} at {back.url} "
                f"via {hops}:\n{back.text[:2000]}"
            )
            return _linked(back, hops)

    def link(self, ob: Onbehalf, external_id: str, identity: str, **session: Any) -> str:
        """Links the demo account of `identity` to the platform user `external_id`; returns the account id."""
        link = ob.connect_session(
            external_id, return_to=f"{RETURN_PREFIX}linked", mode="connect", provider="demo", **session
        )
        return self.open_link(link.url, identity).account

    def _follow(
        self, browser: httpx.Client, response: httpx.Response, hops: list[tuple[int, str]]
    ) -> httpx.Response | str:
        """Follows redirects until a page; onbehalf's page that forwards to the platform ends it (its URL is returned,
        not fetched). A redirect to the platform fails: after a form post the browser's CSP `form-action` blocks it."""
        for _ in range(10):
            hops.append((response.status_code, str(response.url)))
            if response.is_redirect:
                location = urljoin(str(response.url), response.headers["location"])
                assert not location.startswith(RETURN_PREFIX), (
                    f"a redirect to the platform ({location}), which a browser blocks after a form post: {hops}"
                )
                response = browser.get(location)
                continue
            if response.status_code == 200 and REFRESH.search(response.text):
                location = forwarded_to(response)
                hops.append((0, location))
                if location.startswith(RETURN_PREFIX):
                    return location
                response = browser.get(location)
                continue
            return response
        pytest.fail(f"too many redirects: {hops}")


@dataclass
class Confirmation:
    """onbehalf's page at a fresh connect link: what it says and the form its Continue button posts."""

    heading: str
    text: str
    action: str
    fields: dict[str, str]


def confirmation_page(response: httpx.Response) -> Confirmation:
    """The confirmation page a fresh link shows (200, consuming nothing): a heading, a sentence and a form that
    posts back to the link with the button Continue."""
    page = response.text
    assert response.status_code == 200, (
        f"a fresh link answered {response.status_code} at {response.url}, not its confirmation page:\n{page[:2000]}"
    )
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    assert heading, f"no heading on the confirmation page:\n{page[:2000]}"
    form = re.search(r'<form\b[^>]*\bmethod="post"[^>]*\baction="([^"]+)"[^>]*>(.*?)</form>', page, re.S | re.I)
    assert form, f"no form posting on the confirmation page:\n{page[:2000]}"
    action = html.unescape(form.group(1))
    assert urljoin(str(response.url), action) == str(response.url).split("?")[0], (
        f"the form posts to {action}, not back to the link {response.url}"
    )
    buttons = [_text(label) for label in re.findall(r"<button\b[^>]*>(.*?)</button>", form.group(2), re.S)]
    assert "Continue" in buttons, f"no button Continue in the form:\n{form.group(0)}"
    fields = {
        html.unescape(name): html.unescape(value)
        for name, value in re.findall(r'<input[^>]*\bname="([^"]+)"[^>]*\bvalue="([^"]*)"', form.group(2))
    }
    body = re.sub(r"<(script|style|head)\b.*?</\1>", " ", page, flags=re.S)
    return Confirmation(heading=_text(heading.group(1)), text=_text(body), action=action, fields=fields)


def _text(markup: str) -> str:
    """The words of some HTML, as a reader sees them (tags and comments dropped, whitespace collapsed)."""
    words = html.unescape(re.sub(r"<!--.*?-->|<[^>]+>", " ", markup, flags=re.S))
    return " ".join(words.split())


#: onbehalf's page that moves the browser on to the platform (a redirect would be blocked after a form post).
REFRESH = re.compile(r'<meta http-equiv="refresh" content="0; url=([^"]*)"', re.I)


def forwarded_to(response: httpx.Response) -> str:
    """Where onbehalf's forwarding page sends the browser: 200 with a `refresh` and a link "Continue to <platform>"
    to the same URL; returns the URL (unescaped)."""
    page = response.text
    assert response.status_code == 200, f"{response.status_code} at {response.url}, not a forwarding page: {page[:500]}"
    refresh = REFRESH.search(page)
    assert refresh, f"no refresh on the page at {response.url}:\n{page[:2000]}"
    link = re.search(r'<a [^>]*href="([^"]*)"[^>]*>\s*Continue to [^<]+</a>', page)
    assert link, f"no link Continue to <platform> on the page at {response.url}:\n{page[:2000]}"
    assert link.group(1) == refresh.group(1), f"the link and the refresh differ:\n{page[:2000]}"
    return html.unescape(refresh.group(1))


def _input(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no {name} on the page:\n{page[:2000]}"
    return html.unescape(found.group(1))


def _linked(location: str, hops: list[tuple[int, str]]) -> Linked:
    query = {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}
    return Linked(location=location, query=query, hops=hops)


@dataclass(frozen=True)
class Delivery:
    """One request the webhook receiver got, as it came (header names lowercased)."""

    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        """The body's JSON object, unverified (to find a delivery; verify it before trusting it); {} if not one."""
        try:
            document = json.loads(self.body)
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}

    @property
    def external_id(self) -> str | None:
        data = self.event.get("data")
        user = data.get("user") if isinstance(data, dict) else None
        external_id = user.get("external_id") if isinstance(user, dict) else None
        return external_id if isinstance(external_id, str) else None

    def summary(self) -> str:
        return f"{self.path} {self.event.get('type')} {self.external_id} {self.headers.get('webhook-id')}"


class Receiver:
    """A webhook endpoint on 127.0.0.1 (an `http.server` in a thread): records every POST and answers 204."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._arrived = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-receiver", daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver._record(Delivery(path=self.path, headers=headers, body=body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows the deliveries when a wait fails

        return Handler

    def _record(self, delivery: Delivery) -> None:
        with self._arrived:
            self.deliveries.append(delivery)
            self._arrived.notify_all()

    def wait_for(self, what: str, matches: Callable[[Delivery], bool], timeout: float = 10.0) -> Delivery:
        """The first delivery that `matches`, waiting up to `timeout` seconds for it to arrive."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = next((d for d in self.deliveries if matches(d)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(d.summary() for d in self.deliveries) or "nothing"
                    pytest.fail(f"no webhook {what} within {timeout:g} s; the receiver got:\n{seen}")
                self._arrived.wait(left)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def require_binary() -> None:
    """Skips the test without the binary, or fails it with ONBEHALF_REQUIRE_SERVER=1."""
    if not BINARY.is_file():
        reason = f"{BINARY} is missing: build it with `cargo leptos build --release` to run the integration tests"
        if os.environ.get("ONBEHALF_REQUIRE_SERVER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def demo_entry(demo_url: str) -> str:
    """A `[providers.demo]` entry for the demo provider at `demo_url`, as the built-in one makes it
    (src/providers/presets.rs `demo`): for an instance without a demo of its own (`ONBEHALF_DEMO__ENABLED=false`)
    that serves the same deployment as the instance whose demo it is."""
    return (
        "\n[providers.demo]\n"
        'kind = "globus"\n'
        'display_name = "Demo Globus"\n'
        'client_id = "onbehalf-demo"\n'
        'client_secret = "demo-secret"\n'
        f'issuer = "{demo_url}"\n'
        f'api_base_urls = {{ "transfer.api.globus.org" = ["{demo_url}/v0.10/"], "auth.globus.org" = ["{demo_url}/v2/"] }}\n'
    )


def start_server(
    tmp: Path,
    *,
    database: Path | None = None,
    config: str = CONFIG,
    env: dict[str, str] | None = None,
    avoid: Collection[int] = (),
) -> LiveServer:
    """Starts `onbehalf serve` on free ports (none of `avoid`) with its files in `tmp`: a fresh database there, or
    `database` (another instance's: then both share it, and its development vault key next to it). `env` adds to or
    overrides the settings; with `ONBEHALF_DEMO__ENABLED=false` no demo provider runs. Returns once /readyz is 200."""
    require_binary()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "onbehalf.toml").write_text(config)
    taken = set(avoid)
    port = _free_port_but(taken)
    demo_port = _free_port_but(taken | {port})
    database = database or tmp / "onbehalf.db"
    # Nothing from the caller's ONBEHALF_* environment leaks in: the run depends on this file only.
    merged = {name: value for name, value in os.environ.items() if not name.startswith("ONBEHALF_")}
    merged.update(
        ONBEHALF_CONFIG=str(tmp / "onbehalf.toml"),
        ONBEHALF_SERVER__BIND=f"127.0.0.1:{port}",
        ONBEHALF_DATABASE__URL=f"sqlite://{database}",
        ONBEHALF_DEMO__BIND=f"127.0.0.1:{demo_port}",
        # Webhooks to the test's receiver (http://127.0.0.1:<port>): refused by default. The CLI enqueues `webhook
        # test` for the dispatcher's next look (every 50 ms here), and a failed delivery is retried within a second.
        ONBEHALF_WEBHOOKS__ALLOW_HTTP_LOOPBACK="true",
        ONBEHALF_WEBHOOKS__POLL_INTERVAL="50ms",
        ONBEHALF_WEBHOOKS__RETRY_BASE="200ms",
        RUST_LOG="warn",
    )
    merged.update(env or {})
    demo = merged.get("ONBEHALF_DEMO__ENABLED", "true").lower() != "false"
    log = tmp / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(BINARY), "serve"], cwd=ROOT, env=merged, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink
        )
    server = LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        demo_url=f"http://127.0.0.1:{demo_port}" if demo else "",
        env=merged,
        log=log,
        process=process,
        database=database,
    )
    try:
        _wait_ready(server)
    except BaseException:
        server.stop()
        raise
    return server


def _free_port_but(taken: Collection[int]) -> int:
    while True:
        port = free_port()
        if port not in taken:
            return port


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The real server for the whole session; skipped without the binary (unless ONBEHALF_REQUIRE_SERVER=1)."""
    require_binary()
    server = start_server(tmp_path_factory.mktemp("onbehalf"))
    try:
        server.key = server.apikey(
            "--provider", "demo", "--return-url", RETURN_PREFIX, "--platform-name", "Python Client Tests"
        )
        yield server
    finally:
        server.stop()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Starts servers of the test's own (`start_server`'s arguments), each with a demo key like the session's, and
    stops them all when the test ends."""
    started: list[LiveServer] = []

    def start(**kwargs: Any) -> LiveServer:
        server = start_server(tmp_path / f"server-{len(started)}", **kwargs)
        started.append(server)
        server.key = server.apikey(
            "--provider", "demo", "--return-url", RETURN_PREFIX, "--platform-name", "Python Client Tests"
        )
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop(timeout=5)


def _wait_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"onbehalf serve exited with {server.process.returncode}; its output:\n{server.stderr()}")
        try:
            response = httpx.get(f"{server.base_url}/readyz", timeout=2)
            if response.status_code == 200:
                return
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.1)
    pytest.fail(f"onbehalf did not answer /readyz with 200 within {READY_TIMEOUT:.0f} s ({last}); its output:\n"
                f"{server.stderr()}")


@pytest.fixture(scope="session")
def ob(live: LiveServer) -> Iterator[Onbehalf]:
    """A client with the demo key."""
    with live.client() as client:
        yield client
