"""Full-ranking scoring time: dense matmul vs materialise-then-score vs PQTopK, in one run.

    uv run python benchmarks/pqtopk.py --threads=1 [--items=10000,100000,1000000]
        [--dims=64,512] [--batches=1,8,128] [--code_length=8] [--reps=5]

For every catalogue size N, embedding size d and batch B of sequence embeddings,
scores all N items for the batch (the ``[B, N]`` matrix ``full_sort_predict``
returns) five ways:

- dense: ``query @ W.T`` against a dense float32 table (the uncompressed model);
- materialise: build the table from codes + codebooks, then matmul (JPQ without PQTopK,
  what RecBole's own ``full_sort_predict`` does through ``.weight``);
- pairs / bag: the two PQTopK paths of ``JPQEmbedding.score_all`` (no table built);
- auto: ``score_all`` as models call it (in eval mode, gradients off), with the path it took.

Times are the best of ``--reps`` runs after one warm-up (ms). Codes are random (the
assignment strategy does not change the cost); every path's scores are checked
against the dense matmul. Writes ``benchmarks/out/pqtopk.md``.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def parse():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", default="10000,100000,1000000")
    parser.add_argument("--dims", default="64,512")
    parser.add_argument("--batches", default="1,8,128")
    parser.add_argument("--code_length", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "out" / "pqtopk.md"))
    return parser.parse_args()


def best_ms(fn, reps: int) -> float:
    fn()  # warm-up (caches, allocator)
    best = float("inf")
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best * 1000


@torch.no_grad()
def time_scoring(table, dense_w, query, reps: int) -> tuple[dict, float]:
    """Best-of-``reps`` milliseconds of each scoring path for one query batch, and the
    largest difference from the dense scores (item 0, the padding row, scores 0)."""
    reference = query @ dense_w.T
    reference[:, 0] = 0.0
    times, diff = {}, 0.0
    times["dense"] = best_ms(lambda: query @ dense_w.T, reps)
    times["materialise"] = best_ms(lambda: query @ table.coded_table().T, reps)
    for path in ("pairs", "bag"):
        times[path] = best_ms(lambda: table.score_all(query, path), reps)  # called in this iteration: this path
        diff = max(diff, float((table.score_all(query, path) - reference).abs().max()))
    times["auto"] = best_ms(lambda: table.score_all(query), reps)
    diff = max(diff, float((table.score_all(query) - reference).abs().max()))
    table._table_cache = None
    return times, diff


def main():
    args = parse()
    if args.threads:
        torch.set_num_threads(args.threads)
    from recbole_compress.embeddings.jpq import JPQEmbedding, choose_scoring_path

    m = args.code_length
    header = (
        "| items | d | batch | dense matmul (ms) | materialise + matmul (ms) | PQTopK pairs (ms) | PQTopK bag (ms) "
        "| score_all auto (ms) | auto path | dense / auto | dense / best PQTopK | max abs diff |"
    )
    lines = [
        f"# Scoring time, m={m}, 256 centroids, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{platform.machine()} {platform.processor() or ''}".rstrip(),
        "",
        header,
        "|" + "---|" * 12,
    ]
    print("\n".join(lines), flush=True)
    g = torch.Generator().manual_seed(0)
    for n in (int(x) for x in args.items.split(",")):
        codes = torch.randint(0, 256, (n, m), generator=g).to(torch.uint8)
        for d in (int(x) for x in args.dims.split(",")):
            table = JPQEmbedding(codes, d).eval()
            with torch.no_grad():
                table.codebooks.normal_(0, 0.1, generator=g)
                dense_w = table.coded_table().contiguous()  # the dense model's table
            for b in (int(x) for x in args.batches.split(",")):
                query = torch.randn(b, d, generator=g)
                times, diff = time_scoring(table, dense_w, query, args.reps)
                auto = choose_scoring_path(b, n, d, m)
                best_pq = min(times["pairs"], times["bag"])
                row = (
                    f"| {n:,} | {d} | {b} | {times['dense']:.2f} | {times['materialise']:.2f} | {times['pairs']:.2f} | "
                    f"{times['bag']:.2f} | {times['auto']:.2f} | {auto} | {times['dense'] / times['auto']:.2f}x | "
                    f"{times['dense'] / best_pq:.2f}x | {diff:.1e} |"
                )
                lines.append(row)
                print(row, flush=True)
            del table, dense_w
    bytes_lines = ["", "| items | d | dense table (MB) | JPQ codes + codebooks (MB) | ratio |", "|---|---|---|---|---|"]
    for n in (int(x) for x in args.items.split(",")):
        for d in (int(x) for x in args.dims.split(",")):
            dense_b, jpq_b = n * d * 4, (n - 1) * m + 256 * d * 4 + 16
            bytes_lines.append(f"| {n:,} | {d} | {dense_b / 1e6:.1f} | {jpq_b / 1e6:.2f} | {dense_b / jpq_b:.0f}x |")
    lines += bytes_lines
    print("\n".join(bytes_lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print(f"\nreport: {out}")


if __name__ == "__main__":
    main()
