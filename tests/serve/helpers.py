"""Models built for serving tests: on the training split, their tables made what training
leaves (random ticket masks, CERP/PEP budgets fixed), exported with a serving block."""

import sys

import pytest
import torch

from recbole_compress import load
from recbole_compress.embeddings.base import compressed_modules
from recbole_compress.export import export_model, model_accounting, save_artifact
from recbole_compress.serve.block import serving_block
from tests.conftest import TINY

GENERAL = {**TINY, "embedding_size": 32}
SEQUENTIAL = {**TINY, "n_layers": 1, "n_heads": 2, "hidden_size": 32, "inner_size": 32, "embedding_size": 32,
              "MAX_ITEM_LIST_LENGTH": 10, "jpq_code_length": 4, "user_inter_num_interval": "[20,40]"}
K = 10


def config_for(name, settings):
    from recbole_compress import Config

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", ["pytest"])
        return Config(model=name, dataset="ml-100k", config_dict=settings)


def model_for_serving(name, settings, train):
    """A model of ``name`` on the training split, its tables made what training leaves."""
    from recbole.utils import init_seed

    from recbole_compress import get_model
    from recbole_compress.embeddings.cerp import PrunedEmbedding
    from recbole_compress.embeddings.masked import enforce_masks, masked_tensors

    config = config_for(name, settings)
    init_seed(config["seed"], config["reproducibility"])
    model = get_model(name)(config, train._dataset).eval()
    g = torch.Generator().manual_seed(7)
    pruned = [m for _, m in compressed_modules(model) if isinstance(m, PrunedEmbedding)]
    with torch.no_grad():
        for module in pruned:  # CERP's and PEP's stage 2: exactly the budget kept
            for part in module.parts:
                getattr(module, f"{part}_threshold").normal_(-3.0, 2.0, generator=g)
            module.fix_mask(module.budget)
        if not pruned:
            for _, _, mask in masked_tensors(model):  # tickets: about 20% kept
                mask.mask &= torch.rand(mask.mask.shape, generator=g) < 0.2
        enforce_masks(model)
    return config, model


def serve(config, model, train, folder):
    artifact = export_model(model, serving=serving_block(config, train._dataset))
    folder.mkdir()
    save_artifact(artifact, folder / "model.pt")
    return load(folder), model_accounting(model, artifact)
