"""The producer of what the worker writes: the repartition topic and its watermarks, the events
topic, and the tables' changelogs (``transport.Table``).

faust's producer sends one record per call; the stages write hundreds at a time, so they hand
them to a producer of their own in whole batches (``kafka.produce.BatchSender``). Started and
stopped with the app.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from mode import Service

from hookstream.config import KafkaConfig
from hookstream.kafka.admin import Admin
from hookstream.kafka.produce import BatchSender, OutRecord, Sent, batch_bytes


class Output(Service):
    def __init__(self, kafka: KafkaConfig, topics: Sequence[str], client_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kafka = kafka
        self.topics = list(topics)
        self.client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._sender: BatchSender | None = None

    async def on_start(self) -> None:
        k = self.kafka
        # A batch the broker refuses is refused whole: size them for the smallest limit of the
        # topics written (an existing topic may take less than kafka.max_message_bytes).
        async with Admin(k, "streams-out") as admin:
            below = await admin.limits_below_max_message_bytes(self.topics)
        self._producer = AIOKafkaProducer(
            bootstrap_servers=k.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=True,
            linger_ms=0,  # whole batches are handed over; nothing to wait for
            compression_type=None if k.compression == "none" else k.compression,
            max_batch_size=batch_bytes(min([k.max_message_bytes, *below.values()])),
            max_request_size=k.max_message_bytes,
        )
        await self._producer.start()
        self._sender = BatchSender(self._producer)

    async def on_stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()  # sends what it holds first
            self._producer = self._sender = None

    async def send(self, topic: str, records: Iterable[OutRecord]) -> list[Sent]:
        """See ``BatchSender.send``."""
        assert self._sender is not None, "Output is not started"
        return await self._sender.send(topic, records)
