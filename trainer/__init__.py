"""Train the float Keras CNN on Fashion-MNIST and write its report.

Import graph: ``trainer`` imports ``edge_runtime`` (labels, preprocessing, atomic writes) and
never ``converter`` or ``benchmarks``. TensorFlow is imported only inside the functions that need it.
"""
