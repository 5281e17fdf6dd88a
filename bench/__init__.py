"""bench: an offline reinforcement-learning benchmarking harness.

Dataset card -> Minari dataset -> OfflineData -> Algorithm.update -> evaluation -> tidy parquet.
"""

__version__ = "0.1.0"
