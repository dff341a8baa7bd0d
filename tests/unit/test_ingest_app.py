"""The webhook route's own ASGI handling (no Starlette per-request machinery): the edges that the
integration tests against a broker do not reach, and the app as an ASGI app among others
(servers' detection, middleware, mounting). Nothing here is published anywhere."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import httpx
import pytest

from hookstream.config import parse_config
from hookstream.ingest.app import create_app
from hookstream.ingest.providers import provider_class
from hookstream.ingest.providers.github import GitHub
from hookstream.ingest.publisher import Publisher
from hookstream.stage_rules import stage_rules

CONFIG = parse_config(
    {
        "kafka": {"bootstrap_servers": "127.0.0.1:1"},
        "sources": {"gh": {"provider": "github", "secrets": ["s"]}},
    },
    rules=stage_rules(),
)
BODY = b'{"repository":{"full_name":"acme/api"}}'
HEADERS = provider_class("github")(["s"]).sign(BODY, timestamp=0) | {
    "X-GitHub-Event": "push",
    "X-GitHub-Delivery": "d-1",
}


class BrokenPublisher(Publisher):
    """A bug between the signature check and Kafka's acknowledgement."""

    def enqueue(
        self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], received_ms=None
    ) -> asyncio.Future[None]:
        raise RuntimeError("boom")


class BrokenLaterPublisher(Publisher):
    """A bug that surfaces while the request waits for Kafka's acknowledgement."""

    def enqueue(
        self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], received_ms=None
    ) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(waiter.set_exception, RuntimeError("boom"))
        return waiter


def client(app, root_path: str = "") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app, root_path=root_path), base_url="http://test")


@pytest.mark.parametrize("broken", [BrokenPublisher, BrokenLaterPublisher])
async def test_an_unexpected_error_is_a_500_with_a_json_reason_and_never_a_2xx(caplog, broken):
    app = create_app(CONFIG, publisher=broken(CONFIG.kafka))
    async with client(app) as c:
        r = await c.post("/webhooks/gh", content=BODY, headers=HEADERS)
        assert r.status_code == 500
        assert r.json()["error"] == "internal_error"
        assert "boom" not in r.text  # details go to the log, not to the sender
        metrics = (await c.get("/metrics")).text
    assert 'hookstream_ingest_requests_total{source="gh",status="500"} 1.0' in metrics
    errors = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info and "boom" in str(errors[0].exc_info[1])


async def test_under_a_root_path_the_router_serves_the_same_handler():
    app = create_app(CONFIG, publisher=BrokenPublisher(CONFIG.kafka))
    async with client(app, root_path="/hooks") as c:
        r = await c.post("/hooks/webhooks/nope", content=BODY, headers=HEADERS)
        assert (r.status_code, r.json()["error"]) == (404, "unknown_source")
        r = await c.post("/hooks/webhooks/gh", content=BODY + b" ", headers=HEADERS)
        assert (r.status_code, r.json()["error"]) == (401, "signature_mismatch")
        r = await c.get("/hooks/webhooks/gh")
        assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")


async def test_paths_the_webhook_route_does_not_match_get_the_routers_answers():
    app = create_app(CONFIG, publisher=BrokenPublisher(CONFIG.kafka))
    async with client(app) as c:
        for path in ("/webhooks/", "/webhooks/gh/extra", "/webhook/gh"):
            r = await c.post(path, content=BODY, headers=HEADERS)
            assert r.status_code == 404 and r.json()["error"] == "not_found", path
        r = await c.post("/webhooks/nope", content=BODY, headers=HEADERS)
        assert (r.status_code, r.json()["error"]) == (404, "unknown_source")


async def test_the_starlette_routes_answer_json_with_their_headers():
    # A publisher never started: not connected to Kafka.
    app = create_app(CONFIG, publisher=BrokenPublisher(CONFIG.kafka))
    async with client(app) as c:
        r = await c.get("/healthz")
        assert (r.status_code, r.json()) == (200, {"status": "ok"})
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.content)
        r = await c.get("/readyz")
        assert (r.status_code, r.json()["error"]) == (503, "not_ready")
        assert r.headers["retry-after"] == str(CONFIG.ingest.retry_after_seconds)
        r = await c.delete("/webhooks/gh")
        assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")
        assert r.headers["allow"] == "POST"


class AckingPublisher(Publisher):
    """Kafka acknowledges every record at once."""

    def enqueue(
        self, key: bytes, value: bytes, headers: list[tuple[str, bytes]], received_ms=None
    ) -> asyncio.Future[None]:
        waiter = asyncio.get_running_loop().create_future()
        waiter.set_result(None)
        return waiter


class Tagging:
    """A pure ASGI middleware: remembers each request's scope and tags the response."""

    def __init__(self, app, scopes: list) -> None:
        self.app, self.scopes = app, scopes

    async def __call__(self, scope, receive, send) -> None:
        async def tagged(message) -> None:
            if message["type"] == "http.response.start":
                message = message | {"headers": [*message["headers"], (b"x-tagged", b"yes")]}
            await send(message)

        self.scopes.append(scope)
        await self.app(scope, receive, tagged)


def test_servers_detect_the_app_as_asgi_3_by_themselves():
    """No ``interface`` option: uvicorn and hypercorn take an app for ASGI 3 when its
    ``__call__`` is a coroutine function, and otherwise for ASGI 2 (uvicorn) or WSGI (hypercorn)."""
    import uvicorn
    from hypercorn.utils import is_asgi

    app = create_app(CONFIG, publisher=BrokenPublisher(CONFIG.kafka))
    config = uvicorn.Config(app, proxy_headers=False, log_config=None)
    config.load()
    assert config.interface == "asgi3" and config.loaded_app is app
    assert is_asgi(app)


async def test_a_source_s_provider_is_built_once_at_load_and_serves_its_requests():
    built = []

    class CountedGitHub(GitHub):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    rules = replace(stage_rules(), providers={"github": CountedGitHub})
    config = parse_config({"sources": {"gh": {"provider": "github", "secrets": ["s"]}}}, rules=rules)
    app = create_app(config, publisher=BrokenPublisher(config.kafka))
    async with client(app) as c:
        assert (await c.post("/webhooks/gh", content=BODY, headers=HEADERS)).status_code == 500
    assert built == [config.providers["gh"]]


def test_a_config_loaded_without_the_stages_rules_cannot_serve_its_sources():
    config = parse_config({"sources": {"gh": {"provider": "github", "secrets": ["s"]}}})
    with pytest.raises(
        ValueError, match=r"no provider object for source\(s\) gh: load the config with rules="
    ):
        create_app(config, publisher=BrokenPublisher(config.kafka))


async def test_middleware_added_to_the_app_wraps_the_webhook_route_too():
    app = create_app(CONFIG, publisher=AckingPublisher(CONFIG.kafka))
    scopes: list = []
    app.add_middleware(Tagging, scopes=scopes)
    async with client(app) as c:
        r = await c.post("/webhooks/gh", content=BODY, headers=HEADERS)
        assert (r.status_code, r.json()["status"], r.headers["x-tagged"]) == (200, "accepted", "yes")
        r = await c.post("/webhooks/gh", content=BODY + b" ", headers=HEADERS)
        assert (r.status_code, r.json()["error"], r.headers["x-tagged"]) == (401, "signature_mismatch", "yes")
        r = await c.get("/healthz")
        assert (r.status_code, r.headers["x-tagged"]) == (200, "yes")
    assert len(scopes) == 3 and all(scope["app"] is app for scope in scopes)


async def test_the_app_wrapped_from_outside_answers_and_sets_scope_app_as_starlette_does():
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Mount

    app = create_app(CONFIG, publisher=AckingPublisher(CONFIG.kafka))
    scopes: list = []
    async with client(Tagging(app, scopes)) as c:
        r = await c.post("/webhooks/gh", content=BODY, headers=HEADERS)
        assert (r.status_code, r.json()["status"], r.headers["x-tagged"]) == (200, "accepted", "yes")
    assert scopes[0]["app"] is app  # the webhook route's own short cut sets it too

    outer = Starlette(routes=[Mount("/hooks", app=app)], middleware=[Middleware(Tagging, scopes=scopes)])
    async with client(outer) as c:
        r = await c.post("/hooks/webhooks/gh", content=BODY, headers=HEADERS)
        assert (r.status_code, r.json()["status"], r.headers["x-tagged"]) == (200, "accepted", "yes")
        r = await c.post("/hooks/webhooks/nope", content=BODY, headers=HEADERS)
        assert (r.status_code, r.json()["error"]) == (404, "unknown_source")
    assert scopes[-1]["app"] is app  # the mounted app, as Starlette sets it
