"""One webhook request as it arrived: raw body, case-insensitive headers, and its parsed payload.

Ingest verifies and describes a ``Delivery``; the ``RawEvent`` envelope keeps its body, headers
and content type byte-exact, so a consumer parses the payload from the envelope with the same
``parse_payload`` that ingest used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from hookstream.errors import PayloadError


class Headers(Mapping[str, str]):
    """Immutable, case-insensitive headers. Repeated names keep the first value."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = items.items() if isinstance(items, Mapping) else items
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in pairs:
            self._items.setdefault(name.lower(), (name, value))

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def get(self, name: str, default: Any = None) -> Any:
        # Mapping.get would go through __getitem__ and a KeyError per absent header.
        item = self._items.get(name.lower())
        return default if item is None else item[1]

    def __iter__(self) -> Iterator[str]:
        return (original for original, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items


@dataclass(frozen=True)
class Delivery:
    """One webhook request exactly as it arrived."""

    body: bytes
    headers: Headers
    url: str = ""
    """The URL as the provider called it (scheme, host, port, path, query); URL-signing schemes need it."""
    content_type: str = ""

    @classmethod
    def of(
        cls, body: bytes, headers: Mapping[str, str] | Iterable[tuple[str, str]], url: str = ""
    ) -> Delivery:
        h = headers if isinstance(headers, Headers) else Headers(headers)
        return cls(body=body, headers=h, url=url, content_type=h.get("content-type", ""))


def parse_payload(delivery: Delivery) -> Any:
    """JSON by default; form posts (Twilio, Slack commands) as a dict of first values."""
    ctype = delivery.content_type.split(";")[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        try:
            text = delivery.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"form body is not UTF-8: {exc}") from None
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}
    try:
        return orjson.loads(delivery.body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError(f"body is not valid JSON: {exc}") from None
