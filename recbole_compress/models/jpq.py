"""RecJPQ (Petrov & Macdonald, WSDM 2024): the item table of a sequential model as
sub-item codes (:class:`~recbole_compress.embeddings.jpq.JPQEmbedding`), used for
both the input sequence and the output scoring.

``SASRec_JPQ``, ``BERT4Rec_JPQ`` and ``GRU4Rec_JPQ`` are RecBole's models with the
item table swapped and ``full_sort_predict`` scoring through PQTopK
(``item_embedding.score_all``) instead of a materialised table; everything else is
RecBole's code. Any other RecBole model works as ``<Model>_JPQ`` (its item table
swapped; scoring through the materialised ``.weight``).
"""

from __future__ import annotations

import torch
from recbole.model.sequential_recommender import BERT4Rec, GRU4Rec, SASRec

from recbole_compress.embeddings.base import compressed_modules
from recbole_compress.embeddings.jpq import SCORING_PATHS, JPQEmbedding, check_divides
from recbole_compress.embeddings.jpq_codes import assign_codes, check_code_settings, training_matrix
from recbole_compress.errors import UserError
from recbole_compress.export import exported_bytes
from recbole_compress.registry import CompressionMethod, compressed_model_class, register_method, register_model


def _settings(config) -> tuple[int, int, str, str]:
    m, k, strategy = config["jpq_code_length"], config["jpq_centroids"], config["jpq_assignment"]
    scoring = config["jpq_scoring"] or "auto"
    check_code_settings(strategy, m, k)
    if scoring not in SCORING_PATHS:
        raise UserError(f"jpq_scoring={scoring} is not one of {', '.join(SCORING_PATHS)}; use auto")
    return int(m), int(k), str(strategy), str(scoring)


# the config key that sizes each backbone's item table
TABLE_DIM_KEY = {"SASRec": "hidden_size", "BERT4Rec": "hidden_size", "GRU4Rec": "embedding_size"}


def _table_dim_key(config) -> str:
    base = getattr(config.model_class, "base_model_name", None)
    if base in TABLE_DIM_KEY:
        return TABLE_DIM_KEY[base]
    # other models: embedding_size where their RecBole yaml has one (NARM, Caser, BPR, ...), else hidden_size
    return "embedding_size" if "embedding_size" in config.internal_config_dict else "hidden_size"


def check_jpq_config(config) -> None:
    """Fail before any data is loaded: code settings, and ``m`` dividing the item
    embedding size (``hidden_size`` for SASRec/BERT4Rec, ``embedding_size`` for
    GRU4Rec). ``make_jpq_embedding`` checks the real table again."""
    _settings(config)
    key = _table_dim_key(config)
    dim = config[key]
    if isinstance(dim, int) and not isinstance(dim, bool):
        check_divides(int(config["jpq_code_length"]), dim, key)


def make_jpq_embedding(dense, config, name, dataset) -> JPQEmbedding:
    """The JPQ table replacing ``dense``: codes from the training interactions of
    ``dataset`` (the training split a RecBole model is built with)."""
    m, k, strategy, scoring = _settings(config)
    n_items = int(dataset.item_num)
    if dense.num_embeddings < n_items:
        raise UserError(
            f"JPQ compresses item tables: '{name}' has {dense.num_embeddings} rows but the dataset has {n_items} items; "
            "set compress_tables: [item_embedding]"
        )
    check_divides(m, dense.embedding_dim, name)
    codes = assign_codes(strategy, training_matrix(dataset), m, k, seed=int(config["seed"]))
    return JPQEmbedding.from_dense(dense, codes, k, padding_idx=dense.padding_idx, scoring=scoring)


class JPQTrainerMixin:
    """Adds the coded tables' figures to summary.json (training is RecBole's own)."""

    def extra_summary(self) -> dict:
        tables = {
            name: {
                "bytes": module.export_bytes(),
                "dense_bytes": module.dense_bytes(),
                "parameters": module.parameter_count(),
                "dense_parameters": module.dense_parameter_count(),
                "items": module.n_coded,
                "code_length": module.code_length,
                "centroids": module.n_centroids,
                "special_rows": module.n_special,
            }
            for name, module in compressed_modules(self.model)
            if isinstance(module, JPQEmbedding)
        }
        return {"jpq": {"assignment": self.config["jpq_assignment"], "tables": tables}}


def untrained_tables(tables, setting: tuple[int, int], settings=None) -> list[JPQEmbedding] | None:
    """JPQ tables for ``tables`` (records with .rows, .dim) at ``setting`` = (code
    length, centroids); None when the code length does not divide a table's width."""
    code_length, centroids = setting
    if any(t.dim % code_length for t in tables):
        return None
    return [
        JPQEmbedding(torch.zeros(t.rows, code_length, dtype=torch.uint8), t.dim, centroids, padding_idx=0)
        for t in tables
    ]


def exported_table_bytes(tables, setting: tuple[int, int], settings=None) -> int | None:
    """Bytes those tables export (codes and codebooks: their size does not depend on training)."""
    modules = untrained_tables(tables, setting, settings)
    return None if modules is None else exported_bytes(modules)


JPQ = register_method(
    CompressionMethod(
        name="JPQ",
        make_embedding=make_jpq_embedding,
        trainer_mixin=JPQTrainerMixin,
        check_config=check_jpq_config,
        doc="Items as m uint8 sub-item codes into m trainable codebooks (RecJPQ); PQTopK scoring.",
        untrained_tables=untrained_tables,
        exported_table_bytes=exported_table_bytes,
    )
)


@register_model
class SASRec_JPQ(compressed_model_class(SASRec, JPQ)):
    """RecBole's SASRec with a JPQ item table (input and output); full ranking by PQTopK."""

    def full_sort_predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return self.item_embedding.score_all(seq_output)  # [B, n_items]


@register_model
class GRU4Rec_JPQ(compressed_model_class(GRU4Rec, JPQ)):
    """RecBole's GRU4Rec with a JPQ item table (input and output); full ranking by PQTopK."""

    def full_sort_predict(self, interaction):
        seq_output = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        return self.item_embedding.score_all(seq_output)  # [B, n_items]


@register_model
class BERT4Rec_JPQ(compressed_model_class(BERT4Rec, JPQ)):
    """RecBole's BERT4Rec with a JPQ item table: items coded, the [MASK] token (row
    ``n_items``) kept as one dense special row; the output bias stays dense.
    Full ranking by PQTopK (special rows are never scored)."""

    def full_sort_predict(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        item_seq = self.reconstruct_test_data(item_seq, item_seq_len)
        seq_output = self.forward(item_seq)
        seq_output = self.gather_indexes(seq_output, item_seq_len - 1)  # [B H]
        return self.item_embedding.score_all(seq_output) + self.output_bias  # [B, n_items]
