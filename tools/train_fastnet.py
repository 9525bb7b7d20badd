"""Reference implementation of the fast CIFAR-10 recipe, outside the trainer (for evidence runs and
for checking the engine's implementation against).

Per run: whitening init of the stem from 5,000 training images; SGD Nesterov with the recipe's
parameter groups (`param_groups`: BatchNorm shifts at 64x the learning rate); a triangular schedule
(linear from `start` x peak up to the peak at `peak_at` of the steps, then linear down to `end` x
peak); label smoothing; per batch a random translate (`random_crop`, zero padding 2) and a flip
(random, or alternating: image i is mirrored in epoch e iff b_i xor (e mod 2), with b_i drawn once);
optionally lookahead-EMA every 5 steps; at the end the test accuracy without and with test-time
augmentation (`tta_logits`). Images stay uint8 until the batch.

The learning rate is given per example (`--lr-per-example`, the update for a summed loss); with the
usual mean loss the peak learning rate is lr_per_example x batch size, and the weight decay
coefficient passed to torch's SGD is `--wd` (coupled; the per-step decay is lr x wd).

Usage:
    python tools/train_fastnet.py --preset 5min          # the proposed recipes (5 / 15 / 30 minutes)
    python tools/train_fastnet.py --widths 32-64-128 --batch 128 --epochs 1 --lr-per-example 0.003 \
        --lookahead --threads 1                          # about 2.5 minutes: 75.8% with --tta 2
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from chainrule.data import channel_stats, load, random_crop
from chainrule.torch_ref import LookaheadEMA, build_cnn, count_flops, init_whitening, param_groups, tta_logits


def triangle(step: int, total: int, start: float, peak_at: float, end: float) -> float:
    """Learning-rate factor: start -> 1 linearly until `peak_at` x total steps, then -> end."""
    peak_step = max(1, round(peak_at * total))
    if step < peak_step:
        return start + (1.0 - start) * step / peak_step
    return 1.0 + (end - 1.0) * (step - peak_step) / max(1, total - peak_step)


def to_input(xb: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> normalized float32, channels-last."""
    x = torch.from_numpy(np.ascontiguousarray(xb)).float().div_(255.0)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def evaluate(model, x_u8, y, mean, std, level: int, batch: int = 500) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(x_u8), batch):
        logits = tta_logits(model, to_input(x_u8[i : i + batch], mean, std), level=level)
        correct += int((logits.argmax(1).numpy() == y[i : i + batch]).sum())
    model.train()
    return correct / len(x_u8)


# The proposed recipes (flags given on the command line override them). Budgets are wall-clock
# training time on the 2-core VM when it is otherwise quiet, 2 threads; see the module docstring.
PRESETS: dict[str, dict] = {
    "5min": dict(widths="32-64-128", batch=128, epochs=4.0, lr_per_example=0.003),
    "15min": dict(widths="64-128-256", batch=256, epochs=4.0, lr_per_example=0.002),
    "30min": dict(widths="64-128-256", batch=256, epochs=8.0, lr_per_example=0.002),
}
PRESET_COMMON = dict(lookahead=True, tta=2, flip="alternate", translate=2, label_smoothing=0.2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS), help="a proposed recipe; other flags override it")
    p.add_argument("--widths", default="32-64-128")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr-per-example", type=float, default=11.5 / (1024 * (1 + 1 / 0.15)))
    p.add_argument("--momentum", type=float, default=0.85)
    p.add_argument("--wd", type=float, default=0.0153 / 11.5, help="torch SGD weight_decay (weights group)")
    p.add_argument("--bias-lr-scale", type=float, default=64.0)
    p.add_argument("--schedule", default="0.2,0.23,0.07", help="start,peak_at,end of the triangle")
    p.add_argument("--label-smoothing", type=float, default=0.2)
    p.add_argument("--translate", type=int, default=2)
    p.add_argument("--flip", choices=["random", "alternate", "none"], default="alternate")
    p.add_argument("--lookahead", action="store_true", help="lookahead-EMA every 5 steps")
    p.add_argument("--tta", type=int, default=1, help="highest TTA level to evaluate (0, 1, 2)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=0, help="stop training early (0: no limit)")
    p.add_argument("--data", default="../shared/datasets")
    p.add_argument("--json", default="", help="write the results here")
    pre, _ = p.parse_known_args()
    if pre.preset:
        p.set_defaults(**PRESET_COMMON, **PRESETS[pre.preset])
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    ds = load("cifar10", root=args.data)
    x_train, y_train, x_test, y_test = ds.x_train, ds.y_train, np.array(ds.x_test), ds.y_test
    mean_np, std_np = channel_stats(x_train)
    mean = torch.tensor(mean_np, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(std_np, dtype=torch.float32).view(1, 3, 1, 1)
    rng = np.random.default_rng(args.seed)
    widths = tuple(int(w) for w in args.widths.split("-"))
    model = build_cnn("fastnet", (3, 32, 32), 10, seed=args.seed, widths=widths)
    init_whitening(model, x_train[rng.permutation(len(x_train))[:5000]], mean_np, std_np)
    model = model.to(memory_format=torch.channels_last)
    flops = count_flops(model, (3, 32, 32))
    lr_peak = args.lr_per_example * args.batch
    groups = param_groups(model, lr=lr_peak, weight_decay=args.wd, bias_lr_scale=args.bias_lr_scale)
    opt = torch.optim.SGD(groups, lr=lr_peak, momentum=args.momentum, nesterov=True)
    start, peak_at, end = (float(v) for v in args.schedule.split(","))
    steps_per_epoch = len(x_train) // args.batch  # drop the last partial batch
    total = max(1, round(args.epochs * steps_per_epoch))
    lookahead = LookaheadEMA(model) if args.lookahead else None
    flip_bits = rng.random(len(x_train)) < 0.5
    print(
        f"fastnet {widths}: {flops / 1e6:.0f} MFLOP/img forward; batch {args.batch}, {total} steps "
        f"({total / steps_per_epoch:.2f} epochs), peak lr {lr_peak:.3f} (BN shifts x{args.bias_lr_scale:g}), "
        f"setup {time.perf_counter() - t0:.1f} s",
        flush=True,
    )

    step, epoch, t_train, losses = 0, 0, 0.0, []
    cpu0 = time.process_time()
    stopped_early = False
    while step < total and not stopped_early:
        order = rng.permutation(len(x_train))
        for b in range(steps_per_epoch):
            if step >= total:
                break
            ts = time.perf_counter()
            idx = order[b * args.batch : (b + 1) * args.batch]
            xb = x_train[idx]
            if args.translate:
                xb = random_crop(xb, padding=args.translate, rng=rng)
            if args.flip == "random":
                flip = rng.random(len(idx)) < 0.5
            elif args.flip == "alternate":
                flip = flip_bits[idx] ^ bool(epoch % 2)
            else:
                flip = np.zeros(len(idx), bool)
            xb[flip] = xb[flip, :, :, ::-1]
            x = to_input(xb, mean, std)
            y = torch.from_numpy(y_train[idx])
            factor = triangle(step, total, start, peak_at, end)
            for g in opt.param_groups:
                g["lr"] = lr_peak * g["lr_scale"] * factor
            loss = F.cross_entropy(model(x), y, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if lookahead is not None and step % 5 == 0:
                lookahead.update(model, decay=0.95**5 * (step / total) ** 3)
            losses.append(loss.item())
            t_train += time.perf_counter() - ts
            if step % 20 == 0 or step == total:
                print(
                    f"step {step}/{total} epoch {epoch} loss {np.mean(losses[-20:]):.3f} "
                    f"lr x{factor:.2f} {step * args.batch / t_train:.0f} img/s, {t_train:.0f} s",
                    flush=True,
                )
            if args.max_minutes and t_train > 60 * args.max_minutes:
                stopped_early = True
                break
        epoch += 1
    if lookahead is not None:
        lookahead.finish(model)
    cpu_train = time.process_time() - cpu0  # includes the data pipeline, as the wall time does

    results = {
        "widths": widths,
        "batch": args.batch,
        "steps": step,
        "epochs": step / steps_per_epoch,
        "train_seconds": round(t_train, 1),
        "img_per_s": round(step * args.batch / t_train, 1),
        "train_cpu_seconds": round(cpu_train, 1),
        "img_per_cpu_s": round(step * args.batch / cpu_train, 1),
        "fwd_mflop": flops / 1e6,
        "args": vars(args),
    }
    for level in range(args.tta + 1):
        te = time.perf_counter()
        results[f"test_acc_tta{level}"] = evaluate(model, x_test, y_test, mean, std, level)
        results[f"eval_seconds_tta{level}"] = round(time.perf_counter() - te, 1)
        print(f"test accuracy, TTA level {level}: {results[f'test_acc_tta{level}']:.4f}", flush=True)
    print(json.dumps(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
