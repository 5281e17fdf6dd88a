"""Algorithms. Importing this package registers every algorithm file."""

from bench.algos import bc, bcq, discrete_bcq, discrete_sac, redq  # noqa: F401  (registration)
from bench.algos.base import REGISTRY, Algorithm, get_algorithm  # noqa: F401
