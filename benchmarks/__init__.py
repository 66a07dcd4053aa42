"""Benchmarks: every variant against the original Keras model, measured in one run."""
