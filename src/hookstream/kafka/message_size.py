"""How large a record hookstream's topics and Kafka clients let through: ``kafka.max_message_bytes``.

Kafka's defaults stop a record at about 1 MiB, less than a source's largest body in its envelope,
and in several places that must all agree:

* the topic: ``max.message.bytes`` (else the broker's ``message.max.bytes``, 1,048,588), checked
  on the record batch as written, after compression;
* every producer: aiokafka's ``max_request_size`` (1,048,576), faust's
  ``producer_max_request_size`` (1,000,000), checked on each record before it is sent;
* every consumer: ``max_partition_fetch_bytes`` (1 MiB) per partition, ``fetch_max_bytes`` per
  fetch. The broker returns a batch larger than these whole only when it is the first non-empty
  partition of its fetch response (KIP-74), else nothing for that partition, so an undersized
  consumer still makes progress, but only as that partition's turn comes round.

A record batch is at most ``max_message_bytes`` on our topics, so fetch sizes of at least that
fetch it at once. Topics that existed before the setting keep their own limit:
``Admin.limits_below_max_message_bytes`` finds them, and the lines below say how to raise it.
"""

from __future__ import annotations

from hookstream.config import KafkaConfig

TOPIC_LIMIT = "max.message.bytes"
AIOKAFKA_FETCH_MAX_BYTES = 52_428_800
"""aiokafka's default ``fetch_max_bytes``, kept when it is already larger than a record."""


def topic_config(kafka: KafkaConfig) -> dict[str, str]:
    """Configs for a topic hookstream creates, so that it takes records of ``max_message_bytes``."""
    return {TOPIC_LIMIT: str(kafka.max_message_bytes)}


def fetch_sizes(kafka: KafkaConfig) -> dict[str, int]:
    """aiokafka consumer settings that fetch a record of ``max_message_bytes`` in one go."""
    return {
        "max_partition_fetch_bytes": kafka.max_message_bytes,
        "fetch_max_bytes": max(AIOKAFKA_FETCH_MAX_BYTES, kafka.max_message_bytes),
    }


def compressed_bound(size: int, compression: str) -> int:
    """The most bytes ``size`` bytes of records can take once compressed with ``compression``.

    Incompressible data grows a little (snappy by up to a sixth), and the broker checks
    ``max.message.bytes`` on the batch as compressed: a record or batch is only sure to be
    taken if this bound fits. Per-block framing is over-counted with 16 KiB blocks, the
    smallest any of the codecs uses.
    """
    if compression == "none":
        return size
    blocks = size // 16_384 + 1
    if compression == "snappy":
        return size + size // 6 + 36 * blocks + 16
    return size + size // 128 + 8 * blocks + 64  # gzip, lz4 and zstd grow by at most 1/255


def raise_limit_command(topic: str, kafka: KafkaConfig) -> str:
    """The command that lets ``topic`` take records of ``kafka.max_message_bytes``."""
    return (
        f"kafka-configs.sh --bootstrap-server {kafka.bootstrap_servers} --alter "
        f"--entity-type topics --entity-name {topic} --add-config {TOPIC_LIMIT}={kafka.max_message_bytes}"
    )


def below_limit_warning(topic: str, limit: int, kafka: KafkaConfig) -> str:
    """One line saying what a too small topic breaks and how to raise its limit."""
    return (
        f"topic {topic} takes records up to {limit} bytes ({TOPIC_LIMIT}), less than "
        f"kafka.max_message_bytes = {kafka.max_message_bytes}: a large event will be refused there. "
        f"Raise it: {raise_limit_command(topic, kafka)}"
    )


def refused_as_too_large(topic: str, kafka: KafkaConfig) -> str:
    """One line for a record the broker refused because ``topic`` takes smaller ones."""
    return (
        f"topic {topic} refused a record as too large: its {TOPIC_LIMIT} is below "
        f"kafka.max_message_bytes = {kafka.max_message_bytes}. Raise it: {raise_limit_command(topic, kafka)}"
    )
