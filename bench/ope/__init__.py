"""Offline policy selection: estimators that score kept policies from the dataset alone (FQE,
cheap proxies), and the selection of a checkpoint per seed (bench.ope.select)."""
