"""Can a classifier tell two sets of texts apart? Cross-validated AUC with a bootstrap interval.

    result = discriminate(writer_chunks, model_chunks, seed=0)
    result.auc, result.low, result.high        # 0.5: indistinguishable; 1.0: always told apart

The classifier is regularised logistic regression (scikit-learn) on the hand-made features
of engine.judge.stylometry plus character 2–4-gram frequencies (the vocabulary learned in
each training fold only), every column standardised. Cross-validation is by group
(GroupKFold): a source's chunks — hers and the model's answers to that source's prompts —
are always tested by a classifier that never saw that source, so topic cannot give either
side away. The AUC is computed over all out-of-fold scores; its 95% interval is a
percentile bootstrap over the chunks of each side (stratified). The interval covers the
resampling of chunks, not the choice of folds, and chunks of one source are not
independent: read a wide interval as "too little text", a narrow one with that caution.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from engine.judge.stylometry import Chunk, style_features

# Strong L2 regularisation: a few dozen chunks against hundreds of columns.
REGULARISATION_C = 0.05
MAX_FOLDS = 5
CHAR_NGRAMS = (2, 4)
CHAR_FEATURES = 200
BOOTSTRAP_SAMPLES = 2000


class TooFewChunks(ValueError):
    """Not enough text on one side or too few sources to cross-validate."""


@dataclasses.dataclass(frozen=True)
class Discrimination:
    auc: float  # cross-validated area under the ROC curve
    low: float  # 95% bootstrap interval
    high: float
    first_chunks: int
    second_chunks: int
    folds: int  # cross-validation folds (at most MAX_FOLDS, at most one per source)


def _pipeline(seed: int) -> Any:
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    hand_made = make_pipeline(
        FunctionTransformer(lambda texts: [style_features(text) for text in texts]),
        DictVectorizer(sparse=False),
    )
    char_grams = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=CHAR_NGRAMS, lowercase=False, use_idf=False,
                        max_features=CHAR_FEATURES, sublinear_tf=True),
        FunctionTransformer(lambda matrix: matrix.toarray(), accept_sparse=True),
    )
    return make_pipeline(make_union(hand_made, char_grams), StandardScaler(),
                         LogisticRegression(C=REGULARISATION_C, solver="liblinear", max_iter=1000, random_state=seed))


def out_of_fold_scores(texts: Sequence[str], labels: Sequence[int], groups: Sequence[str],
                       seed: int = 0) -> tuple[list[float], list[int]]:
    """Each text's classifier score from a model fitted without its group, and its fold."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    distinct = sorted(set(groups))
    folds = min(MAX_FOLDS, len(distinct))
    if folds < 2:
        raise TooFewChunks(f"only {len(distinct)} source(s): cross-validation by source needs at least two")
    texts_array = np.array(list(texts), dtype=object)
    label_array = np.array(labels)
    scores = np.zeros(len(texts_array))
    fold_of = np.zeros(len(texts_array), dtype=int)
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (train, test) in enumerate(splitter.split(texts_array, label_array, groups=list(groups))):
        fold_of[test] = fold
        if len(set(label_array[train])) < 2:
            scores[test] = 0.0  # nothing to learn from: the fold cannot tell the sides apart
            continue
        model = _pipeline(seed).fit(list(texts_array[train]), label_array[train])
        scores[test] = model.decision_function(list(texts_array[test]))
    return scores.tolist(), fold_of.tolist()


def auc_with_interval(positive: Sequence[float], negative: Sequence[float], *,
                      positive_folds: Sequence[int] | None = None, negative_folds: Sequence[int] | None = None,
                      samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """Mann–Whitney AUC (ties count half) and its stratified percentile-bootstrap 95% interval.

    With folds given, only pairs scored by the same fold's classifier are compared: each
    fold's model has its own intercept, and pooling across folds would measure the folds'
    class balance instead of the texts (it drives a null comparison well below 0.5).
    """
    import numpy as np

    pos, neg = np.asarray(positive, dtype=float), np.asarray(negative, dtype=float)
    wins = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])  # (n_pos, n_neg)
    if positive_folds is not None and negative_folds is not None:
        comparable = (np.asarray(positive_folds)[:, None] == np.asarray(negative_folds)[None, :]).astype(float)
    else:
        comparable = np.ones_like(wins)
    if not comparable.any():
        raise TooFewChunks("no fold holds chunks of both sides, so no comparison can be made")
    auc = float((wins * comparable).sum() / comparable.sum())
    rng = np.random.default_rng(seed)
    pos_weights = rng.multinomial(len(pos), np.full(len(pos), 1 / len(pos)), size=samples)  # (B, n_pos)
    neg_weights = rng.multinomial(len(neg), np.full(len(neg), 1 / len(neg)), size=samples)  # (B, n_neg)
    won = np.einsum("bi,ij,bj->b", pos_weights, wins * comparable, neg_weights)
    compared = np.einsum("bi,ij,bj->b", pos_weights, comparable, neg_weights)
    resampled = won[compared > 0] / compared[compared > 0]
    low, high = np.percentile(resampled, [2.5, 97.5])
    return auc, float(low), float(high)


def discriminate(first: Sequence[Chunk], second: Sequence[Chunk], *, seed: int = 0,
                 samples: int = BOOTSTRAP_SAMPLES) -> Discrimination:
    """How well `second` (label 1) is told apart from `first` (label 0), cross-validated by group."""
    if len(first) < 2 or len(second) < 2:
        raise TooFewChunks(f"{len(first)} and {len(second)} chunks: each side needs at least two")
    texts = [chunk.text for chunk in first] + [chunk.text for chunk in second]
    labels = [0] * len(first) + [1] * len(second)
    groups = [chunk.group for chunk in first] + [chunk.group for chunk in second]
    scores, folds = out_of_fold_scores(texts, labels, groups, seed)
    split = len(first)
    auc, low, high = auc_with_interval(scores[split:], scores[:split], positive_folds=folds[split:],
                                       negative_folds=folds[:split], samples=samples, seed=seed)
    return Discrimination(auc=auc, low=low, high=high, first_chunks=len(first), second_chunks=len(second),
                          folds=len(set(folds)))
