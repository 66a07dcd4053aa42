"""Convert the trained Keras model to TFLite in the modes of :data:`edge_runtime.vocab.MODES`.

Import graph: ``converter`` imports ``edge_runtime`` (Classifier, preprocessing, atomic writes,
the vocabulary) and ``trainer`` (the dataset and its stratified sampling in ``trainer.data``;
the model and the training recipe the int8 route fine-tunes). It is never imported by
``trainer`` or ``edge_runtime``.
"""
