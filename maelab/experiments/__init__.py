"""Experiments: sweeps over config fields, the standard per-run evaluations, the demo study."""
