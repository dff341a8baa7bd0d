"""hookstream's one Kafka layer: what ingest, streams, consumers, the CLI and the tests need
from Kafka, written once.

- ``admin``: the ``Admin`` client: create topics with their partitions and configs, describe
  them, check partition counts, describe groups and their committed offsets.
- ``produce``: many records at once, one record batch per partition (``BatchSender``).
- ``reads``: bounded reads of a topic range that always finish.
- ``offsets``: ``OffsetTracker``, which offset of a partition may be committed or acknowledged.
- ``message_size``: how large a record every topic and client lets through.
- ``replication``: how many replicas every topic gets, and the min ISR, from the config or the
  cluster's size.
- ``local_broker``: a real single-node broker on this machine (``hookstream kafka``, the tests),
  its jars resolved from ``pom.xml`` beside this file.
- ``local_cluster``: N such nodes in one KRaft quorum (``hookstream kafka --brokers N``).
- ``errors``: ``KafkaLayerError``, the one error they raise.

Nothing here imports ingest, streams or consumers: they build on it.
"""
