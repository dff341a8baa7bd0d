"""streams.transport's consumer: stream partitions read again only after the seek (no broker).

faust's recovery resumes the stream partitions, then awaits ``perform_seek``; its fetcher runs
meanwhile, so records from past the committed offset reached the streams. The consumer below is
the worker's own (``build_app``); only the seek's round trip to the broker is replaced.
"""

from __future__ import annotations

from faust.types import TP as TopicPartition

from hookstream.config import parse_config
from hookstream.streams.app import build_app


def worker_app(tmp_path):
    return build_app(
        parse_config(
            {
                "kafka": {"bootstrap_servers": "127.0.0.1:1", "raw_topic": "t.raw"},
                "streams": {"data_dir": str(tmp_path)},
            }
        )
    )


async def test_stream_partitions_resume_only_once_the_seek_to_committed_offsets_returned(tmp_path):
    app = worker_app(tmp_path)
    consumer = app.consumer
    stream = TopicPartition("t.raw", 0)
    changelog = TopicPartition(sorted(app.tables.changelog_topics)[0], 0)
    consumer.assignment = lambda: {stream, changelog}
    active_during_seek = []

    async def seek_to_committed():
        active_during_seek.append(set(consumer._get_active_partitions()))  # noqa: SLF001 - the test's subject
        return {stream: 5}

    consumer.seek_to_committed = seek_to_committed
    consumer.pause_partitions({stream, changelog})

    consumer.resume_partitions({stream, changelog})  # what faust's recovery does, then:
    assert consumer._get_active_partitions() == {changelog}  # noqa: SLF001 - the changelog reads on
    await consumer.perform_seek()

    assert active_during_seek == [{changelog}]  # nothing of the stream was fetched before the seek
    assert consumer._get_active_partitions() == {stream, changelog}  # noqa: SLF001
