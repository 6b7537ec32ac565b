"""Run every protocol and the main methods on the embedded default (synthetic world + self-pretrained tiny ViCLIP)
and print the table that README.md shows.

    python benchmarks/synthetic_table.py [--out runs/synthetic_table] [--seeds 2048]

Each run is `run_experiment(synthetic_preset(protocol, method, ...))` — exactly what `papermill nbs/train.ipynb
... -p protocol P -p method M` runs — written to its own folder; finished runs are reused.
"""
import argparse, json, time
from pathlib import Path
from dataclasses import replace
from msta_core.presets import synthetic_preset
from msta_core.experiment import run_experiment
from msta_core.results import collect_runs, summarise

GRID = [('fewshot', 2, m) for m in ('zero-shot', 'msta+consistency', 'msta', 'lora', 'adaptformer', 'st-adapter')] + \
       [('fewshot', 8, m) for m in ('zero-shot', 'msta+consistency', 'msta', 'lora', 'adaptformer')] + \
       [('base2novel', 16, m) for m in ('zero-shot', 'msta+consistency', 'msta', 'lora', 'adaptformer',
                                        'msta-only-video', 'msta-only-text', 'msta-no-shared')] + \
       [('zeroshot', 0, m) for m in ('zero-shot', 'msta+consistency', 'msta', 'lora')] + \
       [('supervised', 0, m) for m in ('zero-shot', 'msta+consistency', 'lora', 'full')]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default='runs/synthetic_table'); ap.add_argument('--seeds', type=int, nargs='+', default=[2048])
    a = ap.parse_args()
    t0 = time.time()
    for seed in a.seeds:
        for protocol, shots, method in GRID:
            out = Path(a.out) / f'{protocol}_{shots}_{method}_seed{seed}'
            if (out / 'results.json').exists(): continue
            cfg = synthetic_preset(protocol, method, shots=shots or 2, out_dir=str(out))
            cfg = replace(cfg, train=replace(cfg.train, seed=seed))
            r = run_experiment(cfg, progress=False)
            print(f"{protocol:<10} {shots:>2} {method:<17} {json.dumps(r['summary'])}  {r['seconds']:.0f}s", flush=True)
    runs = collect_runs(a.out)
    print(summarise(runs).reset_index().to_markdown(index=False, floatfmt='.1f'))
    print(f'total {time.time() - t0:.0f} s')


if __name__ == '__main__':
    main()
