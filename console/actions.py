"""The console's actions: redrive a consumer's dead letters, replay one event to one consumer.

Off unless ``console.actions = true`` (which needs ``console.token``). Each needs the CSRF token
(or the Bearer header), runs the consumers' own redrive or replay here, in the console's
process, and is logged with who asked and what came of it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from hookstream.consumers.errors import ConsumerBusy, ConsumerError
from hookstream.consumers.redrive import list_dead_letters, redrive
from hookstream.consumers.registry import resolve_consumers
from hookstream.consumers.replay import replay

log = logging.getLogger("hookstream.console")


async def _checked(request: Request) -> tuple[Any, str, Any]:
    """The console, the consumer's name and the form, once the caller may act on it."""
    console = request.app.state.console
    if not console.config.console.actions:
        raise HTTPException(
            403, "actions are off: set console.actions = true (with console.token) to enable them"
        )
    form = await request.form()
    if not console.guard.csrf_ok(request, form):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
    name = request.path_params["name"]
    if name not in console.config.consumers:
        raise HTTPException(404, f"no consumer named {name!r} in the config")
    return console, name, form


def _record(console: Any, request: Request, consumer: str, action: str, result: str) -> dict[str, Any]:
    entry = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "who": console.guard.who(request),
        "consumer": consumer,
        "action": action,
        "result": result,
    }
    console.action_log.appendleft(entry)
    log.info("console action", extra=entry)
    return entry


def _answer(request: Request, entry: dict[str, Any], data: dict[str, Any]) -> Response:
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({**entry, **data})
    return RedirectResponse(f"/consumers/{entry['consumer']}", 303)


async def redrive_dead_letters(request: Request) -> Response:
    """``dry_run=1``: how many pending dead letters a redrive would run; else run them all."""
    console, name, form = await _checked(request)
    kafka = console.config.kafka
    if form.get("dry_run"):
        pending = sum(e.pending for e in await list_dead_letters(kafka, name))
        return JSONResponse({"consumer": name, "dry_run": True, "pending": pending})
    [spec] = resolve_consumers(console.config, [name])
    lines: list[str] = []
    report = await redrive(kafka, spec, progress=lines.append)
    entry = _record(console, request, name, "redrive", report.summary(name))
    return _answer(request, entry, {"handled": report.handled, "dead_lettered": report.dead_lettered})


async def replay_event(request: Request) -> Response:
    console, name, form = await _checked(request)
    event_id = str(form.get("event_id", "")).strip()
    if not event_id:
        raise HTTPException(400, "event_id: which event to replay")
    [spec] = resolve_consumers(console.config, [name])
    try:
        report = await replay(console.config.kafka, spec, event_ids={event_id}, progress=lambda line: None)
    except ConsumerBusy as exc:
        _record(console, request, name, f"replay {event_id}", f"refused: {exc}")
        raise HTTPException(409, str(exc)) from None
    except ConsumerError as exc:
        _record(console, request, name, f"replay {event_id}", f"failed: {exc}")
        raise HTTPException(404, str(exc)) from None
    console.replayed.add((name, event_id))
    entry = _record(console, request, name, f"replay {event_id}", report.summary(name))
    return _answer(request, entry, {"handled": report.handled, "dead_lettered": report.dead_lettered})


def routes() -> list[Route]:
    return [
        Route("/consumers/{name}/redrive", redrive_dead_letters, methods=["POST"]),
        Route("/consumers/{name}/replay", replay_event, methods=["POST"]),
    ]
