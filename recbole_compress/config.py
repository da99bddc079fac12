"""RecBole's Config, extended to find recbole_compress models and property files.

Priority (lowest first), as in RecBole: RecBole's overall/model/dataset yamls and
quick-start yamls -> our ``overall.yaml`` -> for a generated ``<Base>_<METHOD>``
model, the base model's RecBole yaml and our yaml for METHOD (for every METHOD of a
composition, the inner one first) -> our yaml for the
model -> our yaml for the dataset -> config files -> config dict -> command line.
"""

from __future__ import annotations

import os
from pathlib import Path

from recbole.config import Config as RecBoleConfig
from recbole.utils import ModelType

from recbole_compress.errors import UserError
from recbole_compress.registry import get_model
from recbole_compress.seqtrain.settings import apply_train_mode
from recbole_compress.seqtrain.settings import property_files as seqtrain_property_files


def properties_dir() -> Path:
    """Where the property files are: inside the package when installed from a
    wheel, at the repository root in a source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "properties", here.parent / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    raise UserError(f"recbole_compress property files not found next to {here}; reinstall the package")


class Config(RecBoleConfig):
    """RecBole Config that resolves our models first and layers our property files."""

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model")
            if model is None:
                raise UserError("no model given: pass --model=NAME (e.g. --model=LightGCN_LTH)")
        if isinstance(model, str):
            model_class = get_model(model)
        else:
            model_class, model = model, model.__name__
        if dataset is None:
            dataset = self.external_config_dict.get("dataset")
            if dataset is None:
                raise UserError("no dataset given: pass --dataset=NAME (e.g. --dataset=ml-100k)")
        return model, model_class, dataset

    def _load_internal_config_dict(self, model, model_class, dataset):
        # A generated <Base>_<METHOD> model gets exactly RecBole's settings for Base.
        base = getattr(model_class, "base_model_name", None)
        super()._load_internal_config_dict(base or model, model_class, dataset)
        ours = properties_dir()
        files = [ours / "overall.yaml"]
        files += seqtrain_property_files(model_class, ours)  # seqtrain hook: train_mode and its keys
        if base is not None:
            files.append(ours / "model" / f"{base}.yaml")
        for method in getattr(model_class, "compression_chain", ()):  # inner method first: outer wins
            files.append(ours / "model" / f"{method.name}.yaml")
        # settings a family of models shares (the multi-task models: MultiTask.yaml)
        files += [ours / "model" / f"{name}.yaml" for name in getattr(model_class, "extra_property_files", ())]
        files.append(ours / "model" / f"{model}.yaml")
        for file in files:
            if file.is_file():
                self._update_internal_config_dict(str(file))
        dataset_file = ours / "dataset" / f"{dataset}.yaml"
        if dataset_file.is_file():
            loaded = self._update_internal_config_dict(str(dataset_file)) or {}
            self.parameters["Dataset"] += [k for k in loaded if k not in self.parameters["Dataset"]]


    def _set_default_parameters(self):
        apply_train_mode(self)  # seqtrain hook: all_positions moves loss_type to the trainer (before the checks below)
        # RecBole's overall.yaml samples a negative per positive, and its own check then
        # rejects every sequential model trained with CE (SASRec's default) unless the
        # user spells train_neg_sample_args=None. Do that for them when they set nothing.
        final = self.final_config_dict
        if (
            final.get("MODEL_TYPE") == ModelType.SEQUENTIAL
            and final.get("loss_type") == "CE"
            and "train_neg_sample_args" not in self.external_config_dict
        ):
            final["train_neg_sample_args"] = None
        super()._set_default_parameters()


def dataset_path(config) -> Path:
    return Path(config["data_path"])


def check_dataset(config) -> None:
    """Fail fast, with the convert command, when the dataset's atomic files are missing.

    RecBole would otherwise try to download the dataset, which hangs offline.
    """
    path = dataset_path(config)
    name = config["dataset"]
    benchmark = config["benchmark_filename"]
    if benchmark:
        wanted = [path / f"{name}.{part}.inter" for part in benchmark]
    else:
        wanted = [path / f"{name}.inter"]
    missing = [p for p in wanted if not p.is_file()]
    if missing:
        where = os.fspath(missing[0])
        fmt, src = "<lightgcn|lastfm|s3rec|unisrec|ctcvr>", f"../shared/datasets/{name}"
        if name.endswith("-funnel"):  # derived from RecBole's own ml-100k
            import recbole

            fmt, src = "funnel", os.fspath(Path(recbole.__file__).resolve().parent / "dataset_example" / "ml-100k")
        raise UserError(
            f"dataset '{name}' not found: no {where}; convert it first, e.g. "
            f"`uv run python -m recbole_compress.data convert {fmt} "
            f"{src} {os.fspath(path)}` (or set --data_path=DIR holding {name}/)"
        )
