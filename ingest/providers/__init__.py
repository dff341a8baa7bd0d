"""Provider registry: one module per provider, each a `Provider` subclass.

Adding a provider is one module plus its test vectors, then one line in ``_CLASSES``.
"""

from __future__ import annotations

from hookstream.schemas.delivery import Delivery, Headers

from .base import EventDescription, Handshake, Provider, Sample
from .discord import Discord
from .github import GitHub
from .gitlab import GitLab
from .hmac import GenericHmac
from .intercom import Intercom
from .linear import Linear
from .mailgun import Mailgun
from .paddle import Paddle
from .pagerduty import PagerDuty
from .sendgrid import SendGrid
from .shopify import Shopify
from .slack import Slack
from .square import Square
from .standard import StandardWebhooks, Svix
from .stripe import Stripe
from .twilio import Twilio
from .typeform import Typeform
from .zoom import Zoom

_CLASSES: tuple[type[Provider], ...] = (
    Stripe,
    GitHub,
    Shopify,
    Slack,
    Twilio,
    StandardWebhooks,
    Svix,
    GenericHmac,
    Square,
    Paddle,
    Linear,
    Zoom,
    Discord,
    SendGrid,
    Mailgun,
    GitLab,
    Intercom,
    PagerDuty,
    Typeform,
)

PROVIDERS: dict[str, type[Provider]] = {cls.name: cls for cls in _CLASSES}


def provider_class(name: str) -> type[Provider]:
    """The provider class for ``name``; KeyError with the known names otherwise."""
    try:
        return PROVIDERS[name]
    except KeyError:
        raise KeyError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None


__all__ = [
    "PROVIDERS",
    "Delivery",
    "EventDescription",
    "Handshake",
    "Headers",
    "Provider",
    "Sample",
    "provider_class",
]
