"""Algorithms. Importing this package registers every algorithm file."""

from bench.algos import (  # noqa: F401  (registration)
    bc,
    bcq,
    cql,
    discrete_bcq,
    discrete_cql,
    discrete_sac,
    iql,
    redq,
    td3_bc,
)
from bench.algos.base import REGISTRY, Algorithm, get_algorithm  # noqa: F401
