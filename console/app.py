"""The console app: routes, the token check, and one place that turns errors into answers.

Every page is a template over a dict; with ``Accept: application/json`` the same dict is the
answer. Templates autoescape everything: what came from a provider is only ever text.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from hookstream.config import Config
from hookstream.errors import HookstreamError
from hookstream.kafka.browse import TopicBrowser
from hookstream.schemas.envelope import decode_raw_event

from . import actions, auth, overview, refused, tail
from .consumers import consumer_state, event_status
from .events import BadQuery, EventFilter, format_cursor, newest_events, parse_cursor
from .present import event_detail, event_summary

log = logging.getLogger("hookstream.console")

HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
"""Defence in depth: even markup that escaped the templates could run no script of its own."""
OPEN_PATHS = ("/login", "/static/")


def wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def error_answer(request: Request, status: int, code: str, detail: str) -> Response:
    if wants_json(request) or request.method != "GET":
        return JSONResponse({"error": code, "detail": detail}, status)
    page = request.app.state.console
    return page.render(request, "error.html", {"status": status, "error": code, "detail": detail}, status)


class TokenCheck:
    """Every route but the login form and the static files needs the token (when one is set)."""

    def __init__(self, app: ASGIApp, guard: auth.Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.guard.required or scope["path"].startswith(OPEN_PATHS):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        if self.guard.how(request) is not None:
            await self.app(scope, receive, send)
            return
        if wants_json(request) or request.method != "GET":
            response: Response = JSONResponse(
                {
                    "error": "unauthorized",
                    "detail": "send Authorization: Bearer <console.token>, or sign in at /login",
                },
                401,
                headers={"www-authenticate": "Bearer"},
            )
        else:
            response = RedirectResponse("/login?" + urlencode({"next": request.url.path}), 303)
        await response(scope, receive, send)


class Console:
    """What the routes share: the config, one topic browser, the templates, the action log."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.guard = auth.Guard(config.console.token)
        self.browser: TopicBrowser | None = None
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.templates.filters["tojson_pretty"] = lambda v: orjson.dumps(
            v, option=orjson.OPT_INDENT_2
        ).decode()
        self.action_log: deque[dict[str, Any]] = deque(maxlen=200)
        self.replayed: set[tuple[str, str]] = set()

    def render(self, request: Request, name: str, data: dict[str, Any], status: int = 200) -> Response:
        html = self.templates.get_template(name).render(
            **data,
            nav=request.url.path,
            csrf=self.guard.csrf_token(),
            actions=self.config.console.actions,
            signed_in=self.guard.required and self.guard.how(request) == "cookie",
            urlencode=urlencode,
        )
        return HTMLResponse(html, status, headers={"content-security-policy": CSP})

    def answer(self, request: Request, name: str, data: dict[str, Any]) -> Response:
        if wants_json(request):
            return JSONResponse(data)
        return self.render(request, name, data)


def console_of(request: Request) -> Console:
    return request.app.state.console


def browser_of(request: Request) -> TopicBrowser:
    browser = console_of(request).browser
    assert browser is not None, "the lifespan starts it"
    return browser


# -- login ----------------------------------------------------------------------------------------
async def login_form(request: Request) -> Response:
    c = console_of(request)
    return c.render(
        request, "login.html", {"failed": False, "next": _safe_next(request.query_params.get("next", "/"))}
    )


async def login(request: Request) -> Response:
    c = console_of(request)
    form = await request.form()
    target = _safe_next(str(form.get("next", "/")))
    if not c.guard.required:
        return RedirectResponse(target, 303)
    if not c.guard.token_matches(str(form.get("token", ""))):
        log.warning(
            "console sign-in refused", extra={"client": request.client.host if request.client else "?"}
        )
        return c.render(request, "login.html", {"failed": True, "next": target}, 401)
    response = RedirectResponse(target, 303)
    response.set_cookie(
        auth.COOKIE,
        c.guard.session_value(),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/login", 303)
    response.delete_cookie(auth.COOKIE)
    return response


def _safe_next(target: str) -> str:
    """Only a path on this console: never an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


# -- pages ----------------------------------------------------------------------------------------
async def overview_page(request: Request) -> Response:
    c = console_of(request)
    data = await overview.overview(c.config, browser_of(request))
    return c.answer(request, "overview.html", data)


async def events_page(request: Request) -> Response:
    c = console_of(request)
    wanted = EventFilter.from_query(request.query_params)
    cursor = parse_cursor(request.query_params.get("before", ""))
    started = time.perf_counter()
    page = await newest_events(
        browser_of(request),
        c.config.kafka.raw_topic,
        wanted,
        cursor=cursor or None,
        limit=c.config.console.page_size,
        scan_limit=c.config.console.scan_limit,
    )
    query = wanted.as_query()
    data = {
        "topic": c.config.kafka.raw_topic,
        "filters": query,
        "events": [event_summary(m.event, m.partition, m.offset, m.timestamp_ms) for m in page.matches],
        "scanned": page.scanned,
        "total": page.total,
        "undecodable": page.undecodable,
        "next": format_cursor(page.next_cursor) if page.next_cursor else None,
        "next_url": ("/events?" + urlencode({**query, "before": format_cursor(page.next_cursor)}))
        if page.next_cursor
        else None,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
        "sources": sorted(c.config.sources),
    }
    return c.answer(request, "events.html", data)


async def event_page(request: Request) -> Response:
    c = console_of(request)
    partition, offset = request.path_params["partition"], request.path_params["offset"]
    record = await _raw_record(request, partition, offset)
    try:
        event = decode_raw_event(record.value, record.headers)
    except Exception as exc:
        raise HTTPException(
            422, f"{c.config.kafka.raw_topic} {partition}:{offset} is not a hookstream event: {exc}"
        ) from None
    data = event_detail(event, record)
    data["delivery"] = await event_status(
        c.config, browser_of(request), event.event_id, record.timestamp, c.replayed
    )
    data["replay_command"] = {
        name: f"hookstream replay --config {_config_arg(c.config)} {name} --event-id {_shell_quote(event.event_id)}"
        for name in c.config.consumers
    }
    data["permalink"] = f"/events/{partition}/{offset}"
    return c.answer(request, "event.html", data)


async def event_raw(request: Request) -> Response:
    """The body exactly as the provider sent it, for download (never rendered by the browser)."""
    record = await _raw_record(request, request.path_params["partition"], request.path_params["offset"])
    event = decode_raw_event(record.value, record.headers)
    return Response(
        event.body,
        media_type="application/octet-stream",
        headers={"content-disposition": "attachment", "x-content-type-options": "nosniff"},
    )


async def _raw_record(request: Request, partition: int, offset: int) -> Any:
    c = console_of(request)
    browser = browser_of(request)
    topic = c.config.kafka.raw_topic
    tps = [tp for tp in await browser.partitions(topic) if tp.partition == partition]
    if not tps:
        raise HTTPException(404, f"{topic} has no partition {partition}")
    read = await browser.read({tps[0]: (offset, offset + 1)})
    records = read[tps[0]]
    if not records or records[0].offset != offset:
        raise HTTPException(
            404, f"{topic} holds no record at {partition}:{offset} (out of range or removed by retention)"
        )
    return records[0]


async def consumers_page(request: Request) -> Response:
    c = console_of(request)
    rows = [await consumer_state(c.config, browser_of(request), name) for name in c.config.consumers]
    return c.answer(request, "consumers.html", {"consumers": rows, "action_log": list(c.action_log)})


async def consumer_page(request: Request) -> Response:
    c = console_of(request)
    name = request.path_params["name"]
    if name not in c.config.consumers:
        raise HTTPException(404, f"no consumer named {name!r} in the config")
    data = await consumer_state(c.config, browser_of(request), name)
    data["action_log"] = [a for a in c.action_log if a["consumer"] == name]
    return c.answer(request, "consumer.html", data)


def _config_arg(config: Config) -> str:
    return _shell_quote(str(config.path)) if config.path else "F"


def _shell_quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


# -- errors ---------------------------------------------------------------------------------------
async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {
        400: "bad_request",
        401: "unauthorized",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        422: "unprocessable",
    }
    return error_answer(request, exc.status_code, codes.get(exc.status_code, "error"), str(exc.detail))


async def on_bad_query(request: Request, exc: Exception) -> Response:
    return error_answer(request, 400, "bad_query", str(exc))


async def on_hookstream_error(request: Request, exc: Exception) -> Response:
    log.warning("console request failed", extra={"path": request.url.path, "error": str(exc)})
    return error_answer(request, 503, "unavailable", str(exc))


def create_app(config: Config) -> Starlette:
    console = Console(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with TopicBrowser(config.kafka, "console") as browser:
            console.browser = browser
            yield
            console.browser = None

    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", overview_page),
        Route("/events", events_page),
        Route("/events/{partition:int}/{offset:int}", event_page),
        Route("/events/{partition:int}/{offset:int}/raw", event_raw),
        Route("/consumers", consumers_page),
        Route("/consumers/{name}", consumer_page),
        *actions.routes(),
        *refused.routes(),
        *tail.routes(),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: on_http_error,
            BadQuery: on_bad_query,
            HookstreamError: on_hookstream_error,
        },
    )
    app.state.console = console
    app.add_middleware(TokenCheck, guard=console.guard)
    return app
