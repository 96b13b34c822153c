"""recommendations: products to suggest beside another, for the shop.

Written in Python with the standard library's HTTP server, to show that Conway serves
every team's tools alike. It calls `catalog` only through the mesh -- the listener
Conway gives it for that dependency (CONWAY_UPSTREAM_CATALOG), or else
`http://catalog/...` through the `http_proxy` that urllib honours (with `no_proxy`
keeping local addresses direct) -- answers GET /health, logs JSON lines on stdout, and
traces with the official OpenTelemetry SDK: each request is a server span, child of the
caller's `traceparent`, and the call to catalog carries it on. Spans go to
OTEL_EXPORTER_OTLP_ENDPOINT over OTLP/HTTP (protobuf).

Routes:
  GET /api/recommendations?product=ID[&limit=N]   (or /api/recommendations/ID)
  GET /health
"""

import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SERVICE = os.environ.get("CONWAY_SERVICE", "recommendations")
INSTANCE = os.environ.get("CONWAY_INSTANCE", f"{SERVICE}-{os.getpid()}")
CATALOG = os.environ.get("CONWAY_UPSTREAM_CATALOG", "http://catalog").rstrip("/")
PREFIX = "/api/recommendations"

try:  # The SDK comes from the virtual environment the build step makes.
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind, Status, StatusCode

    OTEL = True
except ImportError:  # Still serves (and propagates nothing) without it, e.g. in tests.
    OTEL = False


def log(message, **fields):
    """One JSON line on stdout."""
    line = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "INFO"}
    line.update(fields)
    line["message"] = message
    print(json.dumps(line), flush=True)


def setup_tracing():
    """The tracer provider; spans are exported when an OTLP endpoint is set."""
    if not OTEL:
        return None
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": os.environ.get("OTEL_SERVICE_NAME", SERVICE), "service.instance.id": INSTANCE}
        )
    )
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # The exporter reads OTEL_EXPORTER_OTLP_ENDPOINT and adds /v1/traces.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider


class CatalogError(Exception):
    """The catalog could not be read."""


def fetch_products(headers):
    """Every product, from catalog through the mesh, carrying the trace context."""
    request = urllib.request.Request(f"{CATALOG}/api/catalog/products", headers={"accept": "application/json"})
    span = None
    if OTEL:
        span = trace.get_tracer(SERVICE).start_span("GET catalog", kind=SpanKind.CLIENT)
        carrier = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        for name, value in carrier.items():
            request.add_header(name, value)
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            if span:
                span.set_attribute("http.response.status_code", response.status)
            return json.load(response)
    except urllib.error.HTTPError as error:
        if span:
            span.set_attribute("http.response.status_code", error.code)
            span.set_status(Status(StatusCode.ERROR, f"catalog answered {error.code}"))
        raise CatalogError(f"catalog answered {error.code}") from error
    except (OSError, ValueError) as error:
        if span:
            span.set_status(Status(StatusCode.ERROR, str(error)))
        raise CatalogError(f"catalog unreachable: {error}") from error
    finally:
        if span:
            span.end()


def recommend(products, product_id, limit):
    """Up to `limit` products for someone looking at `product_id`: the same category
    first, then those closest in price. None if the product is unknown."""
    by_id = {p["id"]: p for p in products}
    if product_id is None:
        return sorted(products, key=lambda p: -p["price_cents"])[:limit]
    seen = by_id.get(product_id)
    if seen is None:
        return None
    others = [p for p in products if p["id"] != product_id]
    others.sort(key=lambda p: (p["category"] != seen["category"], abs(p["price_cents"] - seen["price_cents"]), p["id"]))
    return others[:limit]


class Handler(BaseHTTPRequestHandler):
    server_version = "shop-recommendations/1.0"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 -- the base class's name
        pass  # One JSON line per request instead, in handle_one().

    def do_GET(self):  # noqa: N802 -- the base class's name
        started = time.monotonic()
        parent = propagate.extract({k.lower(): v for k, v in self.headers.items()}) if OTEL else None
        url = urllib.parse.urlsplit(self.path)
        span = None
        trace_id = ""
        if OTEL:
            span = trace.get_tracer(SERVICE).start_span(
                f"GET {url.path}", context=parent, kind=SpanKind.SERVER, attributes={"url.path": url.path}
            )
            trace_id = format(span.get_span_context().trace_id, "032x")
        try:
            if OTEL:
                with trace.use_span(span, end_on_exit=False):
                    status, body = self.route(url)
            else:
                status, body = self.route(url)
        except Exception as error:  # noqa: BLE001 -- answer 500, log, and go on serving
            status, body = 500, {"error": {"code": "internal", "message": str(error)}}
        if span:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, body.get("error", {}).get("message", "")))
            span.end()
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if url.path != "/health":
            log(
                "request",
                method="GET",
                path=url.path,
                status=status,
                duration_ms=round((time.monotonic() - started) * 1000, 3),
                trace_id=trace_id,
            )

    def route(self, url):
        if url.path == "/health":
            return 200, {"status": "ok", "service": SERVICE, "instance": INSTANCE}
        if url.path != PREFIX and not url.path.startswith(PREFIX + "/"):
            return 404, {"error": {"code": "not_found", "message": f"no route {url.path}"}}
        query = urllib.parse.parse_qs(url.query)
        product = url.path[len(PREFIX) + 1 :] or (query.get("product") or [None])[0]
        try:
            limit = max(1, min(20, int((query.get("limit") or ["4"])[0])))
        except ValueError:
            return 400, {"error": {"code": "bad_request", "message": "limit must be a number"}}
        try:
            products = fetch_products({})
        except CatalogError as error:
            return 503, {"error": {"code": "unavailable", "message": str(error)}}
        chosen = recommend(products, product, limit)
        if chosen is None:
            return 404, {"error": {"code": "not_found", "message": f"no product {product!r}"}}
        return 200, {"product": product, "recommendations": chosen}


def main():
    provider = setup_tracing()
    port = int(os.environ.get("PORT", "0"))
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(
        "listening",
        service=SERVICE,
        instance=INSTANCE,
        address=f"127.0.0.1:{server.server_address[1]}",
        opentelemetry=OTEL,
        catalog=CATALOG,
    )
    server.serve_forever()
    server.server_close()
    if provider is not None:
        provider.shutdown()
    log("stopped", service=SERVICE, instance=INSTANCE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
