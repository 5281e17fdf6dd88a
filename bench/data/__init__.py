"""Datasets: cards, building with a behavior policy, Minari I/O, and the in-memory OfflineData."""
