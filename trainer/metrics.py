"""Classification metrics in plain numpy (no TensorFlow, no scikit-learn)."""

from __future__ import annotations

import numpy as np

from edge_runtime import CLASS_NAMES


def confusion_matrix(
    y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = len(CLASS_NAMES)
) -> np.ndarray:
    """Counts with rows = true class and columns = predicted class, shape (n, n), int64."""
    return np.bincount(
        np.asarray(y_true, np.int64) * n_classes + np.asarray(y_pred, np.int64),
        minlength=n_classes * n_classes,
    ).reshape(n_classes, n_classes)


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    A class never predicted has precision 0 (not NaN), as scikit-learn's ``zero_division=0``.
    """
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Accuracy within each true class (its recall), as a float array of length 10."""
    return per_class_scores(confusion_matrix(y_true, y_pred))["recall"]


def classification_report(cm: np.ndarray, names: tuple[str, ...] = CLASS_NAMES) -> str:
    """A fixed-width text table of per-class precision/recall/F1/support, then accuracy and macro average."""
    s = per_class_scores(cm)
    width = max(len(n) for n in names) + 2
    lines = [f"{'':<{width}}{'precision':>10}{'recall':>10}{'f1-score':>10}{'support':>10}", ""]
    for i, name in enumerate(names):
        lines.append(
            f"{name:<{width}}{s['precision'][i]:>10.4f}{s['recall'][i]:>10.4f}"
            f"{s['f1'][i]:>10.4f}{int(s['support'][i]):>10d}"
        )
    total = int(cm.sum())
    lines += [
        "",
        f"{'accuracy':<{width}}{'':>20}{np.trace(cm) / total:>10.4f}{total:>10d}",
        f"{'macro avg':<{width}}{s['precision'].mean():>10.4f}{s['recall'].mean():>10.4f}"
        f"{s['f1'].mean():>10.4f}{total:>10d}",
    ]
    return "\n".join(lines)


def most_confused_pairs(cm: np.ndarray, k: int = 5) -> list[tuple[int, int, int]]:
    """The ``k`` largest off-diagonal cells as (true, predicted, count), largest first."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(off, axis=None)[::-1][:k]
    return [
        (int(i // cm.shape[1]), int(i % cm.shape[1]), int(off.flat[i]))
        for i in order
        if off.flat[i] > 0
    ]


def summarize(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, confusion matrix, per-class scores and the text report, JSON-ready."""
    cm = confusion_matrix(y_true, y_pred)
    s = per_class_scores(cm)
    return {
        "test_accuracy": float(np.trace(cm) / cm.sum()),
        "confusion_matrix": cm.tolist(),
        "per_class": {
            name: {k: (float(s[k][i]) if k != "support" else int(s[k][i])) for k in s}
            for i, name in enumerate(CLASS_NAMES)
        },
        "classification_report": classification_report(cm),
    }
