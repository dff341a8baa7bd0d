"""hookstream's Kafka layer: what every stage needs from Kafka, written once."""
