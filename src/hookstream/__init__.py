"""hookstream: webhook ingestion pipeline on Apache Kafka."""

__version__ = "0.1.0"
