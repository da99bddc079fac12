"""Training-step time of TransRec with the text encoder frozen vs its top layers fine-tuned,
interleaved in one run, and the epoch time that follows.

    uv run python benchmarks/transrec_step_time.py --dataset=scientific --layers=0,1 --steps=5 --threads=1

Builds TransRec in the authors' regime (properties/paper/transrec.yaml) once per
``--layers`` value (``text_finetune_layers``), then alternates one training step of each
(forward, backward, Adam) on the same batches, so that background load affects all alike.
Prints the median step time, the steps of one epoch, the projected epoch time and the
ratio to the first ``--layers`` value. Other ``--key=value`` arguments are config keys.
"""

from __future__ import annotations

import statistics
import time

from common import REPO, benchmark_parser, config_file_paths, parse_with_overrides, prepare_run  # benchmarks/common.py

PRESET = REPO / "properties" / "paper" / "transrec.yaml"


def main():
    parser = benchmark_parser(__doc__, "transrec-step-time", "scientific")
    parser.add_argument("--layers", default="0,1", help="text_finetune_layers values, the first is the baseline")
    parser.add_argument("--steps", type=int, default=5, help="timed steps of each (after one untimed warm-up step)")
    parser.add_argument("--config_files", default=None, help="space-separated yaml files before the preset")
    args, overrides = parse_with_overrides(parser)
    out, data_path = prepare_run(args, "transrec-step-time")

    import torch
    from recbole.data import data_preparation
    from recbole.utils import init_seed

    from recbole_compress import Config
    from recbole_compress.models.transrec import TransRec

    files = config_file_paths(args.config_files) + [str(PRESET)]
    runs = {}
    for layers in (int(n) for n in args.layers.split(",")):
        settings = {"data_path": str(data_path), "show_progress": False, "state": "WARNING", **overrides,
                    "text_finetune_layers": layers, "output_dir": str(out / f"layers-{layers}")}
        config = Config(model="TransRec", dataset=args.dataset, config_file_list=files, config_dict=settings)
        init_seed(config["seed"], config["reproducibility"])
        train, _, _ = data_preparation(config, TransRec.dataset_class(config))  # item content with the data
        model = TransRec(config, train._dataset).train()
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config["learning_rate"])
        runs[layers] = (model, optimizer, [])
    batches = iter(train)  # the same batches for every model (one dataset, one split)
    for step in range(args.steps + 1):
        batch = next(batches)
        for model, optimizer, times in runs.values():
            started = time.perf_counter()
            optimizer.zero_grad()
            model.calculate_loss(batch).backward()
            optimizer.step()
            if step:  # the first step warms up allocators and caches
                times.append(time.perf_counter() - started)
    steps_per_epoch = len(train)
    base = statistics.median(next(iter(runs.values()))[2])
    print(f"| dataset | text_finetune_layers | trained encoder parameters | step (s, median of {args.steps}) "
          "| steps per epoch | epoch (h, projected) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for layers, (model, _, times) in runs.items():
        step = statistics.median(times)
        encoder = model.accounting()["text_encoder_trainable_parameters"]
        print(f"| {args.dataset} | {layers} | {encoder:,} | {step:.3f} | {steps_per_epoch:,} "
              f"| {step * steps_per_epoch / 3600:.2f} | {step / base:.1f}x |")


if __name__ == "__main__":
    main()
