"""Training: configs, the torchrun-ready trainer, optimisation, checkpoints with exact resume."""
