"""All-position training runs end to end, is deterministic under the seed, leaves
prefix training to RecBole, and composes with the compression methods (tiny runs)."""

import pytest

from recbole_compress import run_recbole_compress
from recbole_compress.registry import get_trainer
from recbole_compress.seqtrain.trainer import AllPositionsTrainerMixin
from recbole_compress.trainers.cerp import BudgetTrainerMixin
from recbole_compress.trainers.stats import RunStatsMixin
from tests.seqtrain.helpers import ALL_POSITIONS

pytestmark = pytest.mark.usefixtures("one_thread")
TINY_RUN = {**ALL_POSITIONS, "epochs": 1, "train_batch_size": 256}


def test_every_sequential_trainer_has_the_mixin_under_the_methods():
    from recbole.utils import ModelType

    mro = get_trainer(ModelType.SEQUENTIAL, "SASRec_CERP").__mro__
    order = [mro.index(k) for k in (BudgetTrainerMixin, RunStatsMixin, AllPositionsTrainerMixin)]
    assert order == sorted(order)  # the method's loss_func reaches the all-positions epoch
    assert AllPositionsTrainerMixin not in get_trainer(ModelType.GENERAL, "BPR").__mro__


def test_prefix_mode_trains_on_recbole_loader():

    class Recorder:
        def __init__(self, config, model):
            self.seen = None

        def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
            self.seen = (train_data, loss_func)

    class Trainer(AllPositionsTrainerMixin, Recorder):
        pass

    config = {"train_mode": "prefix"}

    class FakeConfig(dict):
        def __getitem__(self, key):
            return self.get(key)

    trainer = Trainer(FakeConfig(config), model=None)
    loader, loss = object(), object()
    trainer._train_epoch(loader, 0, loss_func=loss)
    assert trainer.seen == (loader, loss) and trainer.all_positions is None


def _run(tmp_path, model, name, **extra):
    return run_recbole_compress(model, "ml-100k", config_dict={**TINY_RUN, "output_dir": str(tmp_path / name), **extra})


def test_runs_are_deterministic_under_the_seed(tmp_path):
    first = _run(tmp_path, "SASRec", "a", loss_type="gBCE", neg_samples=4)
    again = _run(tmp_path, "SASRec", "b", loss_type="gBCE", neg_samples=4)
    other = _run(tmp_path, "SASRec", "c", loss_type="gBCE", neg_samples=4, seed=7)
    assert first["test_result"] == again["test_result"]
    assert first["test_result"] != other["test_result"]
    curve = first["summary"]["valid_curve"]
    assert [row["epochs"] for row in curve] == [1] and curve[0]["train_time_s"] > 0


@pytest.mark.parametrize(
    "model,extra",
    [
        ("GRU4Rec_JPQ", {"loss_type": "CE"}),
        ("SASRec_CERP", {"memory_budget": 0.2, "threshold_epochs": 1}),
        ("SASRec_QR", {"memory_budget": 0.2}),
        ("SASRec_LTH", {"prune_rounds": 1, "prune_rate": 0.5, "prune_schedule": "oneshot", "ticket_select": "sparsest"}),
    ],
)
def test_compositions_train_at_all_positions(tmp_path, model, extra):
    result = _run(tmp_path, model, model, **extra)
    summary = result["summary"]
    assert summary["test"]["ndcg@10"] >= 0
    if model == "SASRec_CERP":  # stage 1 (with the regulariser) and stage 2 both ran
        assert summary["budget"]["stage1_epochs"] == 1 and summary["epochs"] == 2
    if model == "SASRec_LTH":
        assert summary["epochs"] == 2 and summary["lth"]["rounds_table"][1]["remaining"] == pytest.approx(0.5)


def test_window_overlap_reaches_the_trainers_windows():
    from recbole.data import create_dataset, data_preparation

    from recbole_compress import Config, get_model

    config = Config(model="SASRec", dataset="ml-100k", config_dict={**TINY_RUN, "window_overlap": 10})
    train, _, _ = data_preparation(config, create_dataset(config))
    trainer = get_trainer(config["MODEL_TYPE"], "SASRec")(config, get_model("SASRec")(config, train._dataset))
    cut = trainer.all_positions_loader(train).windows
    assert set(cut.skip.tolist()) == {0, 10} and cut.positions() == len(train._dataset)
