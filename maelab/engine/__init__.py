"""Training engine: optimizer, schedule, checkpoints, distributed, the pretraining loop."""
