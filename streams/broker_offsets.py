"""Partition offsets straight from the broker: for the watermark timer, and to count the
data records in a range the consumer skipped (``records_between``, see ``batching``).

faust's own consumer answers such questions on its fetch thread, between long polls (over a
second per call here), which is too slow for a timer that runs every few hundred ms. This
service keeps a small group-less client of its own, started and stopped with the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from mode import Service

from hookstream.config import KafkaConfig
from hookstream.kafka.admin import Admin
from hookstream.kafka.reads import read_range, reader
from hookstream.schemas.progress import is_progress
from hookstream.streams.watermark import is_watermark


async def committed_offsets(
    bootstrap_servers: str, client_id: str, group_id: str, tps: Iterable[TopicPartition] | None = None
) -> dict[TopicPartition, int]:
    """The group's committed offsets (of ``tps``, else of every partition it committed to)."""
    async with Admin(
        KafkaConfig(bootstrap_servers=bootstrap_servers, client_id=client_id), "offsets"
    ) as admin:
        return await admin.committed_offsets(group_id, tps)


class OffsetsProbe(Service):
    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        client_id: str,
        fetch_sizes: Mapping[str, int] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.client_id = client_id
        self.fetch_sizes = dict(fetch_sizes or {})
        """aiokafka fetch settings for ``records_between``, which reads whole records."""
        self._consumer: AIOKafkaConsumer | None = None

    async def on_start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=f"{self.client_id}-offsets",
            group_id=None,
            enable_auto_commit=False,
        )
        await self._consumer.start()

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def end_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset the next record appended to each partition will get."""
        assert self._consumer is not None, "OffsetsProbe is not started"
        return dict(await self._consumer.end_offsets(list(tps)))

    async def resume_offsets(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """Where the group resumes reading each partition: its committed offset, else the log start."""
        assert self._consumer is not None, "OffsetsProbe is not started"
        wanted = list(tps)
        out = await committed_offsets(self.bootstrap_servers, self.client_id, self.group_id, wanted)
        missing = [tp for tp in wanted if tp not in out]
        if missing:
            out.update(await self._consumer.beginning_offsets(missing))
        return out

    async def records_between(self, topic: str, partition: int, start: int, end: int) -> int:
        """How many records partition ``topic[partition]`` holds at offsets ``start <= o < end``,
        watermark records aside: a later watermark of the same raw partition supersedes one
        skipped, so a gap that holds only watermarks loses nothing."""
        tp = TopicPartition(topic, partition)
        kafka = KafkaConfig(bootstrap_servers=self.bootstrap_servers, client_id=self.client_id)
        # Uncommitted too: faust's consumer reads them, so skipping one would be a loss.
        consumer = reader(kafka, "check", isolation_level="read_uncommitted", **self.fetch_sizes)
        count = 0

        async def counted(record: ConsumerRecord) -> None:
            nonlocal count
            if not is_watermark(record.headers) and not is_progress(record.headers):
                count += 1

        await consumer.start()
        try:
            await read_range(consumer, {tp: start}, {tp: end}, counted)
        finally:
            await consumer.stop()
        return count
