"""Analyses of trained encoders that are not tied to one theory probe (e.g. collapse)."""
