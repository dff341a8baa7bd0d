"""The stages' rules a config is checked against, gathered above the stages so that
``hookstream.config`` (which every stage imports) imports none of them.

Every command loads its config with them, ``load_config(path, rules=stage_rules())``, so that
each refuses a bad file with the same line before it starts anything, whichever stage it runs.
"""

from __future__ import annotations

from hookstream.config import StageRules


def stage_rules() -> StageRules:
    """The ingest stage's providers and the consumers' rules for names, event patterns, filters
    and rate limits."""
    # Imported here: the CLI imports this module at start, and only a command that loads a
    # config needs the providers (and their cryptography).
    from hookstream.consumers.filters import check_filter
    from hookstream.consumers.patterns import check_consumer_name, parse_pattern
    from hookstream.consumers.ratelimit import parse_rate
    from hookstream.ingest.providers import PROVIDERS

    return StageRules(
        providers=PROVIDERS,
        check_consumer_name=check_consumer_name,
        check_event_pattern=parse_pattern,
        check_filter=check_filter,
        check_rate_limit=parse_rate,
    )
