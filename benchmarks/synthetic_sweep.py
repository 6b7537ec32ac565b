"""Choose lr and α of the synthetic presets by one rule for every method (α: the option that scales the method's branch,
its config's `branch_scale`: MSTA's `alpha`, LoRA's, AdaptFormer's and ST-Adapter's `scale`): few-shot K = 2 (split 1, seed 1), each
method at every point of a grid of one shape (three learning rates, 1e-3 to 1e-2 for the PEFT methods and a tenth of
that, 1e-4 to 1e-3, for full fine-tuning, × α ∈ {0.1, 1}), scored on the actions dataset's validation videos
(`actions_val`, never a test set); the best validation top-1 wins (ties: the smaller lr, then the smaller α). A choice
on the edge of its grid is marked: the grid should then grow on that side, for every method.

    python benchmarks/synthetic_sweep.py [--out runs/synthetic_sweep] [--jobs 2]

Prints one line per run and the chosen (lr, α) per method; the presets notebook (15a_presets) shows the output.
"""
import argparse, json, time
from pathlib import Path
from dataclasses import replace

from tqdm.auto import tqdm
from msta_core.presets import synthetic_preset
from msta_core.peft import METHODS
from synthetic_table import prepare, in_parallel, train_run

PEFT_LRS, FULL_LRS, ALPHAS = (1e-3, 5e-3, 1e-2), (1e-4, 5e-4, 1e-3), (0.1, 1.0)
# one method per family (the one named after it; its variants share its point) that trains; a tenth of the learning rate
# for the one that moves every backbone weight; × the branch scale where the family has one (M2-CLIP and full have none)
GRID = {n: [(lr, a) for lr in (FULL_LRS if m.module.changes_backbone else PEFT_LRS) for a in (ALPHAS if m.config.branch_scale else (None,))]
        for n, m in METHODS.items() if n == m.family and m.module.trains}


def sweep_run(args) -> dict:
    "One grid point (trained now unless its folder has results): its validation and training top-1."
    method, lr, alpha, out, threads = args
    if not (out / 'results.json').exists():
        cfg = synthetic_preset('fewshot', method, shots=2, split=1, out_dir=str(out), eval_datasets=('val',))
        cfg = replace(cfg, train=replace(cfg.train, seed=1, lr=lr),
                      peft=replace(cfg.peft, **{type(cfg.peft).branch_scale: alpha}) if alpha is not None else cfg.peft)
        train_run(cfg, threads)
    r = json.loads((out / 'results.json').read_text())['results']
    return {'method': method, 'lr': lr, 'alpha': alpha, 'val': r['val']['top1'], 'train': r['train']['top1']}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default='runs/synthetic_sweep')
    ap.add_argument('--methods', nargs='+', default=list(GRID), choices=list(GRID))
    ap.add_argument('--jobs', type=int, default=2, help='runs at a time, each on cores/jobs threads')
    a = ap.parse_args()
    if a.jobs < 1: ap.error('--jobs must be at least 1')
    t0 = time.time()
    _, threads = prepare(a.jobs)
    todo = [(m, lr, al, Path(a.out) / f'{m}_lr{lr:g}_alpha{al}', threads) for m in a.methods for lr, al in GRID[m]]
    best = {}
    for r in tqdm(in_parallel(sweep_run, todo, a.jobs), total=len(todo), desc='lr/alpha sweep', unit='run'):
        method, lr, alpha = r['method'], r['lr'], r['alpha']
        tqdm.write(f"{method:<12} lr {lr:<6g} alpha {str(alpha):<5} val {r['val']:5.1f}  train {r['train']:5.1f}")
        key = (r['val'], -lr, -(alpha or 0))
        if method not in best or key > best[method][0]: best[method] = (key, lr, alpha)
    print('\nchosen (best validation top-1):')
    for m in a.methods:
        key, lr, alpha = best[m]
        lrs = [l for l, _ in GRID[m]]
        edge = ' (on the edge of the lr grid)' if lr in (min(lrs), max(lrs)) else ''
        print(f"  {m:<12} lr {lr:g}  alpha {alpha}  (val {key[0]:.1f}){edge}")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == '__main__':
    main()
