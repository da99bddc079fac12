"""A run killed mid-training (SIGKILL) and the same command run again: it resumes after its
last validation and ends with the weights of an uninterrupted run.

    uv run python benchmarks/resume_demo.py [--model=LightGCN] [--dataset=ml-100k] [--kill_after=120] \\
        [--epochs=150 --stopping_step=200 ...] [--out=DIR]

Runs ``run_recbole_compress.py`` three times into ``<out>/run-<n>/``: ``whole``
uninterrupted; ``killed``, sent SIGKILL ``--kill_after`` seconds in; then the same command
as ``killed`` again. Prints and writes ``report.md``: wall seconds, epochs, the validation
and test metric, and whether the exported weights are identical. Other ``--key=value``
arguments go to every run (the default trains 150 epochs with a patience of 200, long
enough to be killed mid-way on a 2-core CPU).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, benchmark_parser, ensure_dataset  # noqa: E402 (benchmarks/common.py)

DEFAULTS = ["--epochs=150", "--stopping_step=200"]


def main():
    parser = benchmark_parser(__doc__, "resume-demo", "ml-100k")
    parser.add_argument("--model", default="LightGCN")
    parser.add_argument("--kill_after", type=float, default=120.0, help="seconds before the SIGKILL")
    args, extra = parser.parse_known_args()
    extra = extra or DEFAULTS
    base = Path(args.out or REPO / "benchmarks" / "out" / f"resume-demo-{args.dataset}").resolve()
    out = next(base / f"run-{n}" for n in range(1, 10_000) if not (base / f"run-{n}").exists())  # never reuse one
    data_path = (REPO / "dataset").resolve()
    if args.dataset != "ml-100k":
        ensure_dataset(args.dataset, data_path)
        extra = [*extra, f"--data_path={data_path}"]
    out.mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads or 1), "MKL_NUM_THREADS": str(args.threads or 1)}

    def command(folder):
        return [sys.executable, str(REPO / "run_recbole_compress.py"), f"--model={args.model}", f"--dataset={args.dataset}",
                f"--output_dir={out / folder}", *extra]

    def run(folder, kill_after=None):
        started = time.time()
        with open(out / f"{folder}.log", "a") as log:
            process = subprocess.Popen(command(folder), cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                code = process.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
                code = process.wait()
        return code, time.time() - started

    rows = []
    code, seconds = run("whole")
    rows.append(("uninterrupted", code, seconds))
    code, seconds = run("killed", kill_after=args.kill_after)
    if code == 0:
        sys.exit(f"error: the run finished within {args.kill_after:g} s; pass a larger --epochs or a smaller --kill_after")
    if not (out / "killed" / "resume.pt").is_file():
        sys.exit(f"error: no validation was saved within {args.kill_after:g} s (resume.pt is written at most once a "
                 "minute); pass a larger --kill_after")
    rows.append((f"killed (SIGKILL after {args.kill_after:g} s)", code, seconds))
    code, seconds = run("killed")
    log = (out / "killed.log").read_text()
    resumed_from = next((line.split("Resuming", 1)[1].split(" from ")[0].strip()
                         for line in log.splitlines() if "Resuming" in line), "did not resume")
    rows.append((f"same command again ({resumed_from})", code, seconds))
    print(render(args, out, extra, rows))


def render(args, out, extra, rows) -> str:
    import torch

    from recbole_compress.export import load_artifact

    whole, killed = (json.loads((out / f / "summary.json").read_text()) for f in ("whole", "killed"))
    metric = whole["valid_metric"]
    a, b = (load_artifact(out / f / s["artifact"])["tensors"] for f, s in (("whole", whole), ("killed", killed)))
    same = sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    lines = [f"# A killed run resumed: {args.model} on {args.dataset}", "",
             f"Every run: `run_recbole_compress.py --model={args.model} --dataset={args.dataset} {' '.join(extra)}`, "
             f"1 torch thread; folder {out}.", "",
             "| run | exit status | wall (s) |", "|---|---|---|"]
    lines += [f"| {name} | {code} | {seconds:.0f} |" for name, code, seconds in rows]
    lines += ["", f"| | epochs | valid {metric} | test {metric} |", "|---|---|---|---|"]
    for name, s in (("uninterrupted", whole), ("killed, then resumed", killed)):
        lines.append(f"| {name} | {s['epochs']} | {s['valid'][metric]} | {s['test'][metric]} |")
    lines += ["", f"Exported weights identical: **{'yes' if same else 'no'}**."]
    text = "\n".join(lines) + "\n"
    (out / "report.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
