"""Choose lr and α of the synthetic presets by one rule for every method (α: the option that scales the method's branch,
`BRANCH_SCALE`: MSTA's `alpha`, LoRA's, AdaptFormer's and ST-Adapter's `scale`): few-shot K = 2 (split 1, seed 1), each
method at every point of a small grid, scored on the actions dataset's validation videos (`actions_val`, never a
test set); the best validation top-1 wins (ties: the smaller lr, then the smaller α).

    python benchmarks/synthetic_sweep.py [--out runs/synthetic_sweep]

Prints one line per run and the chosen (lr, α) per method; the presets notebook (14_presets) shows the output.
"""
import argparse, json, time
from pathlib import Path
from dataclasses import replace

from tqdm.auto import tqdm
from msta_core.presets import synthetic_preset
from msta_core.adapters import BRANCH_SCALE

GRID = {'msta': [(lr, a) for lr in (1e-3, 5e-3) for a in (0.1, 1.0)],
        'lora': [(lr, a) for lr in (1e-3, 5e-3) for a in (0.1, 1.0)],
        'adaptformer': [(lr, a) for lr in (1e-3, 5e-3) for a in (0.1, 1.0)],
        'st-adapter': [(lr, a) for lr in (1e-3, 5e-3) for a in (0.1, 1.0)],
        'm2clip': [(lr, None) for lr in (1e-3, 5e-3)],
        'full': [(lr, None) for lr in (1e-4, 1e-3)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default='runs/synthetic_sweep')
    ap.add_argument('--methods', nargs='+', default=list(GRID))
    a = ap.parse_args()
    from msta_core.experiment import run_experiment
    t0 = time.time()
    todo = [(m, lr, al) for m in a.methods for lr, al in GRID[m]]
    best = {}
    for method, lr, alpha in tqdm(todo, desc='lr/alpha sweep', unit='run'):
        out = Path(a.out) / f'{method}_lr{lr:g}_alpha{alpha}'
        if not (out / 'results.json').exists():
            cfg = synthetic_preset('fewshot', method, shots=2, split=1, out_dir=str(out), eval_datasets=('val',))
            cfg = replace(cfg, train=replace(cfg.train, seed=1, lr=lr),
                          peft=replace(cfg.peft, **{BRANCH_SCALE[cfg.peft.method]: alpha}) if alpha is not None else cfg.peft)
            run_experiment(cfg, progress=False)
        r = json.loads((out / 'results.json').read_text())['results']
        val, train = r['val']['top1'], r['train']['top1']
        tqdm.write(f"{method:<12} lr {lr:<6g} alpha {str(alpha):<5} val {val:5.1f}  train {train:5.1f}")
        key = (val, -lr, -(alpha or 0))
        if method not in best or key > best[method][0]: best[method] = (key, lr, alpha)
    print('\nchosen (best validation top-1):')
    for m, (key, lr, alpha) in best.items(): print(f"  {m:<12} lr {lr:g}  alpha {alpha}  (val {key[0]:.1f})")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == '__main__':
    main()
