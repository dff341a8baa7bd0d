"""The ingest app: ``POST /webhooks/{source}``, health, readiness and metrics.

Checks run in this order, each with its own status and a JSON body
``{"error": "<code>", "detail": "..."}``: unknown source (404) → IP allowlist (403) →
body size, read incrementally (413) → signature over the raw bytes (401) → payload parse
(400) → event-type filter → publish to Kafka (413 when the record would exceed
``kafka.max_message_bytes``; 503 with Retry-After when not acknowledged in time). A 2xx is
answered only after Kafka acknowledged the record. A configured source's refusals are offered to
``ingest.refused`` on the way out (its ``record_refused``), which never holds the answer back.

The webhook route is served straight from the ASGI scope (``IngestApp``): Starlette's
per-request machinery (middleware, router, Request and Response objects) is much of a no-op
Starlette endpoint's CPU per request, and ingest's request path is CPU-bound. Everything
else (health, readiness, metrics, 404 and 405 answers, lifespan) is ordinary Starlette, and so
is the webhook route too once middleware is added to the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import ipaddress
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from hookstream.config import Config, IPNetwork, SourceConfig
from hookstream.errors import PayloadError, PublishError, RecordTooLarge, VerificationError
from hookstream.ingest.metrics import IngestMetrics
from hookstream.ingest.providers import EventDescription, Handshake, Provider
from hookstream.ingest.providers.base import content_hash_id, json_pointer
from hookstream.ingest.publisher import Publisher
from hookstream.ingest.refused import RefusalRecorder
from hookstream.schemas.delivery import Delivery, Headers, parse_payload
from hookstream.schemas.envelope import SCHEMA_VERSION, encode_raw_record, routing_headers

log = logging.getLogger("hookstream.ingest")

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
    "content-length", "host",
}  # fmt: skip
CREDENTIAL_HEADERS = {"authorization", "proxy-authorization", "cookie", "x-gitlab-token"}


_JSON_HEADER = (b"content-type", b"application/json")


class Answer:
    """A response as the two ASGI messages, sent directly: a JSON body (orjson), or none.

    The webhook route sends it itself; on the Starlette routes it is returned like a Response
    (Starlette calls it as an ASGI app).
    """

    __slots__ = ("status", "body", "headers")

    def __init__(self, status: int, content: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = b"" if content is None else orjson.dumps(content)
        self.headers = [] if status == 204 else [(b"content-length", str(len(self.body)).encode())]
        if content is not None:
            self.headers.append(_JSON_HEADER)
        for name, value in (headers or {}).items():
            self.headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.send(send)


def refusal(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Answer:
    """The one shape of every refusal."""
    return Answer(status, {"error": code, "detail": detail}, headers)


def handshake_answer(handshake: Handshake) -> Answer:
    # A body of None (e.g. Discord's webhook events): the status and no body at all.
    return Answer(handshake.status, handshake.body)


@dataclass
class Source:
    config: SourceConfig
    provider: Provider

    @property
    def signs_url(self) -> bool:
        """Twilio and Square sign the URL they called; building it costs, so only for them."""
        return "public_url" in type(self.provider).options


def _in_networks(address: str, networks: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


_RANDOM = bytearray()
os.register_at_fork(after_in_child=_RANDOM.clear)  # a forked child draws its own


def new_ingest_id() -> str:
    """A random (version 4) UUID as text; what ``str(uuid.uuid4())`` gives, for a third of the cost.

    Its 16 bytes come from the OS's CSPRNG as ``uuid4``'s do, read 4 KiB at a time: one system
    call per 256 ids rather than one each.
    """
    if not _RANDOM:
        _RANDOM.extend(os.urandom(4096))
    b = _RANDOM[-16:]
    del _RANDOM[-16:]
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def peer_address(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else ""


def client_address(scope: Scope, headers: Headers, trusted: tuple[IPNetwork, ...]) -> str:
    """The peer address; X-Forwarded-For is believed only when the peer is a trusted proxy.

    The right-most address not belonging to a trusted proxy is the client: anything to its
    left was written by the client itself and proves nothing.
    """
    peer = peer_address(scope)
    if not trusted or not _in_networks(peer, trusted):
        return peer
    forwarded = [a.strip() for a in headers.get("x-forwarded-for", "").split(",") if a.strip()]
    for address in reversed(forwarded):
        if not _in_networks(address, trusted):
            return address
    return forwarded[0] if forwarded else peer


def public_url(scope: Scope, headers: Headers, source: SourceConfig, from_trusted_proxy: bool) -> str:
    """The URL as the provider called it, for URL-signing schemes (Twilio, Square)."""
    url = URL(scope=scope)
    query = url.query
    if source.public_url:
        return source.public_url + (f"?{query}" if query else "")
    if from_trusted_proxy:
        proto = headers.get("x-forwarded-proto")
        host = headers.get("x-forwarded-host")
        if proto:
            url = url.replace(scheme=proto.split(",")[0].strip())
        if host:
            url = url.replace(netloc=host.split(",")[0].strip())
    return str(url)


def resolve_override(spec: str, delivery: Delivery, payload: Any) -> str | None:
    if not spec:
        return None
    if spec.startswith("header:"):
        return delivery.headers.get(spec[7:]) or None
    value = json_pointer(payload, spec)
    return None if value is None or isinstance(value, (dict, list)) else str(value)


def describe(source: Source, delivery: Delivery, payload: Any) -> EventDescription:
    """The provider's description, with the source's overrides and the fallbacks applied."""
    base = source.provider.describe(delivery, payload)
    c = source.config
    if (
        base.event_id
        and base.event_type
        and base.ordering_key
        and not (c.event_id or c.event_type or c.ordering_key)
    ):
        return base  # nothing to override or fill in
    event_id = resolve_override(c.event_id, delivery, payload) or base.event_id
    event_id = event_id or content_hash_id(c.name, delivery.body)
    event_type = resolve_override(c.event_type, delivery, payload) or base.event_type or "unknown"
    ordering_key = resolve_override(c.ordering_key, delivery, payload) or base.ordering_key or event_id
    return EventDescription(event_id, event_type, ordering_key, base.created_at_ms)


def accepts(patterns: tuple[str, ...], event_type: str) -> bool:
    return "*" in patterns or any(fnmatch.fnmatchcase(event_type, p) for p in patterns)


@dataclass(slots=True)
class _Published:
    """A record handed to the publisher: what the answer needs once Kafka acknowledged it."""

    waiter: asyncio.Future[None]
    started: float
    source: str
    event_id: str
    ingest_id: str
    handshake: Handshake | None


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int, declared: str | None) -> bytes:
    """The body, refused (BodyTooLarge) once it exceeds ``limit``: up front when the declared
    Content-Length says so, else as soon as the chunks read add up to more. ClientDisconnect
    when the sender went away before the whole body arrived."""
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            raise ClientDisconnect
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class IngestApp(Starlette):
    """Starlette, except that ``POST /webhooks/{source}`` goes straight to ``webhook``.

    The route is also registered with the router (same handler), which answers the other
    methods with 405, serves it under a ``root_path``, and serves it behind any middleware
    added with ``add_middleware``: the short cut is taken only when the app has none.
    """

    def __init__(self, webhook: Callable[[Scope, Receive, Send, str], Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and not self.user_middleware
            and not scope.get("root_path")
        ):
            path: str = scope["path"]
            if path.startswith("/webhooks/") and len(path) > 10 and "/" not in path[10:]:
                scope["app"] = self
                await self.webhook(scope, receive, send, path[10:])
                return
        await super().__call__(scope, receive, send)


class _WebhookRoute:
    """The webhook handler as the router's endpoint (an ASGI app, so no Request is built)."""

    def __init__(self, webhook: Callable[[Scope, Receive, Send, str], Any]) -> None:
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.webhook(scope, receive, send, scope["path_params"]["source"])


def create_app(
    config: Config,
    *,
    publisher: Publisher | None = None,
    clock: Callable[[], float] = time.time,
    connect_timeout: float = 0.0,
) -> Starlette:
    """Build the app. ``connect_timeout`` > 0 waits that long for Kafka at startup."""
    metrics = IngestMetrics()
    publisher = publisher or Publisher(config.kafka, progress_interval_ms=config.ingest.progress_interval_ms)
    metrics.watch_batches(publisher)
    trusted = config.ingest.trusted_proxies
    retry_after = str(config.ingest.retry_after_seconds)
    unbuilt = [name for name in config.sources if name not in config.providers]
    if unbuilt:
        raise ValueError(
            f"no provider object for source(s) {', '.join(unbuilt)}: load the config with "
            "rules=hookstream.stage_rules.stage_rules(), which builds them"
        )
    sources = {name: Source(s, config.providers[name]) for name, s in config.sources.items()}
    recorder = RefusalRecorder(config)

    def refuse(
        c: SourceConfig,
        headers: list[tuple[str, str]],
        body: bytes,
        remote: str,
        status: int,
        code: str,
        detail: str,
    ) -> Answer:
        """A refusal of a configured source's request, offered to the recorder on the way."""
        recorder.offer(c, status, code, detail, headers, body, remote)
        return refusal(status, code, detail)

    async def webhook(scope: Scope, receive: Receive, send: Send, name: str) -> None:
        try:
            outcome = await handle(scope, receive, name)
            answer = outcome if type(outcome) is Answer else await acknowledged(outcome)
        except ClientDisconnect:
            log.info("sender went away before its body arrived; nothing published", extra={"source": name})
            return
        except Exception:
            log.exception("unexpected error handling a webhook; nothing acknowledged", extra={"source": name})
            answer = refusal(500, "internal_error", "unexpected error; the ingest log has the details")
        metrics.requests.inc(name if name in sources else "_unknown", str(answer.status))
        await answer.send(send)

    async def handle(scope: Scope, receive: Receive, name: str) -> Answer | _Published:
        """The answer to the request, or the record it published, pending Kafka's acknowledgement.

        Waiting for the acknowledgement is left to ``webhook``: a request suspends there, not
        in two coroutines more that would each be resumed.
        """
        source = sources.get(name)
        if source is None:
            return refusal(404, "unknown_source", f"no source named {name!r} is configured")
        c = source.config
        # Decoded once, for the size check, the signature check and the envelope.
        header_pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        headers = Headers(header_pairs)
        remote = client_address(scope, headers, trusted)
        if c.allowed_ips and not _in_networks(remote, c.allowed_ips):
            detail = f"{remote} is not in this source's allowed_ips"
            return refuse(c, header_pairs, b"", remote, 403, "ip_not_allowed", detail)
        try:
            body = await read_body(receive, c.max_body_bytes, headers.get("content-length"))
        except BodyTooLarge:
            detail = f"body exceeds {c.max_body_bytes} bytes"
            return refuse(c, header_pairs, b"", remote, 413, "body_too_large", detail)
        url = ""
        if source.signs_url:
            url = public_url(scope, headers, c, bool(trusted) and _in_networks(peer_address(scope), trusted))
        delivery = Delivery.of(body, headers, url=url)
        received_at = clock()
        try:
            matched = source.provider.verify(delivery, now=received_at)
        except VerificationError as exc:
            metrics.verification_failures.inc(name, exc.code)
            log.info(
                "refused delivery",
                extra={"source": name, "reason": exc.code, "detail": exc.detail, "remote": remote},
            )
            return refuse(c, header_pairs, body, remote, 401, exc.code, exc.detail)
        metrics.secret_matched.inc(name, str(matched))
        try:
            payload = parse_payload(delivery)
        except PayloadError as exc:
            return refuse(c, header_pairs, body, remote, 400, "invalid_payload", str(exc))
        handshake = source.provider.handshake(delivery, payload)
        if handshake is not None and not handshake.publish:
            return handshake_answer(handshake)
        description = describe(source, delivery, payload)
        if not accepts(c.events, description.event_type):
            metrics.filtered.inc(name, description.event_type)
            if c.on_filtered == "reject":
                detail = f"event type {description.event_type!r} is not accepted by this source"
                return refuse(c, header_pairs, body, remote, 400, "event_type_not_accepted", detail)
            return Answer(
                200,
                {
                    "status": "filtered",
                    "event_id": description.event_id,
                    "event_type": description.event_type,
                },
            )
        event_id = description.event_id
        ingest_id = new_ingest_id()
        received_ms = int(received_at * 1000)
        created_ms = description.created_at_ms or None  # 0: the provider gave none
        record = {
            "schema_version": SCHEMA_VERSION,
            "ingest_id": ingest_id,
            "event_id": event_id,
            "source": name,
            "provider": c.provider,
            "event_type": description.event_type,
            "ordering_key": description.ordering_key,
            "received_at": received_ms,
            "created_at": created_ms,
            "remote_addr": remote,
            "headers": {
                k: ("[redacted]" if k in CREDENTIAL_HEADERS else v)
                for k, v in header_pairs
                if k not in HOP_BY_HOP
            },
            "content_type": delivery.content_type,
            "body": body,
            "verified": True,
            "matched_secret": matched,
            "late": False,
        }
        value = encode_raw_record(record)
        started = time.perf_counter()
        try:
            headers = routing_headers(event_id, description.ordering_key, received_ms, created_ms)
            waiter = publisher.enqueue(event_id.encode(), value, headers, received_ms)
        except RecordTooLarge as exc:
            return refuse(c, header_pairs, body, remote, 413, "event_too_large", str(exc))
        except PublishError as exc:
            return unavailable(name, event_id, exc)
        return _Published(waiter, started, name, event_id, ingest_id, handshake)

    async def acknowledged(published: _Published) -> Answer:
        try:
            await published.waiter
        except PublishError as exc:
            return unavailable(published.source, published.event_id, exc)
        metrics.publish_latency.observe(time.perf_counter() - published.started)
        metrics.published.inc(published.source)
        if published.handshake is not None:
            return handshake_answer(published.handshake)
        return Answer(
            200, {"status": "accepted", "event_id": published.event_id, "ingest_id": published.ingest_id}
        )

    def unavailable(name: str, event_id: str, exc: PublishError) -> Answer:
        log.warning("publish failed", extra={"source": name, "event_id": event_id, "error": str(exc)})
        return refusal(503, "kafka_unavailable", str(exc), headers={"Retry-After": retry_after})

    async def healthz(request: Request) -> Answer:
        return Answer(200, {"status": "ok"})

    async def readyz(request: Request) -> Answer:
        if publisher.ready:
            return Answer(200, {"status": "ready"})
        return refusal(503, "not_ready", "not connected to Kafka yet", headers={"Retry-After": retry_after})

    async def metrics_endpoint(request: Request) -> Response:
        metrics.ready.set(1 if publisher.ready else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def http_error(request: Request, exc: Exception) -> Answer:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return refusal(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await publisher.start()
        await recorder.start()
        if connect_timeout > 0 and not await publisher.wait_ready(connect_timeout):
            log.warning(
                "Kafka not reachable yet; answering 503 until it is",
                extra={"bootstrap": config.kafka.bootstrap_servers},
            )
        yield
        await recorder.stop()
        await publisher.stop()

    app = IngestApp(
        webhook,
        routes=[
            Route("/webhooks/{source}", _WebhookRoute(webhook), methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.publisher = publisher
    app.state.sources = sources
    app.state.refusals = recorder
    return app
