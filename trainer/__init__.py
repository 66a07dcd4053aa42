"""Train the float Keras CNN on Fashion-MNIST and write its report.

Import graph: ``trainer`` imports ``edge_runtime`` (labels, preprocessing, atomic writes) and
never ``converter`` or ``benchmarks``. TensorFlow is imported only inside the functions that need it.
"""

import os

# TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 VNNI and newer
# (where this project's figures were measured); on an AVX2-only x86 it falls back to slower
# Eigen kernels. Asking for oneDNN everywhere changes nothing where it is already the default,
# and trains faster on the others. Set here, before any TensorFlow import, so that every
# process that trains, converts or benchmarks gets it; TF_ENABLE_ONEDNN_OPTS=0 still wins.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
