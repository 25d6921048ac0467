"""Model weights (registry, cache) and the PyTorch models the stages run.

Importing this package does not import torch: the registry and cache work in
the CPU-only parts of the runner, and torch loads only when a model rung does.
"""
