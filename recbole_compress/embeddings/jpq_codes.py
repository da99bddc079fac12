"""RecJPQ code assignment: every item gets ``m`` codes in ``0..n_centroids-1`` (uint8),
fixed before training, computed from the TRAINING interactions only.

Strategies (Petrov & Macdonald, WSDM 2024):

- ``svd`` (default): truncated SVD (scikit-learn, randomized, ``random_state=seed``)
  of the binary user x item matrix with ``m`` components; each component's item
  values are cut into ``n_centroids`` equal-frequency (quantile) bins.
- ``bpr``: ``m``-dimensional BPR matrix factorisation on the same matrix, its item
  factors binned the same way.
- ``random``: uniform random codes.

Every strategy is deterministic under ``seed`` and uses private random generators,
so it leaves the global torch/numpy state (and hence the model's initialisation)
alone. Row 0 ([PAD]) gets code 0 on every split; the embedding zeroes that row.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from recbole_compress.errors import UserError

STRATEGIES = ("svd", "bpr", "random")
MAX_CENTROIDS = 256  # codes are uint8

# the small BPR model behind strategy "bpr" (item factors only serve the binning)
BPR_EPOCHS = 20
BPR_BATCH = 8192
BPR_LR = 0.05
BPR_REG = 1e-4


def training_matrix(dataset) -> sp.csr_matrix:
    """Binary ``n_users x n_items`` matrix of a RecBole dataset's interactions.

    Pass the TRAINING dataset (``train_data._dataset``, which is what a model's
    constructor receives): its ``inter_feat`` holds only the training split. For a
    ``SequentialDataset``, ``inter_matrix`` adds the first item of every training
    sequence to the targets, so every training interaction appears once and no
    validation/test target does.
    """
    matrix = dataset.inter_matrix(form="csr").astype(np.float32)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    matrix.eliminate_zeros()
    return matrix.tocsr()


def svd_max_code_length(matrix: sp.spmatrix) -> int:
    """Largest ``m`` the svd strategy accepts for ``matrix`` ([PAD] row/column dropped)."""
    rows, cols = matrix.shape
    return max(min(rows - 1, cols - 1) - 1, 0)


def assign_codes(
    strategy: str,
    matrix: sp.spmatrix,
    code_length: int,
    n_centroids: int = MAX_CENTROIDS,
    seed: int = 0,
    bpr_epochs: int = BPR_EPOCHS,
) -> torch.Tensor:
    """uint8 codes ``[n_items, code_length]`` for the items (columns) of ``matrix``."""
    check_code_settings(strategy, code_length, n_centroids)
    n_items = matrix.shape[1]
    if n_items < 2:
        raise UserError("JPQ code assignment needs at least one item besides [PAD]; check the dataset")
    rng = np.random.default_rng(seed)
    if strategy == "random":
        g = torch.Generator().manual_seed(int(seed))
        codes = torch.randint(0, n_centroids, (n_items - 1, code_length), generator=g, dtype=torch.int64)
    else:
        factors = svd_item_factors(matrix, code_length, seed) if strategy == "svd" else bpr_item_factors(matrix, code_length, seed, bpr_epochs)
        codes = torch.from_numpy(quantile_codes(factors, n_centroids, rng))
    pad = torch.zeros(1, code_length, dtype=torch.int64)  # [PAD]: code 0, row zeroed by the embedding
    return torch.cat([pad, codes]).to(torch.uint8)


def check_code_settings(strategy, code_length, n_centroids) -> None:
    if strategy not in STRATEGIES:
        raise UserError(f"jpq_assignment={strategy} is not one of {', '.join(STRATEGIES)}; use svd (the paper's default)")
    if not isinstance(code_length, (int, np.integer)) or isinstance(code_length, bool) or code_length < 1:
        raise UserError(f"jpq_code_length={code_length} must be a positive integer (the paper uses 8)")
    if not isinstance(n_centroids, (int, np.integer)) or isinstance(n_centroids, bool) or not 2 <= n_centroids <= MAX_CENTROIDS:
        raise UserError(
            f"jpq_centroids={n_centroids} is outside 2..{MAX_CENTROIDS}: codes are stored as uint8; use at most {MAX_CENTROIDS}"
        )


def svd_item_factors(matrix: sp.spmatrix, dim: int, seed: int) -> np.ndarray:
    """``[n_items - 1, dim]`` item factors of a truncated SVD ([PAD] row/column dropped)."""
    from sklearn.decomposition import TruncatedSVD

    x = sp.csr_matrix(matrix)[1:, 1:]
    limit = svd_max_code_length(matrix)
    if dim > limit:
        raise UserError(
            f"jpq_code_length={dim} is more than svd code assignment allows for a {x.shape[0]} x {x.shape[1]} "
            f"training matrix (at most {limit}); use a smaller jpq_code_length or jpq_assignment=random"
        )
    svd = TruncatedSVD(n_components=dim, algorithm="randomized", random_state=int(seed))
    svd.fit(x.astype(np.float64))
    return svd.components_.T.astype(np.float64)  # [n_items - 1, dim]


def bpr_item_factors(matrix: sp.spmatrix, dim: int, seed: int, epochs: int = BPR_EPOCHS) -> np.ndarray:
    """``[n_items - 1, dim]`` item factors of a small BPR-MF trained on ``matrix``
    (Adam, one uniformly sampled negative per interaction). Runs on one thread:
    its tensors are tiny, and more threads only add synchronisation."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _bpr(matrix, dim, seed, epochs)
    finally:
        torch.set_num_threads(threads)


def _bpr(matrix: sp.spmatrix, dim: int, seed: int, epochs: int) -> np.ndarray:
    coo = sp.coo_matrix(matrix)
    keep = (coo.row > 0) & (coo.col > 0)
    users = torch.from_numpy(coo.row[keep].astype(np.int64))
    items = torch.from_numpy(coo.col[keep].astype(np.int64))
    n_users, n_items = matrix.shape
    g = torch.Generator().manual_seed(int(seed))
    user_f = (torch.randn(n_users, dim, generator=g) * 0.1).requires_grad_()
    item_f = (torch.randn(n_items, dim, generator=g) * 0.1).requires_grad_()
    if users.numel() == 0:
        return item_f.detach()[1:].double().numpy()
    opt = torch.optim.Adam([user_f, item_f], lr=BPR_LR)
    for _ in range(epochs):
        order = torch.randperm(users.numel(), generator=g)
        for start in range(0, users.numel(), BPR_BATCH):
            idx = order[start : start + BPR_BATCH]
            u, i = users[idx], items[idx]
            j = torch.randint(1, n_items, (idx.numel(),), generator=g)
            eu, ei, ej = F.embedding(u, user_f), F.embedding(i, item_f), F.embedding(j, item_f)
            loss = -F.logsigmoid((eu * (ei - ej)).sum(-1)).mean()
            loss = loss + BPR_REG * (eu.pow(2).sum() + ei.pow(2).sum() + ej.pow(2).sum()) / idx.numel()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return item_f.detach()[1:].double().numpy()


def quantile_codes(factors: np.ndarray, n_centroids: int, rng: np.random.Generator) -> np.ndarray:
    """Per column, equal-frequency binning of the values into ``n_centroids`` bins
    (rank * n_centroids // n). Ties (e.g. items with no training interaction,
    whose SVD values are all 0) are broken by a seeded random order, so they
    spread over the bins instead of sharing one code."""
    n, m = factors.shape
    codes = np.empty((n, m), dtype=np.int64)
    for k in range(m):
        tiebreak = rng.permutation(n)
        order = np.lexsort((tiebreak, factors[:, k]))
        ranks = np.empty(n, dtype=np.int64)
        ranks[order] = np.arange(n)
        codes[:, k] = ranks * n_centroids // n
    return codes
