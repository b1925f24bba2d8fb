"""Decision trees, random forests and extra-trees: each tree's own compiled ``tree_.predict``.

scikit-learn's forests spend most of a small ``predict`` outside the trees: joblib dispatch,
a configuration context and warning filters per tree, input validation per call. The trees
themselves take microseconds. This calls every fitted tree's ``tree_.predict`` (Cython) on the
float32 rows and combines the outputs exactly as scikit-learn does (``_accumulate_prediction``:
a float64 zero array, each tree's output added in ``estimators_`` order, then divided by the
number of trees), so answers are bit-identical to a forest with ``n_jobs`` unset or 1. With
``n_jobs`` above 1 scikit-learn adds in thread-completion order, so its own last bits vary; those
forests are verified within 1e-12.

A single-output forest classifier goes one step further: each tree only finds the rows' leaves
(``tree_.apply``, what ``tree_.predict`` does before looking the values up), and the leaf
probabilities of all trees are gathered from one array in one step and summed over the trees in
``estimators_`` order (a reduction over the outer axis, which NumPy adds one tree at a time), so
a one-row forest call costs about half as much. Probabilities are non-negative, so starting the
sum at the first tree instead of at zero changes no bit. Forest regressors (single or
multi-output) gather their leaf values the same way and sum them with a running sum in tree
order (see ``_stacked_values``): a one-row call of a 100-tree regressor ~0.46 -> ~0.22 ms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)
from sklearn.utils import get_tags

from restpredict.model.fast.base import FastEstimator, float32_rows

__all__ = ["FastForest", "FastTree", "fast_trees"]

_FORESTS = (
    RandomForestClassifier,
    RandomForestRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
)
_TREES = (DecisionTreeClassifier, DecisionTreeRegressor, ExtraTreeClassifier, ExtraTreeRegressor)
_CLASSIFIERS = (
    RandomForestClassifier,
    ExtraTreesClassifier,
    DecisionTreeClassifier,
    ExtraTreeClassifier,
)


def fast_trees(estimator: Any) -> FastEstimator | None:
    """The fast path for a fitted tree or forest of exactly these classes; else None.

    Subclasses are left to scikit-learn: they may override how predictions are combined.
    """
    kind = type(estimator)
    if kind in _FORESTS:
        return FastForest(estimator)
    if kind in _TREES:
        return FastTree(estimator)
    return None


class FastTree(FastEstimator):
    """One decision tree: ``DecisionTree*.predict``/``predict_proba`` minus the validation."""

    family = "tree"

    def __init__(self, original: Any) -> None:
        super().__init__(original)
        self._tree = original.tree_
        self._classifier = type(original) in _CLASSIFIERS
        self._allow_nan = _takes_missing(original)

    def predict(self, X: np.ndarray) -> Any:
        """Labels by the largest leaf value (classifiers), else the leaf values."""
        raw = self._tree.predict(float32_rows(X, allow_nan=self._allow_nan))
        if self._classifier:
            return _labels(self.original, raw if self.original.n_outputs_ == 1 else None, raw)
        return raw[:, 0] if self.original.n_outputs_ == 1 else raw[:, :, 0]

    def predict_proba(self, X: np.ndarray) -> Any:
        """The normalised leaf values, one array per output."""
        rows = float32_rows(X, allow_nan=self._allow_nan)
        return _proba(self.original, self._tree.predict(rows))


class FastForest(FastEstimator):
    """A forest: the trees' outputs summed in order from float64 zeros, then averaged."""

    family = "forest"

    def __init__(self, original: Any) -> None:
        super().__init__(original)
        self._members = [(member, member.tree_) for member in original.estimators_]
        self._classifier = type(original) in _CLASSIFIERS
        self._allow_nan = _takes_missing(original.estimators_[0])
        if original.n_jobs not in (None, 1):
            self.exactness = "1e-12"
        self._leaf_values, self._offsets = _stacked_leaf_values(original, self._classifier)

    def predict(self, X: np.ndarray) -> Any:
        """``ForestClassifier.predict`` (argmax of the mean probabilities) or the mean values."""
        if self._classifier:
            proba = self.predict_proba(X)
            single = proba if self.original.n_outputs_ == 1 else None
            return _labels(self.original, single, proba)
        rows = float32_rows(X, allow_nan=self._allow_nan)
        if self._leaf_values is not None:
            return self._stacked_values(rows)
        outputs = self.original.n_outputs_
        total = np.zeros((rows.shape[0], outputs) if outputs > 1 else rows.shape[0])
        for _, tree in self._members:
            raw = tree.predict(rows)
            total += raw[:, 0] if outputs == 1 else raw[:, :, 0]
        total /= len(self._members)
        return total

    def predict_proba(self, X: np.ndarray) -> Any:
        """``ForestClassifier.predict_proba``: mean of the trees' ``predict_proba``."""
        rows = float32_rows(X, allow_nan=self._allow_nan)
        if self._leaf_values is not None:
            return self._stacked_proba(rows)
        totals = [np.zeros((rows.shape[0], k)) for k in np.atleast_1d(self.original.n_classes_)]
        for member, tree in self._members:
            proba = _proba(member, tree.predict(rows))
            if len(totals) == 1:
                totals[0] += proba
            else:
                for total, part in zip(totals, proba):
                    total += part
        for total in totals:
            total /= len(self._members)
        return totals[0] if len(totals) == 1 else totals

    def _stacked_proba(self, rows: np.ndarray) -> Any:
        """The same sum as ``predict_proba``'s loop: leaves per tree, values gathered at once."""
        assert self._leaf_values is not None
        total: np.ndarray = np.add.reduce(self._gathered(rows), axis=0)
        total /= len(self._members)
        return total

    def _stacked_values(self, rows: np.ndarray) -> Any:
        """The regressor's sum, in tree order: a running sum over the trees, never pairwise.

        With one row the gathered values are one contiguous run per row, which ``add.reduce``
        would sum pairwise; ``add.accumulate`` always adds one tree at a time. It starts at the
        first tree instead of at zero, which can only change the sign of a zero sum: adding
        0.0 at the end makes that sign what scikit-learn's sum from zeros gives.
        """
        total: np.ndarray = np.add.accumulate(self._gathered(rows), axis=0)[-1]
        total += 0.0
        total /= len(self._members)
        return total

    def _gathered(self, rows: np.ndarray) -> np.ndarray:
        """Every tree's leaf values for the rows, shape (trees, rows[, classes or outputs])."""
        assert self._leaf_values is not None and self._offsets is not None
        leaves = np.empty((len(self._members), rows.shape[0]), dtype=np.intp)
        for i, (_, tree) in enumerate(self._members):
            leaves[i] = tree.apply(rows)
        leaves += self._offsets
        gathered: np.ndarray = self._leaf_values[leaves]
        return gathered


#: Above this many bytes of leaf values, a forest is not given a second, stacked copy of them.
_STACKED_LIMIT = 64 * 2**20


def _stacked_leaf_values(
    forest: Any, classifier: bool
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Every tree's node values in one array, and where each tree's nodes start in it.

    Probabilities of single-output classifiers with two classes or more (the sum then runs
    over an outer axis, in tree order), or a regressor's values (``value[:, :, 0]``, what its
    trees' ``predict`` returns), and only while the copy stays small.
    """
    if not classifier:
        single = forest.n_outputs_ == 1
        values = [
            m.tree_.value[:, 0, 0] if single else m.tree_.value[:, :, 0] for m in forest.estimators_
        ]
    elif forest.n_outputs_ != 1 or forest.n_classes_ < 2:
        return None, None
    else:
        k = int(forest.n_classes_)
        values = [member.tree_.value[:, 0, :k] for member in forest.estimators_]
    if sum(v.nbytes for v in values) > _STACKED_LIMIT:
        return None, None
    starts = np.cumsum([0, *(v.shape[0] for v in values[:-1])]).astype(np.intp)
    return np.ascontiguousarray(np.concatenate(values), dtype=np.float64), starts[:, None]


def _takes_missing(tree: Any) -> bool:
    """``BaseDecisionTree._support_missing_values`` for dense input: NaN goes down the tree."""
    return bool(get_tags(tree).input_tags.allow_nan) and tree.monotonic_cst is None


def _proba(tree: Any, raw: np.ndarray) -> Any:
    """``DecisionTreeClassifier.predict_proba`` from ``tree_.predict``'s output."""
    if tree.n_outputs_ == 1:
        return raw[:, : tree.n_classes_]
    return [raw[:, k, : tree.n_classes_[k]] for k in range(tree.n_outputs_)]


def _labels(estimator: Any, single: np.ndarray | None, proba: Any) -> np.ndarray:
    """Classes by largest probability; one column per output for multi-output classifiers.

    ``proba`` is per output either a list (forests) or the raw ``(rows, outputs, classes)``
    array (trees).
    """
    if single is not None:
        return np.asarray(estimator.classes_.take(np.argmax(single, axis=1), axis=0))
    n_outputs = estimator.n_outputs_
    first = proba[0] if isinstance(proba, list) else proba[:, 0]
    labels = np.empty((first.shape[0], n_outputs), dtype=estimator.classes_[0].dtype)
    for k in range(n_outputs):
        scores = proba[k] if isinstance(proba, list) else proba[:, k]
        labels[:, k] = estimator.classes_[k].take(np.argmax(scores, axis=1), axis=0)
    return labels
