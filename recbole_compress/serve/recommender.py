"""``recbole_compress.load(run folder or model.pt)`` -> :class:`Recommender`: top-k items
for users (general models) or for item histories (sequential models), from the artifact
alone. See docs/serve.md."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from recbole_compress.errors import UserError
from recbole_compress.serve import rebuild
from recbole_compress.serve.block import SERVING_FORMAT, SERVING_KEY
from recbole_compress.serve.lookup import SeenItems, TokenMap

ARTIFACT_FILE = "model.pt"


# -- scorers: scores of every item for a batch, one per backbone family --------------------

class TableScorer:
    """Matrix factorisation and propagated graphs: ``item_table.score(user_table(users))``."""

    family = "matrix factorisation"

    def __init__(self, users, items, family: str | None = None):
        self.users, self.items = users, items
        self.family = family or self.family

    def scores(self, users: Tensor) -> Tensor:
        return self.items.score(self.users(users))

    def tensors(self) -> list[Tensor]:
        return [*self.users.buffers(), *self.items.buffers()]


class SequenceScorer:
    """Sequence encoders: ``item_embedding.score(model.forward(item_seq, item_seq_len))``."""

    family = "sequence encoder"

    def __init__(self, model):
        self.model = model

    def scores(self, item_seq: Tensor, item_seq_len: Tensor) -> Tensor:
        return self.model.item_embedding.score(self.model.forward(item_seq, item_seq_len))

    def tensors(self) -> list[Tensor]:
        return rebuild.module_tensors(self.model)


class RecBoleScorer:
    """Any other model: its own ``full_sort_predict`` on its tables as trained."""

    family = "RecBole full_sort_predict (tables as trained)"

    def __init__(self, model, config):
        self.model, self.config = model, config

    def scores(self, users: Tensor | None = None, item_seq: Tensor | None = None, item_seq_len: Tensor | None = None) -> Tensor:
        """As RecBole's full-sort evaluation: ``full_sort_predict``, or ``predict`` on every
        (query, item) pair for models without it (NeuMF)."""
        from recbole.data.interaction import Interaction

        if item_seq is None:
            batch = Interaction({self.config["USER_ID_FIELD"]: users})
        else:
            suffix = self.config["LIST_SUFFIX"]
            batch = Interaction({
                self.config["ITEM_ID_FIELD"] + suffix: item_seq,
                self.config["ITEM_LIST_LENGTH_FIELD"]: item_seq_len,
            })
        rows = len(batch)
        try:
            out = self.model.full_sort_predict(batch)
        except NotImplementedError:
            n_items = self.model.n_items
            pairs = batch.repeat_interleave(n_items)
            pairs.update(Interaction({self.config["ITEM_ID_FIELD"]: torch.arange(n_items).repeat(rows)}))
            out = self.model.predict(pairs)
        return out.view(rows, -1)

    def tensors(self) -> list[Tensor]:
        return rebuild.module_tensors(self.model)


# -- the recommender --------------------------------------------------------------------------

class Recommender:
    """A trained model served from its artifact: ``recommend(users=...)`` for general
    models, ``recommend(history=...)`` for sequential ones."""

    def __init__(self, artifact: dict, source: str = "model.pt"):
        block = _serving_block(artifact, source)
        self.model_name = block["model"]
        self.sequential = block["model_type"] == "sequential"
        tensors = block["tensors"]
        self.items = TokenMap("item", tensors["item_tokens.bytes"], tensors["item_tokens.offsets"])
        self.users = None if self.sequential else TokenMap("user", tensors["user_tokens.bytes"], tensors["user_tokens.offsets"])
        self.seen = None if self.sequential else SeenItems(tensors["seen.crow"], tensors["seen.col"])
        self.config = rebuild.serving_config(block)
        self.max_length = int(self.config["MAX_ITEM_LIST_LENGTH"] or 0)
        self.num_items = int(block["num_items"])
        self.scorer = self._build_scorer(artifact, block)

    # -- building -----------------------------------------------------------------
    def _build_scorer(self, artifact: dict, block: dict):
        from recbole_compress.registry import get_model

        model_class = get_model(self.model_name)
        base_name = getattr(model_class, "base_model_name", model_class.__name__)
        with torch.no_grad():
            if base_name in rebuild.MATRIX_FACTORISATION:
                tables = rebuild.MATRIX_FACTORISATION[base_name]
                model = rebuild.compact_model(get_model(base_name), tables, self.config, block, self.seen, artifact)
                return TableScorer(model.user_embedding, model.item_embedding)
            if base_name in rebuild.SEQUENCE_ENCODERS:
                tables = rebuild.SEQUENCE_ENCODERS[base_name]
                return SequenceScorer(rebuild.compact_model(get_model(base_name), tables, self.config, block, self.seen, artifact))
            dataset = rebuild.StandInDataset(self.config, block, self.seen)
            model = self._full_model(model_class, dataset, artifact)
            if base_name in rebuild.GRAPH_PROPAGATION:  # propagate once; keep the dense final tables only
                users, items = model.forward()
                return TableScorer(_dense_table(users), _dense_table(items), "propagated graph (dense final tables)")
            return RecBoleScorer(model, self.config)

    def _full_model(self, model_class, dataset, artifact):
        from recbole_compress.export import import_model

        torch.manual_seed(0)  # rebuilding initialises tables the artifact then replaces
        model = rebuild.build(model_class, self.config, dataset)
        return import_model(model, artifact).eval()

    # -- serving ------------------------------------------------------------------
    def recommend(self, users=None, history=None, k: int = 10, exclude_seen: bool | None = None) -> list[dict]:
        """Top-``k`` items (tokens, best first) with their scores.

        General models: ``users`` (tokens); ``exclude_seen`` (default True) leaves out each
        user's training items. Sequential models: ``history`` (item tokens, oldest first; or
        a list of such lists); ``exclude_seen`` (default False, as RecBole ranks) leaves out
        the history's items. Returns one dict per user or history: ``items``, ``scores``
        (and ``user``). Fewer than ``k`` items come back only when exclusion leaves fewer."""
        k = self._check_k(k)
        with torch.no_grad():
            if self.sequential:
                if users is not None:
                    raise UserError(f"{self.model_name} is a sequential model: pass history=[item tokens] (--history), not users")
                histories = _histories(history)
                ids = [self.items.ids(h) for h in histories]
                item_seq, item_seq_len = self._sequences(ids)
                scores = self._scores(item_seq=item_seq, item_seq_len=item_seq_len)
                if exclude_seen:
                    owner = torch.repeat_interleave(torch.arange(len(ids)), torch.tensor([len(h) for h in ids]))
                    scores[owner, torch.tensor([i for h in ids for i in h], dtype=torch.long)] = -torch.inf
                heads = [{} for _ in ids]
            else:
                if history is not None:
                    raise UserError(f"{self.model_name} is a general model: pass users=[user tokens] (--users), not a history")
                tokens = _tokens(users, "users")
                user_ids = torch.tensor(self.users.ids(tokens), dtype=torch.long)
                scores = self._scores(users=user_ids)
                if exclude_seen is None or exclude_seen:
                    owner, seen = self.seen.items_of(user_ids)
                    scores[owner, seen] = -torch.inf
                heads = [{"user": str(t)} for t in tokens]
            return self._top(scores, k, heads)

    def _scores(self, users=None, item_seq=None, item_seq_len=None) -> Tensor:
        if isinstance(self.scorer, SequenceScorer):
            scores = self.scorer.scores(item_seq, item_seq_len)
        elif isinstance(self.scorer, RecBoleScorer):
            scores = self.scorer.scores(users, item_seq, item_seq_len)
        else:
            scores = self.scorer.scores(users)
        scores = scores[:, : self.num_items].clone() if scores.shape[1] != self.num_items else scores
        scores[:, 0] = -torch.inf  # [PAD] is no item
        return scores

    def _top(self, scores: Tensor, k: int, heads: list[dict]) -> list[dict]:
        values, index = torch.topk(scores, k, dim=1)
        out = []
        for head, row_values, row_index in zip(heads, values.tolist(), index.tolist()):
            kept = [(i, v) for i, v in zip(row_index, row_values) if v != -float("inf")]
            out.append({**head, "items": [self.items.token(i) for i, _ in kept], "scores": [v for _, v in kept]})
        return out

    def _sequences(self, ids: list[list[int]]) -> tuple[Tensor, Tensor]:
        """RecBole's layout: the last ``MAX_ITEM_LIST_LENGTH`` items, left-aligned, zero-padded."""
        length = self.max_length or max(len(h) for h in ids)
        item_seq = torch.zeros(len(ids), length, dtype=torch.long)
        lengths = []
        for row, h in enumerate(ids):
            h = h[-length:]
            item_seq[row, : len(h)] = torch.tensor(h, dtype=torch.long)
            lengths.append(len(h))
        return item_seq, torch.tensor(lengths, dtype=torch.long)

    def _check_k(self, k) -> int:
        catalogue = self.num_items - 1
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= catalogue:
            raise UserError(f"k={k} must be a whole number from 1 to {catalogue} (the items this model knows)")
        return k

    # -- what it holds ---------------------------------------------------------------
    def memory(self) -> dict[str, int]:
        """Bytes of the tensors the served model holds: ``model`` (tables and weights, to
        compare with ``model_bytes``) and ``serving`` (token maps with their lookup order,
        training items; to compare with ``serving_bytes``)."""
        from recbole_compress.embeddings.serving import held_bytes

        serving = [*self.items.tensors]
        if not self.sequential:
            serving += [*self.users.tensors, *self.seen.tensors]
        return {"model": held_bytes(self.scorer.tensors()), "serving": held_bytes(serving)}

    @property
    def family(self) -> str:
        return self.scorer.family

    def __repr__(self) -> str:
        kind = "sequential" if self.sequential else "general"
        return f"Recommender({self.model_name}, {kind}, {self.num_items - 1} items, {self.family})"


def _dense_table(weight: Tensor):
    from recbole_compress.embeddings.serving import DenseMatrix, RowTable

    return RowTable(DenseMatrix(weight.detach().contiguous()), None)


def _tokens(values, what: str) -> list[str]:
    if values is None:
        raise UserError(f"pass {what}=[tokens], e.g. {what}=['196', '186']")
    if isinstance(values, (str, int)):
        values = [values]
    values = [str(v) for v in values]
    if not values:
        raise UserError(f"{what} is empty; pass at least one token")
    return values


def _histories(history) -> list[list[str]]:
    if history is None:
        raise UserError("pass history=[item tokens, oldest first], e.g. history=['242', '302']")
    if isinstance(history, (str, int)):
        history = [history]
    history = list(history)
    many = bool(history) and all(isinstance(h, (list, tuple)) for h in history)
    histories = [list(map(str, h)) for h in history] if many else [[str(h) for h in history]]
    if not histories or any(not h for h in histories):
        raise UserError("a history is empty; pass at least one item token per history")
    return histories


def _serving_block(artifact, source: str) -> dict:
    if not isinstance(artifact, dict) or not isinstance(artifact.get("tensors"), dict):
        raise UserError(f"{source} is not a recbole-compress model (no exported tensors); give the model.pt a run wrote")
    block = artifact.get(SERVING_KEY)
    if block is None:
        raise UserError(
            f"{source} carries no serving data (written by an older recbole-compress, or a model serving does not "
            f"cover: multi-task and content models); retrain it with this version, or use recbole_compress.load_model"
        )
    needed = {"format", "model", "model_type", "settings", "num_users", "num_items", "tensors"}
    if not isinstance(block, dict) or not needed <= set(block) or block["format"] != SERVING_FORMAT:
        raise UserError(f"{source} has a damaged or newer serving block; retrain the model with this version")
    return block


def load(path) -> Recommender:
    """A trained model, ready to recommend, from its run folder (or its ``model.pt``
    alone): the dataset is not needed. Loading is weights-only and confined to the
    folder; a missing, damaged or unsafe file is one line."""
    from recbole_compress.run import load_checkpoint

    path = Path(path)
    if path.is_dir():
        folder, file = path, path / ARTIFACT_FILE
        if not file.is_file():
            raise UserError(f"{path} holds no {ARTIFACT_FILE}; give a folder `recbole-compress run` wrote (or its {ARTIFACT_FILE})")
    elif path.is_file():
        folder, file = path.parent, path
    else:
        raise UserError(f"{path} does not exist; give a run folder (saved/<model>-<dataset>-<hash>) or its {ARTIFACT_FILE}")
    artifact = load_checkpoint(file, folder=folder)
    return Recommender(artifact, str(file))
