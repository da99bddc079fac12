"""ml-100k as a leave-one-out sequential dataset, small models: shared by the seqtrain tests."""

SEQ = {
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
    "metrics": ["NDCG", "Hit"],
    "topk": [10],
    "valid_metric": "ndcg@10",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "MAX_ITEM_LIST_LENGTH": 20,
    "hidden_size": 16,
    "inner_size": 32,
    "n_layers": 1,
    "embedding_size": 16,
    "show_progress": False,
    "state": "WARNING",
    "eval_batch_size": 4096,
    "train_batch_size": 64,
}
ALL_POSITIONS = {**SEQ, "train_mode": "all_positions", "loss_type": "BCE"}
