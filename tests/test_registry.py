import pytest
from recbole.model.general_recommender import BPR, LightGCN
from recbole.trainer import Trainer
from recbole.utils import ModelType

from recbole_compress import UserError, get_model, get_trainer
from recbole_compress.models import LightGCN_LTH


def test_our_models_first():
    assert get_model("LightGCN_LTH") is LightGCN_LTH
    assert issubclass(get_model("BPR_LTH"), BPR)


def test_recbole_models_still_resolve():
    assert get_model("LightGCN") is LightGCN
    assert get_trainer(ModelType.GENERAL, "LightGCN").__mro__[1:].count(Trainer) == 1


def test_generic_model_for_any_recbole_model():
    cls = get_model("SASRec_LTH")
    assert cls.__name__ == "SASRec_LTH" and cls.base_model_name == "SASRec"
    assert get_model("SASRec_LTH") is cls  # cached
    trainer = get_trainer(ModelType.SEQUENTIAL, "SASRec_LTH")
    assert hasattr(trainer, "attach_test_data") and issubclass(trainer, Trainer)


@pytest.mark.parametrize("name", ["NoSuchModel", "lightgcn_lth", "LightGCN_NOPE", "NoSuch_LTH"])
def test_unknown_model_is_a_one_line_error(name):
    with pytest.raises(UserError) as err:
        get_model(name)
    assert name in str(err.value) and "\n" not in str(err.value)


def test_importing_package_does_not_import_ray():
    import subprocess
    import sys

    code = "import sys, recbole_compress, recbole_compress.models; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
