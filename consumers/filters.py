"""Payload filters: which events a consumer wants, by what they carry.

A filter is a JSON object (a TOML table) over an event's document: ``body`` (the parsed payload),
``headers`` (names lower-cased) and the envelope fields ``event_id``, ``source``, ``provider``,
``event_type``, ``ordering_key``, ``received_at``, ``created_at`` (ISO 8601 strings), ``late``,
``verified`` and ``content_type``.

    {"body.type": {"$in": ["payment_intent.succeeded", "charge.refunded"]},
     "body.data.object.amount": {"$gte": 1000},
     "$or": [{"body.livemode": true}, {"headers.x-test": {"$exists": false}}]}

- A key is a path, its parts separated by dots (``body.data.object.id``); a nested table is the
  same as its dotted path. A part that is a number indexes an array (``body.items.0.sku``).
- A value is an operator table (``{"$gt": 5}``) or a plain value (short for ``$eq``).
- Where a path crosses an array, every element is looked at, and a condition holds when any value
  reached holds it; a value that is an array holds it when any of its elements does.
- Conditions side by side must all hold. ``$and``, ``$or`` and ``$not`` combine them, at the top
  or on one field.

Mismatched types never raise: ``{"$gt": 5}`` does not hold for a string, ``$startsWith`` does not
hold for a number, a missing field holds only ``$exists: false``, ``$neq`` and ``$nin``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Found = list[Any]
"""The values a path reaches in a document (empty: the path is missing)."""

_MISSING = object()


class FilterError(ValueError):
    """A filter that cannot be read; ``at`` is the dotted key where, ``operator`` the one at fault."""

    def __init__(self, at: str, message: str, operator: str = "") -> None:
        super().__init__(message)
        self.at = at
        self.operator = operator
        self.message = message

    def __str__(self) -> str:
        return f"{self.at}: {self.message}" if self.at else self.message


FIELD_OPERATORS = (
    "$eq",
    "$neq",
    "$in",
    "$nin",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$exists",
    "$startsWith",
    "$endsWith",
)
LOGICAL_OPERATORS = ("$and", "$or", "$not")
OPERATORS = FIELD_OPERATORS + LOGICAL_OPERATORS


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _candidates(found: Found) -> list[Any]:
    """The values a field condition is tried on: each value reached, and each element of an array."""
    out: list[Any] = []
    for value in found:
        out.append(value)
        if isinstance(value, list):
            out.extend(value)
    return out


def _resolve(document: Any, parts: tuple[str, ...]) -> Found:
    current = [document]
    for part in parts:
        following: Found = []
        for value in current:
            if isinstance(value, dict):
                step = value.get(part, _MISSING)
                if step is not _MISSING:
                    following.append(step)
            elif isinstance(value, list):
                if part.isdigit():
                    index = int(part)
                    if index < len(value):
                        following.append(value[index])
                else:
                    following.extend(item[part] for item in value if isinstance(item, dict) and part in item)
        current = following
        if not current:
            break
    return current


Condition = Callable[[Any], bool]
"""A compiled condition over a document (or, for a field, the values its path reached)."""


def _ordered(op: Callable[[Any, Any], bool], operand: Any) -> Callable[[Found], bool]:
    numeric = _is_number(operand)

    def holds(found: Found) -> bool:
        for value in _candidates(found):
            if numeric and _is_number(value) or not numeric and isinstance(value, str):
                try:
                    if op(value, operand):
                        return True
                except (TypeError, OverflowError):
                    continue
        return False

    return holds


def _field_operator(name: str, operand: Any, at: str) -> Callable[[Found], bool]:
    def fail(message: str) -> FilterError:
        return FilterError(at, f"{name}: {message}", name)

    if name == "$eq":
        return lambda found: any(_same(v, operand) for v in _candidates(found))
    if name == "$neq":
        return lambda found: not any(_same(v, operand) for v in _candidates(found))
    if name in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise fail(f"expected a list of values, got {operand!r}")
        options = list(operand)

        def within(found: Found) -> bool:
            return any(_same(v, o) for v in _candidates(found) for o in options)

        return within if name == "$in" else (lambda found: not within(found))
    if name in ("$gt", "$gte", "$lt", "$lte"):
        if not (_is_number(operand) or isinstance(operand, str)):
            raise fail(f"expected a number or a string, got {operand!r}")
        op = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}[name]
        return _ordered(op, operand)
    if name == "$exists":
        if not isinstance(operand, bool):
            raise fail(f"expected true or false, got {operand!r}")
        return lambda found: bool(found) is operand
    if name in ("$startsWith", "$endsWith"):
        if not isinstance(operand, str):
            raise fail(f"expected a string, got {operand!r}")
        method = str.startswith if name == "$startsWith" else str.endswith
        return lambda found: any(isinstance(v, str) and method(v, operand) for v in _candidates(found))
    raise AssertionError(name)


def _unknown(key: str, at: str) -> FilterError:
    return FilterError(at, f"unknown operator {key!r} (operators: {', '.join(OPERATORS)})", key)


def _field(spec: Any, at: str) -> Callable[[Found], bool]:
    """A condition on the values one path reached."""
    if not isinstance(spec, dict):
        return _field_operator("$eq", spec, at)
    if not spec:
        raise FilterError(at, 'an empty table: give an operator ({"$exists": true}) or a value')
    operators = [k for k in spec if isinstance(k, str) and k.startswith("$")]
    if not operators:  # a nested table: its keys continue the path
        nested = _document(spec, at)
        return lambda found: any(nested(value) for value in found)
    if len(operators) != len(spec):
        plain = next(k for k in spec if k not in operators)
        raise FilterError(
            f"{at}.{plain}", f"mixes a field with operators ({', '.join(operators)}); nest one or the other"
        )
    checks: list[Callable[[Found], bool]] = []
    for key, operand in spec.items():
        where = f"{at}.{key}"
        if key in FIELD_OPERATORS:
            checks.append(_field_operator(key, operand, at))
        elif key == "$not":
            inner = _field(operand, where)
            checks.append(lambda found, inner=inner: not inner(found))
        elif key in ("$and", "$or"):
            parts = [_field(item, f"{where}[{i}]") for i, item in enumerate(_conditions(key, operand, at))]
            combine = all if key == "$and" else any
            checks.append(lambda found, parts=parts, combine=combine: combine(p(found) for p in parts))
        else:
            raise _unknown(key, at)
    return lambda found: all(check(found) for check in checks)


def _conditions(key: str, operand: Any, at: str) -> list[Any]:
    if not isinstance(operand, list) or not operand:
        raise FilterError(at, f"{key}: expected a non-empty list of conditions, got {operand!r}", key)
    return operand


def _document(spec: Any, at: str) -> Condition:
    """A condition on a whole document (or a nested object of it)."""
    if not isinstance(spec, dict):
        raise FilterError(at, f"expected a table of paths and conditions, got {spec!r}")
    checks: list[Condition] = []
    for key, value in spec.items():
        if not isinstance(key, str) or not key:
            raise FilterError(at, f"{key!r} is not a path")
        where = f"{at}.{key}" if at else key
        if key in ("$and", "$or"):
            parts = [
                _document(item, f"{where}[{i}]") for i, item in enumerate(_conditions(key, value, where))
            ]
            combine = all if key == "$and" else any
            checks.append(lambda doc, parts=parts, combine=combine: combine(p(doc) for p in parts))
        elif key == "$not":
            inner = _document(value, where)
            checks.append(lambda doc, inner=inner: not inner(doc))
        elif key.startswith("$"):
            if key in FIELD_OPERATORS:
                raise FilterError(
                    where, f'{key} applies to a field: write {{"some.path": {{"{key}": ...}}}}', key
                )
            raise _unknown(key, at)
        else:
            parts = tuple(key.split("."))
            if not all(parts):
                raise FilterError(where, "a path cannot have an empty part (two dots, or a dot at an end)")
            field = _field(value, where)
            checks.append(lambda doc, parts=parts, field=field: field(_resolve(doc, parts)))
    return lambda doc: all(check(doc) for check in checks)


@dataclass(frozen=True)
class PayloadFilter:
    """A compiled filter; ``matches`` never raises, whatever the document."""

    spec: Mapping[str, Any]
    _condition: Condition

    @classmethod
    def parse(cls, spec: Any) -> PayloadFilter:
        """FilterError names the dotted key and the operator at fault."""
        return cls(spec, _document(spec, ""))

    def matches(self, document: Any) -> bool:
        try:
            return bool(self._condition(document))
        except RecursionError:  # a document nested deeper than Python's stack
            return False


def check_filter(spec: Any) -> None:
    """For config checks: raises FilterError for a filter that cannot be read."""
    PayloadFilter.parse(spec)


def event_document(raw: Any, payload: Any) -> dict[str, Any]:
    """The document a filter sees for one event (``raw`` a RawEvent, ``payload`` its parsed body)."""
    return {
        "body": payload,
        "headers": {str(k).lower(): v for k, v in raw.headers.items()},
        "event_id": raw.event_id,
        "source": raw.source,
        "provider": raw.provider,
        "event_type": raw.event_type,
        "ordering_key": raw.ordering_key,
        "received_at": raw.received_at.isoformat(),
        "created_at": raw.created_at.isoformat() if raw.created_at else None,
        "late": raw.late,
        "verified": raw.verified,
        "content_type": raw.content_type,
    }
