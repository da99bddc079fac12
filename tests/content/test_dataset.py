"""Item content aligned to RecBole's internal item ids (TransRecDataset, align_content)."""

from __future__ import annotations

import numpy as np
import pytest

from recbole_compress.content.dataset import TEXT, align_content
from recbole_compress.errors import UserError
from tests.content_data import HEADER, tiktok_slice, transrec_data


def _shuffled_dataset(folder, name, rng):
    """A dataset whose tokens are not 0..n-1 in file order and whose content rows are shuffled."""
    tokens = [str(t) for t in rng.permutation(np.arange(100, 130))]
    rows = []
    for user in range(12):
        seq = rng.choice(tokens, size=6, replace=False).tolist()
        rows.append(f"{user}\t{' '.join(seq[:-1])}\t{seq[-1]}")
    for split in ("train", "valid", "test"):
        (folder / f"{name}.{split}.inter").write_text(HEADER + "\n".join(rows) + "\n")
    texts = {tok: f"item number {tok} text" for tok in tokens}
    order = rng.permutation(len(tokens))
    (folder / f"{name}.text").write_text(
        "item_id:token\ttext:token_seq\n" + "".join(f"{tokens[i]}\t{texts[tokens[i]]}\n" for i in order))
    vectors = rng.normal(size=(131, 4)).astype(np.float32)  # row r = token r
    np.save(folder / f"{name}.vec.npy", vectors)
    return texts, vectors


def test_content_rows_follow_internal_ids(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "shuf"
    folder.mkdir()
    texts, vectors = _shuffled_dataset(folder, "shuf", rng)
    _, dataset, train, _, _ = transrec_data(tmp_path, "shuf")
    content = train._dataset.item_content  # the split copies share it
    assert content is dataset.item_content
    tokens = dataset.field2id_token["item_id"]
    assert content.n_items == len(tokens) > 20
    assert content.texts[0] is None and not content.has[TEXT][0]  # [PAD]
    ids = list(range(1, len(tokens)))
    assert [content.texts[i] for i in ids] == [texts[tokens[i]] for i in ids]
    np.testing.assert_array_equal(content.features["vec"][ids], vectors[[int(tokens[i]) for i in ids]])
    assert list(content.modality()[:3]) == [0, 3, 3]  # bit 0 text, bit 1 the vec feature


def test_text_from_item_columns_and_mixed_modalities(tmp_path):
    """ml-100k-style .item titles; half the items text-only, half vector-only."""
    (tmp_path / "mix.item").write_text(
        "item_id:token\tmovie_title:token_seq\tyear:token\n11\tToy Story\t1995\n12\tHeat\t1995\n")
    np.save(tmp_path / "mix.img.npy", np.arange(12, dtype=np.float16).reshape(4, 3))
    content = align_content(["[PAD]", "12", "3", "11"], tmp_path, "mix", text_fields=["movie_title", "year"])
    assert content.texts == [None, "Heat. 1995", None, "Toy Story. 1995"]
    assert list(content.modality()) == [0, 1, 2, 1]
    np.testing.assert_array_equal(content.features["img"][2], [9, 10, 11])


def test_items_without_content_are_named(tmp_path):
    (tmp_path / "gap.text").write_text("item_id:token\ttext:token_seq\n1\tone\n")
    with pytest.raises(UserError, match=r"1 of 2 items of 'gap' have no content.*item tokens 7"):
        align_content(["[PAD]", "1", "7"], tmp_path, "gap")
    with pytest.raises(UserError, match="no item content"):
        align_content(["[PAD]", "1"], tmp_path, "nothing")
    with pytest.raises(UserError, match="not columns of"):
        (tmp_path / "bad.item").write_text("item_id:token\ttitle:token_seq\n1\tx\n")
        align_content(["[PAD]", "1"], tmp_path, "bad", text_fields=["movie_title"])


def test_bad_feature_files(tmp_path):
    (tmp_path / "f.text").write_text("item_id:token\ttext:token_seq\n1\tone\n")
    np.save(tmp_path / "f.flat.npy", np.zeros(5))
    with pytest.raises(UserError, match="2-D numeric matrix"):
        align_content(["[PAD]", "1"], tmp_path, "f", features=["flat"])
    with pytest.raises(UserError, match="does not exist"):
        align_content(["[PAD]", "1"], tmp_path, "f", features=["image"])


def test_tiktok_slice_has_both_vector_sources(tmp_path, shared_data):
    tiktok_slice(shared_data, tmp_path)
    _, dataset, train, valid, _ = transrec_data(tmp_path, "tt")
    content = dataset.item_content
    assert content.sources == ["audio", "image"]
    raw = np.load(shared_data / "tiktok" / "image_feat.npy")
    tokens = dataset.field2id_token["item_id"]
    np.testing.assert_allclose(content.features["image"][1:], raw[[int(t) for t in tokens[1:]]].astype(np.float32))
    assert (content.modality()[1:] == 3).all()
