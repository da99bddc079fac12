"""``recbole-compress recommend RUN_DIR --users=196,186 --k=10``: one JSON line per user
(``--history=242,302,...`` per history for sequential models)."""

from __future__ import annotations

import json

from recbole_compress.errors import UserError


def split_tokens(text: str, what: str) -> list[str]:
    tokens = [t.strip() for t in str(text).split(",")]
    if not any(tokens) or not all(tokens):
        raise UserError(f"{what} '{text}' has an empty token; give comma-separated tokens, e.g. 196,186")
    return tokens


def run(args) -> int:
    from recbole_compress.serve.recommender import load

    if args.users is None and not args.history:
        raise UserError("pass --users=TOKEN,... (general models) or --history=ITEM,... (sequential models)")
    rec = load(args.run_dir)
    users = split_tokens(args.users, "--users") if args.users is not None else None
    history = [split_tokens(h, "--history") for h in args.history] if args.history else None
    results = rec.recommend(users=users, history=history, k=args.k, exclude_seen=args.exclude_seen)
    for i, result in enumerate(results):
        if history is not None:
            result = {"history": history[i], **result}
        print(json.dumps(result))
    return 0
