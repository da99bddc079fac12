"""GPU readiness without a GPU: every method's forward pass, loss and full-sort scoring on a
fake CUDA device (PyTorch's FakeTensorMode: shapes, dtypes and devices, no data).

Every parameter, buffer and tensor attribute of the model, and the batch, are fake tensors
on ``cuda:0``; a tensor the method creates on the CPU (a mask, a code table, offsets, a
cache, sampled negatives) meets them in an op and fails with "found at least two devices".
Graph backbones (LightGCN) multiply by a sparse matrix, which fake tensors cannot run, so
the methods are checked on BPR (user and item tables) and SASRec (a sequential item table);
the tables are the same modules. The real CUDA run is tests/test_gpu.py.
"""

import sys

import pytest
import torch

from tests.conftest import TINY

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore:Accessing the data pointer of FakeTensor")]

SMALL = {**TINY, "embedding_size": 16, "hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 2,
         "MAX_ITEM_LIST_LENGTH": 10, "train_batch_size": 64, "eval_batch_size": 64, "memory_budget": 0.2,
         "jpq_code_length": 4}
CASES = [("BPR", m) for m in ("LTH", "PEP", "CERP", "QR", "QR_LTH")] + [("SASRec", m) for m in ("JPQ", "LTH", "CERP")]


def fake_cuda_mode():
    from torch._subclasses.fake_tensor import FakeTensorMode

    return FakeTensorMode(allow_non_fake_inputs=False)


def to_fake_cuda(model: torch.nn.Module, mode) -> torch.nn.Module:
    """Every parameter, buffer and plain tensor attribute -> a fake tensor on cuda:0 (as
    ``model.to('cuda')`` and RecBole's ``.to(config['device'])`` in __init__ would)."""
    moves = []
    for module in model.modules():
        for name, p in module._parameters.items():
            if p is not None:
                moves.append((module, name, "parameter", mode.from_tensor(p.data), p.requires_grad))
        for name, b in module._buffers.items():
            if b is not None:
                moves.append((module, name, "buffer", mode.from_tensor(b), None))
        for name, t in vars(module).items():
            if isinstance(t, torch.Tensor) and not isinstance(t, torch.nn.Parameter) and not t.is_sparse:
                moves.append((module, name, "attribute", mode.from_tensor(t), None))
    with mode:
        for module, name, kind, fake, grad in moves:
            if kind == "parameter":
                module._parameters[name] = torch.nn.Parameter(fake.to("cuda"), requires_grad=grad)
            elif kind == "buffer":
                module._buffers[name] = fake.to("cuda")
            else:
                setattr(module, name, fake.to("cuda"))
    return model


def fake_batch(interaction, mode):
    raw = {k: mode.from_tensor(v) for k, v in interaction.interaction.items()}
    with mode:
        return type(interaction)({k: v.to("cuda") for k, v in raw.items()})


@pytest.fixture(scope="module")
def loaders():
    from tests.conftest import load_splits

    cache = {}

    def get(backbone):
        if backbone not in cache:
            model = f"{backbone}_LTH"
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(sys, "argv", ["pytest"])
                cache[backbone] = load_splits(model, SMALL)
        return cache[backbone]

    return get


@pytest.mark.parametrize("backbone, method", CASES)
def test_method_runs_on_a_fake_cuda_device(loaders, backbone, method):
    from recbole_compress.config import Config
    from recbole_compress.registry import get_model

    name = f"{backbone}_{method}"
    train, valid, _ = loaders(backbone)
    config = Config(model=name, dataset="ml-100k", config_dict=dict(SMALL))
    model = get_model(name)(config, train._dataset)
    mode = fake_cuda_mode()
    batch = fake_batch(next(iter(train)), mode)
    query = fake_batch(next(iter(valid))[0], mode)
    to_fake_cuda(model, mode)
    with mode:
        config["device"] = torch.device("cuda")
        loss = model.calculate_loss(batch)
        loss = sum(loss) if isinstance(loss, tuple) else loss
        model.eval()
        scores = model.full_sort_predict(query)
    assert loss.device.type == "cuda" and scores.device.type == "cuda"


@pytest.mark.parametrize("path", ["pairs", "bag", "dense"])
def test_pqtopk_scoring_paths_on_a_fake_cuda_device(path):
    from recbole_compress.embeddings.jpq import JPQEmbedding

    codes = torch.randint(0, 16, (500, 4), generator=torch.Generator().manual_seed(0)).to(torch.uint8)
    mode = fake_cuda_mode()
    table = to_fake_cuda(JPQEmbedding(codes, 16, 16).eval(), mode)
    query = mode.from_tensor(torch.randn(3, 16))
    with mode, torch.no_grad():
        scores = table.score_all(query.to("cuda"), path)
        rows = table(mode.from_tensor(torch.tensor([0, 7])).to("cuda"))
    assert scores.device.type == "cuda" and tuple(scores.shape) == (3, 500) and rows.device.type == "cuda"


def test_the_check_catches_a_tensor_left_on_the_cpu():
    """The fake device is a real check: a table whose forward builds its offsets on the CPU fails.
    (torch 2.15 raises FakeTensorDeviceMismatchError, torch 2.11 a plain RuntimeError; both name the two devices.)"""

    class CpuOffsets(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.codes = torch.nn.Embedding(10, 4)

        def forward(self, ids):
            return self.codes(ids) + torch.arange(4)  # offsets created without the ids' device

    mode = fake_cuda_mode()
    model = to_fake_cuda(CpuOffsets(), mode)
    ids = mode.from_tensor(torch.tensor([1, 2]))
    with mode, pytest.raises(RuntimeError, match=r"two (different )?devices"):
        model(ids.to("cuda"))
