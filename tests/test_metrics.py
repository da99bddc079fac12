"""Funnel metrics against scikit-learn, each on its own subset of exposures."""

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from recbole_compress.metrics import auc, funnel_metrics


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500), 1)  # many ties
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert math.isnan(auc(np.ones(5), rng.random(5)))


def test_funnel_metrics_use_the_right_subsets():
    rng = np.random.default_rng(1)
    n = 2000
    click = (rng.random(n) < 0.3).astype(float)
    conversion = click * (rng.random(n) < 0.5)
    p_ctr = np.clip(0.3 + 0.4 * click + 0.2 * rng.standard_normal(n), 0.01, 0.99)
    p_cvr = np.clip(0.4 + 0.3 * conversion + 0.3 * rng.standard_normal(n), 0.01, 0.99)
    got = funnel_metrics(click, conversion, p_ctr, p_cvr)
    clicked = click == 1
    assert got["ctr_auc"] == pytest.approx(roc_auc_score(click, p_ctr))
    assert got["ctr_logloss"] == pytest.approx(sk_log_loss(click, p_ctr))
    assert got["cvr_auc"] == pytest.approx(roc_auc_score(conversion[clicked], p_cvr[clicked]))
    assert got["ctcvr_auc"] == pytest.approx(roc_auc_score(click * conversion, p_ctr * p_cvr))
    # CVR on all exposures would differ: the subset matters
    assert got["cvr_auc"] != pytest.approx(roc_auc_score(conversion, p_cvr), abs=1e-3)
