"""What training minimises: cross-entropy to a *set* of right classes, and uniformity for
garments of no class. TensorFlow is imported inside the functions only.

A target row (:data:`trainer.photos.TARGET_WIDTH`) holds the mask of right classes, a flag for
"no class" and the example's weight. For a mask ``m`` and probabilities ``p``:

- an image with right classes: ``(1 - ls) · -log Σₖ pₖmₖ + ls · meanₖ(-log pₖ)``, which for a
  single right class is label-smoothed cross-entropy;
- an image of no class: ``w_out · meanₖ(-log pₖ)`` (outlier exposure: it is pushed towards the
  uniform distribution, so its best score stays low and the answer is "not sure").
"""

from __future__ import annotations

from typing import Any

from edge_runtime import CLASS_NAMES

CLASSES = len(CLASS_NAMES)


def set_cross_entropy(label_smoothing: float, outlier_weight: float) -> Any:
    """The loss, as a Keras loss function of (target rows, probabilities)."""
    import tensorflow as tf

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        mask, outlier, weight = y_true[:, :CLASSES], y_true[:, CLASSES], y_true[:, CLASSES + 1]
        p = tf.clip_by_value(y_pred, 1e-7, 1.0)
        in_set = -tf.math.log(tf.clip_by_value(tf.reduce_sum(p * mask, axis=1), 1e-7, 1.0))
        uniform = -tf.reduce_mean(tf.math.log(p), axis=1)
        known = (1.0 - label_smoothing) * in_set + label_smoothing * uniform
        return weight * ((1.0 - outlier) * known + outlier * outlier_weight * uniform)

    return loss


def set_accuracy(y_true: Any, y_pred: Any) -> Any:
    """The share of images whose best class is one of their right classes (Keras metric)."""
    import tensorflow as tf

    best = tf.argmax(y_pred, axis=1)
    return tf.gather(y_true[:, :CLASSES], best, axis=1, batch_dims=1)
