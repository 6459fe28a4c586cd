"""Purpose-limitation enforcer for Kafka."""

__version__ = "0.1.0"
