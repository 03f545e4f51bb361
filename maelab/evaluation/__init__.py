"""Evaluation of pretrained encoders: features, linear probe, k-NN, fine-tuning, reconstructions."""
