import numpy as np
import pytest
import scipy.sparse as sp
import torch

import recbole_compress.registry  # noqa: F401  (importing the registry applies the patches)
from recbole_compress import compat


def test_numpy_aliases_that_recbole_uses_exist():
    # RecBole's Config sets the aliases (np.float_ etc. are gone in numpy 2);
    # recbole/evaluator/metrics.py then spells np.float and np.bool
    from recbole_compress import Config

    Config(model="BPR", dataset="ml-100k")
    assert np.float is np.float64 or np.float is float
    assert np.zeros(2, dtype=np.bool).dtype == np.bool_


def test_dok_update_fills_matrix():
    m = sp.dok_matrix((3, 3), dtype=np.float32)
    m._update({(0, 1): 1.0, (2, 2): 3.0})
    assert m.toarray()[0, 1] == 1.0 and m.toarray()[2, 2] == 3.0 and m.nnz == 2


def test_apply_is_idempotent():
    compat.apply()
    compat.apply()


def test_recbole_checkpoint_is_weights_only(tmp_path):
    from recbole_compress.quick_start import run_recbole_compress
    from tests.conftest import TINY

    result = run_recbole_compress("BPR", "ml-100k", config_dict=TINY)
    files = list((tmp_path / "saved").rglob("BPR-*.pth"))
    assert files, "RecBole trainer should have saved a checkpoint"
    checkpoint = torch.load(files[0], weights_only=True)  # raises if anything but tensors/plain types
    assert checkpoint["config"]["model"] == "BPR"
    assert result["test_result"]


def test_recbole_load_data_and_model_reads_recbole_checkpoints_saved_here(tmp_path):
    """RecBole's own run and loader, in a process where recbole_compress is imported."""
    from recbole.quick_start import load_data_and_model, run_recbole
    from tests.conftest import TINY

    run_recbole(model="BPR", dataset="ml-100k", config_dict={**TINY, "checkpoint_dir": str(tmp_path / "ck")})
    [saved] = list((tmp_path / "ck").glob("BPR-*.pth"))
    config, model, _, _, _, test_data = load_data_and_model(str(saved))
    assert config["model"] == "BPR" and config["epochs"] == TINY["epochs"]
    state = torch.load(saved, weights_only=True)["state_dict"]
    assert torch.equal(model.state_dict()["item_embedding.weight"], state["item_embedding.weight"])
    assert len(test_data) > 0


def test_no_global_unsafe_loading_switch():
    import os

    assert "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD" not in os.environ
    with pytest.raises(Exception):
        # an arbitrary object is still refused by torch's safe loader
        import io

        buffer = io.BytesIO()
        torch.save({"obj": object()}, buffer)
        buffer.seek(0)
        torch.load(buffer, weights_only=True)


def test_recbole_model_lookup_leaves_anomaly_detection_off():
    """RecBole's sine.py switches autograd anomaly detection on at import (every
    backward then checks for NaN and records stack traces)."""
    import torch

    from recbole_compress import get_model

    get_model("SINE"), get_model("LightGCN")
    assert not torch.is_anomaly_enabled()
