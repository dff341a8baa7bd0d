"""The Kafka layer's pieces that need no broker: retries, the unreachable error, a reader's settings."""

from __future__ import annotations

import pytest
from aiokafka.errors import InvalidReplicationFactorError, NotCoordinatorError

from hookstream.config import KafkaConfig
from hookstream.errors import HookstreamError
from hookstream.kafka.admin import Admin, retrying
from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.reads import reader_settings


async def test_retriable_errors_are_tried_again_and_others_name_what_failed():
    answers: list[Exception | str] = [NotCoordinatorError("not yet"), NotCoordinatorError("not yet"), "ok"]

    async def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await retrying(call, "cannot describe group g") == "ok"

    async def refused() -> str:
        raise InvalidReplicationFactorError("3 > 1 broker")

    with pytest.raises(KafkaLayerError, match=r"^cannot create topic t: .*3 > 1 broker"):
        await retrying(refused, "cannot create topic t")


async def test_retries_give_up_after_the_timeout():
    async def never() -> None:
        raise NotCoordinatorError("still electing")

    with pytest.raises(KafkaLayerError, match="^cannot commit: .*still electing"):
        await retrying(never, "cannot commit", timeout=0.2)


async def test_an_unreachable_cluster_is_one_line_or_aiokafkas_error_for_callers_that_retry():
    nobody = KafkaConfig(bootstrap_servers="127.0.0.1:1")  # nothing listens on port 1
    with pytest.raises(KafkaLayerError, match=r"^cannot reach Kafka at 127\.0\.0\.1:1: ") as raised:
        async with Admin(nobody, "test", unreachable_is_error=True):
            pass
    assert isinstance(raised.value, HookstreamError)  # the CLI shows it as one line
    with pytest.raises(Exception) as raised:
        async with Admin(nobody, "test"):
            pass
    assert not isinstance(raised.value, KafkaLayerError)


def test_a_reader_fetches_records_as_large_as_max_message_bytes_and_settings_override():
    kafka = KafkaConfig(max_message_bytes=8_000_000, client_id="hs")
    settings = reader_settings(kafka, "replay-audit")
    assert settings["client_id"] == "hs-replay-audit" and settings["group_id"] is None
    assert settings["max_partition_fetch_bytes"] == 8_000_000
    assert settings["fetch_max_bytes"] >= 8_000_000
    assert settings["isolation_level"] == "read_committed" and settings["enable_auto_commit"] is False
    check = reader_settings(kafka, "check", group="g", isolation_level="read_uncommitted", fetch_max_bytes=1)
    assert (check["group_id"], check["isolation_level"], check["fetch_max_bytes"]) == (
        "g",
        "read_uncommitted",
        1,
    )
