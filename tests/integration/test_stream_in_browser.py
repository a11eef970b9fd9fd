"""A web page opens the notifications stream the way a browser can: a stream ticket asked for
with the bearer token (a CORS request), then an EventSource with ``?ticket=``. Debian's headless
Chromium (driven by Playwright) runs the page; the API under gunicorn (gevent, as deployed) is
fed by the real notifications worker through the real Kafka and Redis."""
from __future__ import annotations

import shutil
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from kafka import KafkaProducer
from playwright.sync_api import sync_playwright

from bench.support import gunicorn
from shared.auth import mint_token
from shared.clock import now_ms, rfc3339
from shared.events import encode, new_event

BROWSERS = ("chromium-headless-shell", "chromium")

PAGE = b"""<!doctype html><meta charset="utf-8"><title>bell</title>
<script>
window.received = [];
window.failures = [];
async function listen(api, token) {
  const issued = await fetch(api + "/v1/notifications/stream-ticket",
                             {method: "POST", headers: {Authorization: "Bearer " + token}});
  if (issued.status !== 201) { window.failures.push("ticket: " + issued.status); return; }
  const {ticket} = await issued.json();
  const stream = new EventSource(api + "/v1/notifications/stream?ticket=" + encodeURIComponent(ticket));
  stream.addEventListener("open", () => { window.opened = true; });
  stream.addEventListener("notification", (e) => window.received.push({data: JSON.parse(e.data), id: e.lastEventId}));
  stream.addEventListener("error", () => window.failures.push("stream error, state " + stream.readyState));
}
</script>"""


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_origin():
    """The page's own origin: another port than the API's, so its calls are cross-origin."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture(scope="module")
def api(settings, workers, page_origin):
    workers("notifications")
    with gunicorn("notifications", settings.replace(cors_origins=page_origin), workers=1) as base:
        yield base


@pytest.fixture(scope="module")
def browser_page():
    executable = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    assert executable, f"no headless Chromium on PATH ({' or '.join(BROWSERS)}: apt-get install chromium-headless-shell)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_a_pages_event_source_opened_with_a_stream_ticket_receives_a_notification(api, page_origin, browser_page,
                                                                                  settings, unique):
    grace, ada = unique("grace"), unique("ada")
    page = browser_page
    page.goto(page_origin)
    page.evaluate("([api, token]) => listen(api, token)", [api, mint_token(grace, settings.jwt_secret)])
    page.wait_for_function("window.opened === true || window.failures.length > 0", timeout=20_000)
    assert page.evaluate("window.failures") == []

    post_id = f"p~{uuid.uuid4().hex[:12]}"
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap.split(","), acks="all")
    try:
        event = new_event("feed", "post.liked", {"post_id": post_id, "author": grace, "actor": ada,
                                                 "at": rfc3339(now_ms())})
        producer.send(settings.topic("feed.events"), key=event.key.encode(), value=encode(event)).get(10)
    finally:
        producer.close()
    # The session's notifications consumer may still be working through what earlier tests sent.
    page.wait_for_function("window.received.length > 0", timeout=60_000)

    [received] = page.evaluate("window.received")
    assert (received["data"]["type"], received["data"]["actors"], received["data"]["object"]) == \
        ("post_liked", [ada], post_id)
    assert received["id"]  # the event id EventSource would send back as Last-Event-ID
    assert page.evaluate("window.failures") == []
