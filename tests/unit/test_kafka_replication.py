"""The replication every hookstream topic gets, resolved against a cluster's size."""

from __future__ import annotations

import pytest

from hookstream.config import KafkaConfig
from hookstream.kafka.errors import KafkaLayerError
from hookstream.kafka.replication import Replication, known_brokers, resolve


@pytest.mark.parametrize(("brokers", "factor", "min_insync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_unset_the_cluster_size_decides(brokers: int, factor: int, min_insync: int) -> None:
    assert resolve(KafkaConfig(), brokers) == Replication(factor, min_insync, brokers)


def test_set_values_are_kept() -> None:
    assert resolve(KafkaConfig(replication_factor=2, min_insync_replicas=2), 3) == Replication(2, 2, 3)
    assert resolve(KafkaConfig(replication_factor=3), 4).min_insync == 2


def test_more_replicas_than_brokers_is_one_line_naming_the_fix() -> None:
    with pytest.raises(KafkaLayerError) as raised:
        resolve(KafkaConfig(bootstrap_servers="k:9092", replication_factor=3), 2)
    assert str(raised.value) == (
        "kafka.replication_factor is 3 but the Kafka cluster at k:9092 has 2 brokers: "
        "set replication_factor = 2 (or leave it unset) in [kafka], or add brokers"
    )


def test_a_min_isr_above_the_unset_factor_is_refused() -> None:
    with pytest.raises(KafkaLayerError, match="min_insync_replicas is 3 but topics get 2 replicas"):
        resolve(KafkaConfig(min_insync_replicas=3), 2)


def test_a_broker_that_is_down_still_counts_where_topics_have_replicas_on_it() -> None:
    assert known_brokers([1, 2], {"raw": [[1, 2, 3], [2, 3, 1]], "events": [[1]]}) == 3
