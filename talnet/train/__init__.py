"""Training loop: sampling videos, joint two-stage loss, checkpoints, data parallelism."""
