"""How long each of the README's real-data runs will take on GPUs: an estimate, from what each run does and how fast a
GPU does it.

What a run does is counted exactly, from its configuration (`config_from_params` of the README command, as
benchmarks/rehearse_paper_commands.py reads them) and the split files (`reference_data`): training clips = epochs ×
steps per epoch × global batch, with the steps as `fit` takes them (`drop_last`, the processes' shards); evaluation
views = videos × views of every evaluation split; clip decodes (what the CPU must feed) = training clips + videos ×
temporal clips. How fast is an assumption until `benchmarks/gpu_check.py` has run on the GPU, and then its measurement:

  --forward    ViCLIP-B/16 forward, clips/s per GPU, fp32 (gpu_check's `forward fp32` row). Default 93: the clip's
               359 GFLOP (2 × 179.56 G multiply-adds) at half an H100 SXM's 67 TFLOP/s fp32 peak (the paper presets
               train in fp32 without TF32, as the authors' logs show).
  --train-ratio  a training clip's cost in forwards: 1.9 for MSTA in blocks 8-12 (d = 128) and 3.5 in blocks 1-12
               (d = 256), the ratios of a training step to a forward measured by bench_train_step.py and bench_viclip.py
               on this project's reference CPU (8.45 s / 2 clips and 15.35 s / 2 clips against 2.2 s per forward).
               gpu_check's `msta 8-12` and `msta 1-12` rows measure them on the GPU: pass --train-8-12 / --train-1-12.
  --clip-forward  frame-level CLIP ViT-B/16 (M2-CLIP's release, fp16 autocast), clips/s per GPU. Default 1000: 8 frames ×
               2 × 17.6 G multiply-adds at about a third of an H100's 989 TFLOP/s dense fp16 peak; M2-CLIP trains every
               block, a training clip taken as 3 forwards.
  --decode     clip decodes per second per CPU core (default 3.7: decord on videos re-encoded by resize_videos.py,
               the README's video-input table) and --cores per GPU (default 16).

A phase takes as long as the slower of the GPUs and the decoding CPU cores. Nothing else is counted (start-up,
checkpoints, per-epoch evaluations with report='paper', the text branch beyond what the ratios hold), so read the
figures as the order of magnitude they are, and replace the assumptions with gpu_check's measurements.

    python benchmarks/gpu_hour_plan.py
    python benchmarks/gpu_hour_plan.py --forward 120 --train-8-12 60 --train-1-12 33 --cores 12
"""
import argparse, sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from msta_core.core import reference_data, FETCH_COMMAND
from msta_core.datasets import read_split
from msta_core.engine import epoch_steps
from msta_core.loader import EpochSampler
from msta_core.presets import config_from_params
from msta_core.sources import DATASETS
from rehearse_paper_commands import parse_block, readme_block, params  # noqa: E402

K400_TRAIN = 240_000         # Kinetics-400's training set, about; ViFi-CLIP's full list is not fetched by default


def split_sizes(cfg, splits: Path) -> tuple[int, dict]:
    "(training videos, {evaluation split: videos}) of `cfg`, from the split files (K-400's full list: --k400-train)."
    sizes = {}
    def count(f):
        if f not in sizes: sizes[f] = len(read_split(splits / f)) if (splits / f).exists() else None
        return sizes[f]
    spec = DATASETS[cfg.dataset]
    if cfg.protocol == 'fewshot': train, evals = spec.fewshot_train.format(shots=cfg.shots), {'test': spec.test[cfg.split - 1]}
    elif cfg.protocol == 'base2novel':
        train, evals = spec.b2n_train.format(split=cfg.split), {'base': spec.b2n_base_val, 'novel': spec.b2n_novel_val}
    else:
        train = spec.supervised_train
        evals = ({f'{n}_s{i}': f for n in cfg.eval_datasets for i, f in enumerate(DATASETS[n].test, 1)}
                 if cfg.protocol == 'zeroshot' else {'test': spec.test[0]})
    return count(train), {k: count(f) for k, f in evals.items()}


def estimate(cfg, n_train: int, evals: dict, a) -> dict:
    "Training clips, evaluation views and decodes of `cfg`, and the hours they take on `cfg.nproc` GPUs (and on one)."
    P, t = cfg.nproc, cfg.train
    steps = epoch_steps(len(EpochSampler(n_train, world_size=P).order()), t, P)
    train_clips = t.epochs * steps * t.batch_size
    views = cfg.views[0] * cfg.views[1]
    eval_views = sum(n * views for n in evals.values())
    decodes = train_clips + sum(n * cfg.views[0] for n in evals.values())
    if cfg.backbone.startswith('clip-'): fwd, train_rate = a.clip_forward, a.clip_forward / 3
    else:
        fwd = a.forward
        train_rate = a.train_1_12 if cfg.peft.blocks and cfg.peft.blocks[0] <= 1 else a.train_8_12
        train_rate = train_rate or fwd / (3.5 if cfg.peft.blocks and cfg.peft.blocks[0] <= 1 else 1.9)
    feed = a.decode * a.cores
    def hours(gpus):
        gpu = train_clips / (train_rate * gpus) + eval_views / (fwd * gpus)
        cpu = decodes / (feed * gpus)
        return max(gpu, cpu) / 3600, 'GPU' if gpu >= cpu else 'decoding'
    return {'train_clips': train_clips, 'eval_views': eval_views, 'hours': hours(P), 'hours_1gpu': hours(1)}


def fmt(h: float) -> str:
    return f'{h * 60:.0f} min' if h < 1 else f'{h:.1f} h'


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--forward', type=float, default=93.0, help='ViCLIP-B/16 forward clips/s per GPU, fp32')
    p.add_argument('--train-8-12', type=float, default=None, help='MSTA 8-12 training clips/s per GPU (default: forward / 1.9)')
    p.add_argument('--train-1-12', type=float, default=None, help='MSTA 1-12 training clips/s per GPU (default: forward / 3.5)')
    p.add_argument('--clip-forward', type=float, default=1000.0, help='CLIP ViT-B/16 forward clips/s per GPU, fp16')
    p.add_argument('--decode', type=float, default=3.7, help='clip decodes per second per CPU core')
    p.add_argument('--cores', type=int, default=16, help='CPU cores per GPU')
    p.add_argument('--k400-train', type=int, default=K400_TRAIN, help='videos in the Kinetics-400 training list')
    a = p.parse_args(argv)
    splits = reference_data('vifi_clip_splits')
    if splits is None: raise SystemExit(f"needs ViFi-CLIP's split files: `{FETCH_COMMAND}`")
    rows = []
    for r in parse_block(readme_block()).rows:
        kw = {k: v for k, v in params(r.command).items() if not v.startswith('$')}
        cfg = config_from_params(**{'splits_dir': str(splits), 'checkpoint': 'CK', **kw})
        n_train, evals = split_sizes(cfg, splits)
        if n_train is None: n_train = a.k400_train
        rows.append((r.name, cfg.nproc, estimate(cfg, n_train, evals, a)))
    print(f"assumed per GPU: ViCLIP-B/16 fp32 forward {a.forward:g} clips/s; CLIP-B/16 fp16 forward {a.clip_forward:g} clips/s; "
          f"{a.cores} cores × {a.decode:g} clip decodes/s")
    print(f"{'run':24s} {'GPUs':>4s} {'training clips':>15s} {'test views':>11s} {'on its GPUs':>12s} {'on 1 GPU':>10s}  bound")
    for name, P, e in rows:
        print(f"{name:24s} {P:4d} {e['train_clips']:15,d} {e['eval_views']:11,d} {fmt(e['hours'][0]):>12s} "
              f"{fmt(e['hours_1gpu'][0]):>10s}  {e['hours'][1]}")
    total = sum(e['hours'][0] * P for _, P, e in rows)
    print(f"all rows: {total:,.0f} GPU-hours (estimate)")
    return rows


if __name__ == '__main__':
    main()
