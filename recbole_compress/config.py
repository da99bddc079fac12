"""RecBole's Config, extended to find recbole_compress models and property files, and
to read every value as data.

Priority (lowest first), as in RecBole: RecBole's overall/model/dataset yamls and
quick-start yamls -> our ``overall.yaml`` -> for a generated ``<Base>_<METHOD>``
model, the base model's RecBole yaml and our yaml for METHOD (for every METHOD of a
composition, the inner one first) -> our yaml for the
model -> our yaml for the dataset -> config files -> config dict -> overrides (the command line).

Unlike RecBole's, this Config never runs code from a value: yaml files are read with a
safe loader (plus RecBole's float rule, so ``1e-3`` is a number), the config dict is
taken as the data it is (RecBole ``eval()``s its strings), and command-line overrides
arrive parsed (:mod:`recbole_compress.overrides`) instead of being read from ``sys.argv``.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from recbole.config import Config as RecBoleConfig
from recbole.utils import ModelType

from recbole_compress.errors import UserError
from recbole_compress.property_files import SafeLoader, load_yaml, properties_dir, resolve_property_file
from recbole_compress.registry import get_model
from recbole_compress.seqtrain.settings import apply_train_mode
from recbole_compress.seqtrain.settings import property_files as seqtrain_property_files

__all__ = ["Config", "check_dataset", "convert_hint", "recbole_downloadable", "load_yaml", "properties_dir",
           "resolve_property_file"]


class Config(RecBoleConfig):
    """RecBole Config that resolves our models first, layers our property files, and
    reads values as data. ``overrides`` (the command line) has the highest priority."""

    def __init__(self, model=None, dataset=None, config_file_list=None, config_dict=None, overrides=None):
        self._overrides = dict(overrides or {})
        super().__init__(model=model, dataset=dataset, config_file_list=config_file_list, config_dict=config_dict)

    # -- values as data ---------------------------------------------------------------
    def _build_yaml_loader(self):
        return SafeLoader

    def _load_config_files(self, file_list):
        values = {}
        for file in file_list or []:
            values.update(load_yaml(resolve_property_file(file)))
        return values

    # RecBole's versions of these two eval() string values and read sys.argv; here values
    # are taken as given (data, never evaluated), as deep copies: RecBole's checks later
    # fill defaults into nested values in place (train_neg_sample_args gains alpha,
    # dynamic, candidate_num), which must not change the caller's dicts.
    def _load_variable_config_dict(self, config_dict):
        return copy.deepcopy(dict(config_dict or {}))

    def _load_cmd_line(self):
        return copy.deepcopy(self._overrides)

    # -- our models and property files ------------------------------------------------
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


# -- the dataset ---------------------------------------------------------------------

def recbole_downloadable(name: str) -> bool:
    """RecBole knows where to download ``name`` (its url.yaml: ml-1m, amazon-beauty, ...)."""
    import recbole

    folder = Path(recbole.__file__).resolve().parent / "properties" / "dataset"
    known = {}
    for file in ("url.yaml", "kg_url.yaml"):
        if (folder / file).is_file():
            known.update(yaml.safe_load((folder / file).read_text()) or {})
    return name in known


def convert_hint(name: str, folder: str) -> str:
    """How to make a dataset folder from local raw files (never a path of this repository)."""
    if name.endswith("-funnel"):  # derived from the ml-100k that ships inside RecBole
        import recbole

        source = Path(recbole.__file__).resolve().parent / "dataset_example" / "ml-100k"
        return f"derive it with `recbole-compress convert funnel {os.fspath(source)} {folder}`"
    return (
        f"convert your files into {folder}: `recbole-compress convert FORMAT SRC {folder}` "
        "(formats: `recbole-compress convert --list`), or write RecBole atomic files "
        f"({name}.inter, ...) there, or set --data_path=DIR holding {name}/"
    )


def check_dataset(config) -> None:
    """Fail fast when the dataset's atomic files are missing (RecBole would otherwise
    look for a download); RecBole's own downloadable datasets are left to RecBole."""
    path = Path(config["data_path"])
    name = config["dataset"]
    benchmark = config["benchmark_filename"]
    wanted = [path / f"{name}.{part}.inter" for part in benchmark] if benchmark else [path / f"{name}.inter"]
    missing = [p for p in wanted if not p.is_file()]
    if not missing:
        check_columns(config, wanted[0])
        return
    if not path.exists() and recbole_downloadable(name):
        return  # RecBole downloads it (and asks first when it is over 1 GB)
    raise UserError(f"dataset '{name}' not found: no {os.fspath(missing[0])}; {convert_hint(name, os.fspath(path))}")


def _header_fields(path: Path) -> list[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        header = f.readline().rstrip("\r\n")
    return [column.split(":", 1)[0] for column in header.split("\t")]


def check_columns(config, inter_file: Path) -> None:
    """The columns the settings need against the header of the interaction file:
    ordering by time without a time column is an error; ``load_col`` naming a column
    the file lacks is a warning (RecBole silently ignores it)."""
    import warnings

    from recbole_compress.errors import Notice

    fields = _header_fields(inter_file)
    load_col = config["load_col"]
    wanted = load_col.get("inter") if isinstance(load_col, dict) else None
    if isinstance(wanted, list):
        for column in wanted:
            if column not in fields:
                warnings.warn(f"load_col names '{column}', which {inter_file.name} does not have (it has "
                              f"{', '.join(fields)}); it is ignored", Notice, stacklevel=3)
    loaded = [f for f in fields if not isinstance(wanted, list) or f in wanted]
    order = (config["eval_args"] or {}).get("order")
    time_field = config["TIME_FIELD"]
    # pre-split benchmark files are used as they are: RecBole orders only the data it splits
    if order == "TO" and time_field not in loaded and not config["benchmark_filename"]:
        where = "load_col leaves it out" if time_field in fields else f"{inter_file.name} has no such column"
        raise UserError(
            f"eval_args order: TO sorts by the column '{time_field}', but {where}; add a {time_field}:float "
            "column (or load it), or set eval_args order: RO"
        )
