"""Datasets: the synthetic THUMOS-like benchmark and feature/annotation loading for training."""
