"""The PyTorch models the stages run: RIFE (IFNet), spandrel SR, SAM2, the device.

Importing this package does not import torch; torch loads only when a model
rung does. The weights registry and cache live in batch.weights.
"""
