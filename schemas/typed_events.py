"""Typed views of provider payloads, defined as Avro schemas in ``schemas/typed/``.

A typed view is decoded from an event's parsed JSON payload against its schema: fields the
schema does not name are ignored (providers add fields all the time), optional fields take their
defaults, and a missing or mistyped required field raises TypedEventError naming the field's
path, e.g. ``stripe payment_intent: missing required field data.object.amount``. The result is
then checked with fastavro against the parsed schema, so a view is always a valid Avro datum of
its schema (and could be written with it).

The schemas evolve like the envelope: new fields get defaults, so data decoded under one version
is readable by the other (``schemas/history/`` keeps earlier versions; a test checks both ways).
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import expand_schema
from fastavro.validation import ValidationError, validate

from hookstream.errors import PayloadError

TYPED_DIR = Path(__file__).parent / "typed"


class TypedEventError(PayloadError):
    """The payload lacks a field its typed view requires, or has one of the wrong type."""


@dataclass(frozen=True)
class TypedView:
    """Which schema types the events of one provider whose type matches ``event_types``."""

    provider: str
    event_types: tuple[str, ...]
    """Globs over the event type (``*`` matches anything, dots and slashes included)."""
    schema_name: str
    """File stem in ``schemas/typed/``."""
    label: str
    """How errors name the view: ``stripe payment_intent``."""

    def matches(self, provider: str, event_type: str) -> bool:
        return provider == self.provider and any(fnmatch.fnmatchcase(event_type, p) for p in self.event_types)


# First match wins, so more specific entries come first.
TYPED_VIEWS: tuple[TypedView, ...] = (
    TypedView("stripe", ("payment_intent.*",), "stripe_payment_intent", "stripe payment_intent"),
    TypedView("stripe", ("customer.subscription.*",), "stripe_subscription", "stripe customer.subscription"),
    TypedView("github", ("push",), "github_push", "github push"),
    TypedView("github", ("pull_request", "pull_request.*"), "github_pull_request", "github pull_request"),
    TypedView("shopify", ("orders/delete",), "shopify_order_deleted", "shopify orders/delete"),
    TypedView("shopify", ("orders/*",), "shopify_order", "shopify orders"),
)


def typed_view(provider: str, event_type: str) -> TypedView | None:
    """The typed view for this provider and event type, if hookstream has one."""
    return next((v for v in TYPED_VIEWS if v.matches(provider, event_type)), None)


@cache
def load_typed_schema(name: str) -> dict[str, Any]:
    """A parsed schema from ``schemas/typed/<name>.avsc``."""
    return fastavro.parse_schema(json.loads((TYPED_DIR / f"{name}.avsc").read_text()))


@cache
def _expanded(name: str) -> dict[str, Any]:
    """The schema with every named-type reference inlined, for walking alongside a payload."""
    return expand_schema(json.loads((TYPED_DIR / f"{name}.avsc").read_text()))


class TypedRecord:
    """An Avro record of a typed view: fields by attribute (``event.typed.data.object.amount``) or
    by item (``record["object"]``). Maps are plain dicts, arrays plain lists."""

    __slots__ = ("_name", "_fields")

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_fields", fields)

    def __getattr__(self, field: str) -> Any:
        try:
            return self._fields[field]
        except KeyError:
            raise AttributeError(f"{self._name} has no field {field!r}") from None

    def __setattr__(self, field: str, value: Any) -> None:
        raise AttributeError(f"{self._name} is read-only")

    def __getitem__(self, field: str) -> Any:
        return self._fields[field]

    def __contains__(self, field: object) -> bool:
        return field in self._fields

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TypedRecord):
            return self._name == other._name and self._fields == other._fields
        return NotImplemented

    def __repr__(self) -> str:
        short = self._name.rsplit(".", 1)[-1]
        return f"{short}({', '.join(f'{k}={v!r}' for k, v in self._fields.items())})"

    @property
    def record_name(self) -> str:
        """The Avro record's full name, e.g. ``hookstream.typed.StripePaymentIntent``."""
        return self._name

    def to_dict(self) -> dict[str, Any]:
        """Plain data (dicts and lists): an Avro datum of the schema, and JSON-serialisable."""
        return {k: _plain(v) for k, v in self._fields.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, TypedRecord):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def decode_typed(provider: str, event_type: str, payload: Any) -> TypedRecord | None:
    """The typed view of ``payload``, or None when no view exists for this provider and type.

    Raises TypedEventError with the view's label and the field's path when the payload does not fit.
    """
    view = typed_view(provider, event_type)
    if view is None:
        return None
    return decode_with_schema(view.schema_name, payload, label=view.label)


def decode_with_schema(schema_name: str, payload: Any, *, label: str) -> TypedRecord:
    record = _project(_expanded(schema_name), payload, "", label)
    try:
        validate(record.to_dict(), load_typed_schema(schema_name), raise_errors=True)
    except ValidationError as exc:  # _project should have caught it; never pass a bad datum on
        raise TypedEventError(f"{label}: payload does not fit the schema: {exc}") from None
    return record


_MISSING = object()
_KINDS = {
    "string": "a string",
    "long": "an integer",
    "int": "an integer",
    "double": "a number",
    "float": "a number",
    "boolean": "true or false",
}


def _describe(value: Any) -> str:
    text = json.dumps(value, default=str)
    return f"{type(value).__name__} {text[:40]}{'…' if len(text) > 40 else ''}"


def _project(schema: Any, value: Any, path: str, label: str) -> Any:
    """``value`` (from JSON) shaped as an Avro datum of ``schema``; ``path`` names it in errors."""
    if isinstance(schema, list):  # a union; hookstream's views use [null, X] only
        if value is None:
            if "null" in schema:
                return None
            raise TypedEventError(f"{label}: field {path} is null but required")
        branches = [b for b in schema if b != "null"]
        if len(branches) != 1:
            raise TypedEventError(f"{label}: unsupported union at {path} (use [null, X])")
        return _project(branches[0], value, path, label)
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            if not isinstance(value, dict):
                raise TypedEventError(
                    f"{label}: field {path or '(payload)'} must be an object, got {_describe(value)}"
                )
            name = (
                schema["name"] if "." in schema["name"] else f"{schema.get('namespace', '')}.{schema['name']}"
            )
            fields: dict[str, Any] = {}
            for field in schema["fields"]:
                fname = field["name"]
                fpath = f"{path}.{fname}" if path else fname
                raw = value.get(fname, _MISSING)
                if raw is _MISSING or raw is None:
                    if "default" in field:
                        fields[fname] = copy.deepcopy(field["default"])
                        continue
                    if raw is None:
                        fields[fname] = _project(field["type"], None, fpath, label)
                        continue
                    raise TypedEventError(f"{label}: missing required field {fpath}")
                fields[fname] = _project(field["type"], raw, fpath, label)
            return TypedRecord(name, fields)
        if kind == "array":
            if not isinstance(value, list):
                raise TypedEventError(f"{label}: field {path} must be a list, got {_describe(value)}")
            return [_project(schema["items"], v, f"{path}[{i}]", label) for i, v in enumerate(value)]
        if kind == "map":
            if not isinstance(value, dict):
                raise TypedEventError(f"{label}: field {path} must be an object, got {_describe(value)}")
            return {k: _project(schema["values"], v, f"{path}.{k}", label) for k, v in value.items()}
        return _project(kind, value, path, label)  # {"type": "long"} and friends
    return _primitive(schema, value, path, label)


def _primitive(kind: str, value: Any, path: str, label: str) -> Any:
    if kind == "null":
        if value is not None:
            raise TypedEventError(f"{label}: field {path} must be null, got {_describe(value)}")
        return None
    if value is None:
        raise TypedEventError(f"{label}: field {path} is null but required")
    ok = {
        "string": isinstance(value, str),
        "long": isinstance(value, int) and not isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31,
        "double": isinstance(value, (int, float)) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }
    if kind not in ok:
        raise TypedEventError(f"{label}: unsupported Avro type {kind!r} at {path}")
    if not ok[kind]:
        raise TypedEventError(f"{label}: field {path} must be {_KINDS[kind]}, got {_describe(value)}")
    return float(value) if kind in ("double", "float") else value
