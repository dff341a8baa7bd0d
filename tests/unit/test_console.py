"""The console's pieces that need no broker: its config table, the bind check, the token and
CSRF checks, header masking, the body's views and the bar charts."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest

from hookstream.config import parse_config
from hookstream.console.app import create_app
from hookstream.console.auth import is_loopback
from hookstream.console.overview import bar_chart
from hookstream.console.present import body_views
from hookstream.errors import ConfigError
from hookstream.schemas.refused import masked_headers


def config(console: dict, **env):
    return parse_config({"console": console})


def test_console_defaults_are_read_only_on_loopback():
    c = config({}).console
    assert (c.host, c.port, c.token, c.actions, c.metrics_urls) == ("127.0.0.1", 8080, None, False, ())


def test_the_token_comes_from_env_file_or_literal_and_never_shows(tmp_path, monkeypatch):
    monkeypatch.setenv("CONSOLE_TOKEN_TEST", "from-env")
    (tmp_path / "token").write_text("from-file\n")
    assert config({"token": "env:CONSOLE_TOKEN_TEST"}).console.token == "from-env"
    assert parse_config({"console": {"token": "file:token"}}, base_dir=tmp_path).console.token == "from-file"
    literal = config({"token": "literal-token"}).console
    assert literal.token == "literal-token" and "literal-token" not in repr(literal)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"actions": True}, "console.actions: true needs console.token"),
        ({"metrics_urls": ["localhost:8000"]}, "console.metrics_urls[0]: expected an http(s) URL"),
        ({"colour": "blue"}, "console.colour: unknown key"),
        ({"token": "env:CONSOLE_TOKEN_UNSET"}, "environment variable CONSOLE_TOKEN_UNSET is not set"),
    ],
)
def test_bad_console_tables_name_the_key_and_the_fix(table, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        config(table)


def test_loopback_hosts():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example.com")


def test_no_token_on_a_public_address_refuses_to_start_in_one_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[console]\n")
    result = subprocess.run(
        [sys.executable, "-m", "hookstream.cli", "console", "--config", str(path), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(
        "hookstream: error: console: refusing to serve on 0.0.0.0 without a token"
    )
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


async def test_without_a_valid_token_nothing_but_the_login_form_answers():
    app = create_app(parse_config({"console": {"token": "s3cret-token"}}))
    # No lifespan runs: nothing here may reach Kafka.
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://console")
    assert (await client.get("/login")).status_code == 200
    assert (await client.get("/static/htmx.min.js")).status_code == 200
    wrong = {"accept": "application/json", "authorization": "Bearer s3cret-tokeN"}
    answer = await client.get("/events", headers=wrong)
    assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
    assert (await client.post("/consumers/x/redrive")).status_code == 401
    signed = await client.post("/login", data={"token": "s3cret-token"})
    assert signed.status_code == 303 and "s3cret-token" not in signed.headers["set-cookie"]


def test_secret_bearing_headers_are_masked():
    shown = dict(
        masked_headers(
            {
                "stripe-signature": "t=1,v1=abc",
                "x-hub-signature-256": "sha256=abc",
                "authorization": "Bearer abc",
                "cookie": "session=abc",
                "x-shopify-hmac-sha256": "abc=",
                "x-api-key": "abc",
                "x-gitlab-token": "abc",
                "user-agent": "Stripe/1.0",
            }.items()
        )
    )
    assert shown.pop("user-agent") == "Stripe/1.0"
    assert all("abc" not in value and "masked" in value for value in shown.values()), shown


def test_the_body_is_shown_byte_exact_in_the_views_that_fit():
    compact = b'{"b":1,"a":[1,2]}'
    views = body_views(compact)
    assert views["text"] == compact.decode() and views["json"].startswith('{\n  "b": 1')
    assert "hex" not in views
    assert body_views(b"a=1&b=2") == {"bytes": 7, "text": "a=1&b=2"}
    assert body_views(b"\x00\xffz")["hex"] == "00 ff 7a"


def test_bar_charts_scale_to_the_largest_value():
    chart = bar_chart([0, 5, 10], ["a", "b", "c"], width=300, height=100)
    assert [b["h"] for b in chart["bars"]] == [0.0, 50.0, 100.0] and chart["max"] == 10
    assert bar_chart([], [])["bars"] == []


def test_sampled_recording_keeps_about_its_share_and_off_keeps_none():
    from hookstream.ingest.refused import RefusalRecorder
    from hookstream.stage_rules import stage_rules

    sources = {
        "sampled": {
            "provider": "github",
            "secrets": ["s"],
            "record_refused": "sampled",
            "refused_sample_rate": 0.5,
        },
        "off": {"provider": "github", "secrets": ["s"]},
    }
    config = parse_config({"sources": sources}, rules=stage_rules())
    recorder = RefusalRecorder(config)
    sampled = config.sources["sampled"]
    sampled = type(sampled)(**{**sampled.__dict__, "refused_per_minute": 10_000})
    recorder.budgets["sampled"].per_minute = recorder.budgets["sampled"].tokens = 10_000
    for _ in range(1000):
        recorder.offer(sampled, 401, "signature_mismatch", "d", [], b"", "127.0.0.1")
        recorder.offer(config.sources["off"], 401, "signature_mismatch", "d", [], b"", "127.0.0.1")
    assert 380 < len(recorder.queue) < 620
    assert {r.source for r, _ in recorder.queue} == {"sampled"}


def test_a_text_search_rules_records_out_before_decoding_them_only_when_it_can():
    from hookstream.console.events import EventFilter
    from hookstream.sample_events import make_raw_event
    from hookstream.schemas.envelope import encode_raw_event

    value = encode_raw_event(make_raw_event({"customer": "Cus_42"}, headers={"x-trace": "Trace-9"}))
    assert EventFilter(text="cus_42").may_match(value) and EventFilter(text="TRACE-9").may_match(value)
    assert not EventFilter(text="cus_43").may_match(value)
    assert EventFilter(text="ünïcode").may_match(value)  # not ASCII: left to the decoded check
    assert EventFilter().may_match(value)
