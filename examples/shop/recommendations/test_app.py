"""Tests of recommendations against a stand-in catalog on a loopback port.

Run: python3 -m unittest discover -s examples/shop/recommendations
(with the venv's python, the spans are real; without the SDK, the app still serves)."""

import json
import os
import threading
import unittest
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PRODUCTS = [
    {"id": "sku-espresso", "category": "coffee", "price_cents": 2490},
    {"id": "sku-decaf", "category": "coffee", "price_cents": 1390},
    {"id": "sku-limited", "category": "coffee", "price_cents": 3200},
    {"id": "sku-mug", "category": "accessories", "price_cents": 1400},
]
SEEN = []


class Catalog(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        SEEN.append((self.path, self.headers.get("traceparent")))
        body = json.dumps(PRODUCTS).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


catalog = serve(Catalog)
os.environ["CONWAY_UPSTREAM_CATALOG"] = f"http://127.0.0.1:{catalog.server_address[1]}"
import app  # noqa: E402 -- reads the environment set above

app.setup_tracing()
shop = serve(app.Handler)
BASE = f"http://127.0.0.1:{shop.server_address[1]}"


def get(path, headers=None):
    request = urllib.request.Request(BASE + path, headers=headers or {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


class Recommendations(unittest.TestCase):
    def test_same_category_first_then_closest_price(self):
        status, body = get("/api/recommendations?product=sku-espresso&limit=3")
        self.assertEqual(status, 200)
        ids = [p["id"] for p in body["recommendations"]]
        self.assertEqual(ids, ["sku-limited", "sku-decaf", "sku-mug"])

    def test_path_form_and_unknown_product(self):
        status, body = get("/api/recommendations/sku-mug?limit=1")
        self.assertEqual((status, len(body["recommendations"])), (200, 1))
        status, body = get("/api/recommendations/nope")
        self.assertEqual((status, body["error"]["code"]), (404, "not_found"))

    def test_health(self):
        self.assertEqual(get("/health")[1]["status"], "ok")

    @unittest.skipUnless(app.OTEL, "needs the OpenTelemetry SDK (the build step's venv)")
    def test_the_callers_trace_goes_on_to_catalog(self):
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        get("/api/recommendations?product=sku-mug", {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        sent = SEEN[-1][1]
        self.assertTrue(sent.startswith(f"00-{trace_id}-"), sent)
        self.assertNotIn("00f067aa0ba902b7", sent)


if __name__ == "__main__":
    unittest.main()
