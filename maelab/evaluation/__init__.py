"""Evaluation of pretrained encoders: frozen features (linear probe, k-NN vs the random / pixel
baselines), collapse, fine-tuning, reconstructions."""
