"""Compressed embedding tables: the interface every method implements."""

from recbole_compress.embeddings.base import CompressedEmbedding, compress, compressed_modules, id_tables
from recbole_compress.embeddings.masked import MaskedEmbedding, TensorMask

__all__ = ["CompressedEmbedding", "MaskedEmbedding", "TensorMask", "compress", "compressed_modules", "id_tables"]
