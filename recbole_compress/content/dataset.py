"""Item content aligned to RecBole's internal item ids (the UniSRec dataset pattern).

RecBole remaps item tokens to internal ids 1..n-1 (0 is [PAD]) in the order it meets
them, so a content file keyed by raw tokens must be re-indexed before a model can
look rows up by id. :class:`TransRecDataset` does that once, after RecBole's own
loading, and keeps the result in ``dataset.item_content`` (shared by the split copies).

Sources, all keyed by the raw ``item_id`` token:
- text: ``{dataset}.text`` (``item_id:token text:token_seq``, the UniSRec file), or,
  with ``item_text_fields: [f, ...]`` and no ``.text`` file, those columns of
  ``{dataset}.item`` joined by ". " (ml-100k: ``[movie_title, release_year, class]``);
- vectors: ``{dataset}.<name>.npy`` for each name in ``item_features`` (``auto``: every
  such file), a float ``[rows, dim]`` matrix whose row ``r`` belongs to item token ``r``
  (a row of NaN: the item has no such vector).

Each item gets a modality flag (bit 0 text, bit k+1 feature k), so one history may mix
text items and vector items. An item with no source at all is an error.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from recbole.data.dataset import SequentialDataset

from recbole_compress.errors import UserError

TEXT = "text"


@dataclass
class ItemContent:
    """Content rows indexed by internal item id (row 0 = [PAD], no content)."""

    n_items: int
    texts: list[str | None] | None = None  # None: no text source
    features: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float32 [n_items, dim]
    has: dict[str, np.ndarray] = field(default_factory=dict)  # source -> bool [n_items]

    @property
    def sources(self) -> list[str]:
        return ([TEXT] if self.texts is not None else []) + list(self.features)

    def modality(self) -> np.ndarray:
        """int64 bitmask per item: bit i set when source i (``sources`` order) describes it."""
        flags = np.zeros(self.n_items, dtype=np.int64)
        for bit, name in enumerate(self.sources):
            flags |= self.has[name].astype(np.int64) << bit
        return flags


def _atomic_columns(path: Path) -> tuple[list[str], list[list[str]]]:
    """Field names (without ``:type``) and rows of a tab-separated atomic file."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header:
            raise UserError(f"{path} is empty; expected a 'field:type' header")
        return [h.split(":")[0] for h in header], [row for row in reader if row]


def read_item_texts(folder: Path, name: str, fields: list[str] | None) -> dict[str, str] | None:
    """raw item token -> text, from ``{name}.text`` or the ``fields`` of ``{name}.item``."""
    text_file = folder / f"{name}.text"
    if text_file.is_file():
        names, rows = _atomic_columns(text_file)
        if names[:2] != ["item_id", "text"]:
            raise UserError(f"{text_file} must have the header 'item_id:token<TAB>text:token_seq', got {names}")
        return {row[0]: row[1].strip() for row in rows if len(row) >= 2}
    if not fields:
        return None
    item_file = folder / f"{name}.item"
    if not item_file.is_file():
        raise UserError(f"item_text_fields={fields} needs {item_file}, which does not exist; add it or unset item_text_fields")
    names, rows = _atomic_columns(item_file)
    unknown = [f for f in fields if f not in names]
    if unknown or "item_id" not in names:
        raise UserError(f"item_text_fields names {unknown or ['item_id']}, not columns of {item_file} ({', '.join(names)})")
    cols = [names.index(f) for f in fields]
    key = names.index("item_id")
    return {row[key]: ". ".join(row[c].strip() for c in cols if c < len(row) and row[c].strip()) for row in rows}


def feature_names(folder: Path, name: str, wanted) -> list[str]:
    """The vector features to load: ``wanted`` (a list), or every ``{name}.<f>.npy`` for ``auto``."""
    if wanted in (None, "none", []):
        return []
    if wanted == "auto":
        return sorted(p.name[len(name) + 1 : -len(".npy")] for p in folder.glob(f"{name}.*.npy"))
    if isinstance(wanted, str):
        wanted = [wanted]
    for feat in wanted:
        if not (folder / f"{name}.{feat}.npy").is_file():
            raise UserError(f"item_features names '{feat}' but {folder / f'{name}.{feat}.npy'} does not exist; "
                            "convert the dataset with its features or fix item_features")
    return list(wanted)


def load_feature(path: Path) -> np.ndarray:
    try:
        matrix = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise UserError(f"{path} is not a plain numeric .npy matrix ({err}); save it with numpy.save") from None
    if matrix.ndim != 2 or not np.issubdtype(matrix.dtype, np.number):
        raise UserError(f"{path} must be a 2-D numeric matrix [items, dim], got shape {matrix.shape} dtype {matrix.dtype}")
    matrix = matrix.astype(np.float32)
    missing = np.isnan(matrix).all(axis=1)  # an all-NaN row: the item has no such vector
    if not np.isfinite(matrix[~missing]).all():
        raise UserError(f"{path} holds NaN or infinite values inside rows; clean them (a whole NaN row marks an item without this feature)")
    return matrix


def align_content(tokens: list[str], folder: Path, name: str, text_fields=None, features="auto") -> ItemContent:
    """Content rows for ``tokens`` (RecBole's ``id2token`` of the item field: index = internal id)."""
    n = len(tokens)
    content = ItemContent(n_items=n)
    texts = read_item_texts(folder, name, text_fields)
    if texts is not None:
        content.texts = [None] + [texts.get(tok) or None for tok in tokens[1:]]
        content.has[TEXT] = np.array([t is not None for t in content.texts])
    for feat in feature_names(folder, name, features):
        matrix = load_feature(folder / f"{name}.{feat}.npy")
        rows = np.zeros((n, matrix.shape[1]), dtype=np.float32)
        has = np.zeros(n, dtype=bool)
        for idx, tok in enumerate(tokens[1:], 1):
            if tok.isdigit() and int(tok) < len(matrix) and not np.isnan(matrix[int(tok), 0]):
                rows[idx] = matrix[int(tok)]
                has[idx] = True
        content.features[feat] = rows
        content.has[feat] = has
    if not content.sources:
        raise UserError(
            f"dataset '{name}' has no item content for TransRec: no {folder / (name + '.text')}, no item_text_fields, "
            f"no {name}.<feature>.npy; add item text or feature vectors (see recbole_compress.content.dataset)"
        )
    described = np.zeros(n, dtype=bool)
    for has in content.has.values():
        described |= has
    missing = [tokens[i] for i in range(1, n) if not described[i]]
    if missing:
        raise UserError(
            f"{len(missing)} of {n - 1} items of '{name}' have no content ({', '.join(content.sources)}), "
            f"e.g. item tokens {', '.join(missing[:5])}; add their text/feature rows or drop their interactions"
        )
    return content


class TransRecDataset(SequentialDataset):
    """RecBole's SequentialDataset plus ``item_content`` aligned to internal item ids."""

    def _from_scratch(self):
        super()._from_scratch()
        folder = Path(self.config["data_path"])
        tokens = [str(t) for t in self.field2id_token[self.iid_field]]
        self.item_content = align_content(
            tokens, folder, self.dataset_name,
            text_fields=self.config["item_text_fields"], features=self.config["item_features"],
        )
        self.logger.info(
            f"item content: {', '.join(f'{s} for {int(h.sum())} items' for s, h in self.item_content.has.items())}"
        )
