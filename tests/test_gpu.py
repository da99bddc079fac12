"""The methods on a real GPU: train, export, serve (rebuild the exported model and score)
and PQTopK on cuda. Skipped without CUDA; benchmarks/gpu_check.sh runs it on a GPU machine.
Without a GPU, tests/test_device.py checks the same code paths on a fake CUDA device."""

import pytest
import torch

from tests.conftest import TINY

pytestmark = [pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
              pytest.mark.usefixtures("one_thread")]

GPU = {**TINY, "use_gpu": True, "gpu_id": "0", "embedding_size": 16, "n_layers": 1, "train_batch_size": 2048,
       "memory_budget": 0.2, "prune_schedule": "oneshot", "prune_rounds": 1, "prune_rate": 0.5,
       "ticket_select": "sparsest", "threshold_pace": 0.2, "threshold_epochs": 2}
SEQUENTIAL = {**GPU, "hidden_size": 16, "inner_size": 32, "n_heads": 2, "MAX_ITEM_LIST_LENGTH": 20,
              "jpq_code_length": 4, "train_neg_sample_args": None}
# all-position training (seqtrain/): windows and negatives are built on the CPU, moved with the batch
ALL_POSITIONS = {**SEQUENTIAL, "train_mode": "all_positions", "train_batch_size": 64}
MODELS = [("LightGCN_LTH", GPU), ("LightGCN_PEP", GPU), ("LightGCN_CERP", GPU), ("LightGCN_QR", GPU),
          ("LightGCN_QR_LTH", GPU), ("SASRec_JPQ", SEQUENTIAL), ("SASRec_LTH", SEQUENTIAL),
          ("SASRec_JPQ", {**ALL_POSITIONS, "loss_type": "BCE"}), ("SASRec", {**ALL_POSITIONS, "loss_type": "gBCE",
                                                                          "neg_samples": 16}),
          ("GRU4Rec_JPQ", {**ALL_POSITIONS, "loss_type": "CE", "embedding_size": 16})]
IDS = [m + (f"-{s['train_mode']}-{s['loss_type']}" if "train_mode" in s else "") for m, s in MODELS]


@pytest.mark.parametrize("model, settings", MODELS, ids=IDS)
def test_train_export_and_serve_on_cuda(tmp_path, model, settings):
    from recbole_compress import load_model, run_recbole_compress
    from recbole_compress.export import load_artifact

    result = run_recbole_compress(model, "ml-100k", config_dict={**settings, "output_dir": str(tmp_path / "run")})
    summary = result["summary"]
    assert summary["device"].startswith("cuda"), summary["device"]
    assert summary["test"] and summary["model_bytes"] > 0
    # the artifact is device-free: every tensor loads on the CPU
    artifact = load_artifact(tmp_path / "run" / "model.pt")
    assert all(t.device.type == "cpu" for t in artifact["tensors"].values())
    # serve: rebuild from the artifact on the GPU and score a batch of test users
    served, config, test_data = load_model(tmp_path / "run")
    assert next(served.parameters()).device.type == "cuda"
    batch = next(iter(test_data))[0].to(config["device"])
    with torch.no_grad():
        scores = served.full_sort_predict(batch)
    assert scores.device.type == "cuda" and torch.isfinite(scores).all()


@pytest.mark.parametrize("path", ["pairs", "bag", "dense"])
def test_pqtopk_on_cuda_equals_materialised_scores(path):
    from recbole_compress.embeddings.jpq import JPQEmbedding

    g = torch.Generator().manual_seed(0)
    table = JPQEmbedding(torch.randint(0, 256, (20_000, 8), generator=g).to(torch.uint8), 64, 256)
    table = table.cuda().eval()
    query = torch.randn(5, 64, device="cuda")
    with torch.no_grad():
        expected = query @ table.coded_table().T
        expected[:, 0] = 0.0
        scores = table.score_all(query, path)
    assert scores.device.type == "cuda"
    assert torch.allclose(scores, expected, atol=1e-3, rtol=1e-3)
