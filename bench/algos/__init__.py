"""Algorithms. Importing this package registers every algorithm file."""

from bench.algos import discrete_bcq  # noqa: F401  (registration side effect)
from bench.algos.base import REGISTRY, Algorithm, get_algorithm  # noqa: F401
