"""Pure-numpy metrics: checked against hand-computed values."""

import numpy as np

from trainer.metrics import (
    classification_report,
    confusion_matrix,
    most_confused_pairs,
    per_class_scores,
    summarize,
)


def test_confusion_matrix_counts():
    cm = confusion_matrix(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 1, 2, 0, 2]), n_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_per_class_scores_by_hand():
    cm = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    s = per_class_scores(cm)
    np.testing.assert_allclose(s["precision"], [1 / 2, 1 / 2, 1.0])
    np.testing.assert_allclose(s["recall"], [1 / 2, 1.0, 2 / 3])
    np.testing.assert_allclose(s["f1"], [0.5, 2 / 3, 0.8])
    np.testing.assert_array_equal(s["support"], [2, 1, 3])


def test_never_predicted_class_has_zero_precision_not_nan():
    s = per_class_scores(np.array([[2, 0], [1, 0]]))
    assert s["precision"][1] == 0.0 and s["f1"][1] == 0.0


def test_most_confused_pairs_order():
    cm = np.diag([5, 5, 5])
    cm[0, 2], cm[1, 0], cm[2, 1] = 4, 1, 7
    assert most_confused_pairs(cm, 2) == [(2, 1, 7), (0, 2, 4)]


def test_summarize_and_report():
    y = np.arange(10).repeat(3)
    pred = y.copy()
    pred[0] = 6  # one T-shirt called a shirt
    m = summarize(y, pred)
    assert m["test_accuracy"] == 29 / 30
    assert m["per_class"]["T-shirt/top"]["recall"] == 2 / 3
    assert m["confusion_matrix"][0][6] == 1
    report = classification_report(np.array(m["confusion_matrix"]))
    assert "Ankle boot" in report and "0.9667" in report
