"""Provider payloads that consumer tests share, unit and integration alike."""

from __future__ import annotations

import time
from typing import Any


def stripe_payment_intent(
    event_id: str, intent_id: str, *, amount: int | None = 2000, **extra: Any
) -> dict[str, Any]:
    """A Stripe payment_intent.succeeded payload; ``amount=None`` leaves the required field out."""
    intent: dict[str, Any] = {
        "id": intent_id,
        "object": "payment_intent",
        "currency": "usd",
        "status": "succeeded",
    }
    if amount is not None:
        intent["amount"] = amount
    intent.update(extra)
    return {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": intent},
    }
