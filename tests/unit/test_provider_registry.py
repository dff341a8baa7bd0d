"""The provider registry and what users are told about it: every provider has a row in the test
cases and a summary, and docs/providers.md and the README list every provider with config
snippets that load.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hookstream.ingest.providers import PROVIDERS
from tests.provider_cases import (
    CASES,
    RFC8032_PUBLIC,
    SAMPLE_CASES,
    SENDGRID_PRIVATE,
    spki_b64,
)


def test_every_provider_has_a_case_row_and_a_summary():
    # A provider without a row would silently skip every check that runs over the case tables.
    assert {c.cls.name for c in CASES} | {c.name for c in SAMPLE_CASES} == set(PROVIDERS)
    for cls in PROVIDERS.values():
        assert cls.summary and cls.secret_format and cls.sample_event_type


def test_mailgun_documents_that_event_data_is_unsigned():
    cls = PROVIDERS["mailgun"]
    assert "NOT signed" in cls.summary
    assert "NOT signed" in (cls.__module__ and __import__(cls.__module__, fromlist=["_"]).__doc__)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers.md"

DOC_ENV = {
    "DISCORD_PUBLIC_KEY": RFC8032_PUBLIC,
    "SENDGRID_VERIFICATION_KEY": spki_b64(SENDGRID_PRIVATE),
    "PADDLE_WEBHOOK_SECRET": "pdl_ntfset_01hs0t3tw21j988db1pam5xg8m_GrOWLNef",
    "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "SVIX_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}

README = DOCS.parents[1] / "README.md"


@pytest.mark.parametrize("doc", [DOCS, README], ids=["docs", "readme"])
def test_docs_list_every_provider(doc):
    text = doc.read_text(encoding="utf-8")
    if doc == README:
        text = text.split("\n## Providers\n", 1)[1].split("\n## ", 1)[0]
    table = {line.split("|")[1].strip().strip("`") for line in text.splitlines() if line.startswith("| `")}
    assert table == set(PROVIDERS)


@pytest.mark.parametrize("doc", [DOCS, README], ids=["docs", "readme"])
def test_docs_config_snippets_load(monkeypatch, doc):
    from hookstream.config import load_config
    from hookstream.stage_rules import stage_rules

    text = doc.read_text(encoding="utf-8")
    snippets = [block.split("```", 1)[0] for block in text.split("```toml\n")[1:]]
    for name in {n for s in snippets for n in re.findall(r'"env:([A-Z_]+)"', s)}:
        monkeypatch.setenv(name, DOC_ENV.get(name, f"dev-only-{name.lower()}"))
    loaded = set()
    for snippet in snippets:
        if "[sources.NAME]" in snippet or "[sources." not in snippet:
            continue  # the generic shape, not a loadable example
        config = load_config(text=snippet, rules=stage_rules())
        loaded |= {s.provider for s in config.sources.values()}
    assert loaded == set(PROVIDERS)
