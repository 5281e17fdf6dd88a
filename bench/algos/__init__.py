"""Algorithms. Importing this package registers every algorithm file, then the algorithms of
installed plugins (bench.algos.plugins)."""

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
from bench.algos.plugins import load_plugins

load_plugins()
