"""Funnel metrics of multi-task CTR/CVR models, each on its own subset of exposures.

- CTR AUC and LogLoss: P(click) on all exposures;
- CVR AUC: P(conversion | click) on the clicked exposures only;
- CTCVR AUC: P(click and conversion) = pCTR * pCVR on all exposures.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

_EPS = 1e-7


def auc(labels, scores) -> float:
    """Area under the ROC curve (ties count one half); NaN when a class is absent."""
    labels = np.asarray(labels, dtype=np.float64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = labels > 0.5
    n_pos = int(positives.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels, probs) -> float:
    labels = np.asarray(labels, dtype=np.float64).ravel()
    probs = np.clip(np.asarray(probs, dtype=np.float64).ravel(), _EPS, 1 - _EPS)
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log(1 - probs)))


def funnel_metrics(click, conversion, p_ctr, p_cvr) -> dict[str, float]:
    """``ctr_auc``, ``ctr_logloss``, ``cvr_auc`` (clicked rows), ``ctcvr_auc`` (all rows)."""
    click = np.asarray(click, dtype=np.float64).ravel()
    conversion = np.asarray(conversion, dtype=np.float64).ravel()
    p_ctr = np.asarray(p_ctr, dtype=np.float64).ravel()
    p_cvr = np.asarray(p_cvr, dtype=np.float64).ravel()
    clicked = click > 0.5
    return {
        "ctr_auc": auc(click, p_ctr),
        "ctr_logloss": log_loss(click, p_ctr),
        "cvr_auc": auc(conversion[clicked], p_cvr[clicked]),
        "ctcvr_auc": auc(click * conversion, p_ctr * p_cvr),
    }
