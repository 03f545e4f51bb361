"""Experiments: sweep plans and their execution, the standard per-run evaluations, the demo."""
