"""A local stand-in for the Stripe API, reached through STRIPE_API_BASE.

It records every request, honours idempotency keys the way Stripe does (the same key
answers the same response again), and can be told to refuse the next calls to a path.
"""

import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    method: str
    path: str
    params: dict
    idempotency_key: str | None


@dataclass
class FakeStripe:
    requests: list[Recorded] = field(default_factory=list)
    objects: dict[str, list[dict]] = field(default_factory=dict)
    failures: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)
    _replies: dict[str, tuple[int, dict]] = field(default_factory=dict)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""
    # Caps the page size of GET /v1/events, so that a few events span several pages.
    events_page_size: int | None = None

    def fail(self, route: str, code: str, *, status: int = 400, times: int = 1,
             message: str = "Refused by the fake Stripe.") -> None:
        """Make the next `times` calls to `route` ("POST /v1/transfers") fail with `code`."""
        error = {"error": {"type": "invalid_request_error", "code": code, "message": message}}
        self.failures.setdefault(route, []).extend([(status, error)] * times)

    def calls(self, route: str) -> list[Recorded]:
        method, path = route.split(" ", 1)
        return [r for r in self.requests if r.method == method and r.path == path]

    # --- the API ---------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict, key: str | None):
        with self._lock:
            self.requests.append(Recorded(method, path, params, key))
            if key and key in self._replies:
                return self._replies[key]
            pending = self.failures.get(f"{method} {path}")
            reply = pending.pop(0) if pending else self._answer(method, path, params)
            if key and method == "POST":  # Stripe keeps errors under a key too
                self._replies[key] = reply
            return reply

    def _new(self, prefix: str, kind: str, params: dict) -> dict:
        item = {"id": f"{prefix}_{next(self._ids):06d}", "object": kind, **params}
        self.objects.setdefault(kind, []).append(item)
        return item

    def _answer(self, method: str, path: str, params: dict):
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/transfers":
            return 200, self._new("tr", "transfer", params)
        if method == "GET" and path == "/v1/transfers":
            group = params.get("transfer_group")
            found = [t for t in self.objects.get("transfer", [])
                     if group is None or t.get("transfer_group") == group]
            return 200, {"object": "list", "data": found, "has_more": False, "url": path}
        if len(parts) == 4 and parts[:2] == ["v1", "customers"] and parts[3] == \
                "balance_transactions":
            if method == "POST":
                return 200, self._new("cbtxn", "customer_balance_transaction",
                                      params | {"customer": parts[2]})
            found = [t for t in self.objects.get("customer_balance_transaction", [])
                     if t["customer"] == parts[2]]
            return 200, {"object": "list", "data": found, "has_more": False, "url": path}
        if method == "GET" and path == "/v1/events":
            return 200, self._events(params)
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "promotion_codes"]:
            found = [p for p in self.objects.get("promotion_code", []) if p["id"] == parts[2]]
            if found:
                return 200, found[0]
            return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                                   "message": f"No such promotion code: '{parts[2]}'"}}
        if method == "POST" and path == "/v1/accounts":
            return 200, self._new("acct", "account", params)
        if method == "POST" and path == "/v1/account_links":
            return 200, {"object": "account_link",
                         "url": f"https://connect.stripe.test/setup/{params.get('account')}"}
        return 404, {"error": {"type": "invalid_request_error", "message": f"no {path}"}}

    def _events(self, params: dict) -> dict:
        """Events (self.objects["event"]) newest first, as Stripe lists them: `created[gte]`
        filters, `limit` pages, `starting_after` continues after an id."""
        since = (params.get("created") or {}).get("gte", 0)
        found = sorted((e for e in self.objects.get("event", []) if e["created"] >= since),
                       key=lambda e: (-e["created"], e["id"]))
        after = params.get("starting_after")
        if after:
            at = next((i for i, e in enumerate(found) if e["id"] == after), len(found))
            found = found[at + 1:]
        limit = int(params.get("limit") or 10)
        limit = min(limit, self.events_page_size or limit)
        return {"object": "list", "data": found[:limit], "has_more": len(found) > limit,
                "url": "/v1/events"}


def _parse_form(body: str) -> dict:
    """Stripe's form encoding (a[b]=c) back into nested dicts, values as ints when numeric."""
    result: dict = {}
    for raw_key, values in parse_qs(body, keep_blank_values=True).items():
        keys = raw_key.replace("]", "").split("[")
        target = result
        for part in keys[:-1]:
            target = target.setdefault(part, {})
        value = values[-1]
        target[keys[-1]] = int(value) if value.lstrip("-").isdigit() else value
    return result


def serve(fake: FakeStripe):
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str):
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            params = _parse_form(body if method == "POST" else url.query)
            status, payload = fake.handle(method, url.path, params,
                                          self.headers.get("Idempotency-Key"))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{len(fake.requests)}")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 - http.server's naming
            self._reply("GET")

        def do_POST(self):  # noqa: N802
            self._reply("POST")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    # shutdown() waits until serve_forever next looks at its flag, once per poll_interval
    # (0.5 s by default): a short one makes each test's teardown prompt.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)
    thread.start()
    return server
