"""Convert the trained Keras model to TFLite (float32, float16, dynamic, int8, int16x8).

Import graph: ``converter`` imports ``edge_runtime`` (Classifier, preprocessing, atomic writes) and
``trainer.data`` / ``trainer.train`` (the dataset and its stratified sampling). It is never
imported by ``trainer`` or ``edge_runtime``.
"""
