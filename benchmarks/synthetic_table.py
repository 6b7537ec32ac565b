"""Every protocol and method on the embedded default (synthetic world + self-pretrained tiny ViCLIP), over several
seeds, printed as the README's table: mean ± std (n runs) per cell, trainable parameters beside each method, the
per-factor diagnostics (shape, colour, motion, time-reversed twins, seen vs held out, train vs test), and the
soundness checks of the test-bed.

    python benchmarks/synthetic_table.py [--out runs/synthetic_table] [--seeds 1 2 3] [--protocols fewshot ...]
                                         [--budget-minutes 60]

A run's seed s is its `split` (which few-shot sample, which base-to-novel training set) and its training seed
(initialisation, batches, augmentation). Each run is `run_experiment(synthetic_preset(protocol, method, ...))`,
exactly what `papermill nbs/train.ipynb ... -p protocol P -p method M -p split S -p seed S` runs, written to its
own folder; finished runs are reused. The frozen backbone (zero-shot) trains nothing and sees the same test set whatever the
seed: it runs once per protocol. Jobs run in priority order (every protocol's main methods first, all seeds; then M2-CLIP, ST-Adapter on
the frame-level backbone, few-shot full fine-tuning and the ablations); with --budget-minutes no
new job starts after that time, and the table says how many runs stand behind each cell. The ceiling of soundness
check (1), full fine-tuning on all training videos for --ceiling-epochs epochs, is the longest run: with --jobs 2 it
starts first, beside the others.

Runs are small (a 4-block model on 32-pixel clips), so `--jobs 2` (the default) runs two at a time, each on one thread
with its data loaded in its own process, and every video of the world is decoded once, up front
(`loader.preload_frames`), not once per run. Neither changes a run's numbers: a run does the same arithmetic on the
same frames whichever way it is scheduled (checked in `tests/test_experiment.py`).
"""
import argparse, json, multiprocessing, os, time
from pathlib import Path
from dataclasses import replace

import torch

from tqdm.auto import tqdm
from msta_core.presets import synthetic_preset
from msta_core.experiment import run_experiment
from msta_core.world import load_world
from msta_core.loader import preload_frames
from msta_core.pretrain import ensure_pretrained
from msta_core.world import SPLIT_FILES
from msta_core.results import collect_runs, synthetic_tables
from msta_core.diagnostics import soundness_checks

MAIN = ('msta+consistency', 'msta', 'lora', 'adaptformer', 'st-adapter')
ABLATIONS = ('msta-only-video', 'msta-only-text', 'msta-no-shared')      # Table 6(a)
PROTOCOLS = ('fewshot', 'base2novel', 'zeroshot', 'supervised')
SHOTS = {'fewshot': 2, 'base2novel': 16, 'zeroshot': 0, 'supervised': 0}
# (protocol, method, backbone), in priority order within a protocol; 'clip-b16' is the tiny model run frame by frame
MAIN_GRID = [(p, m, 'b16') for p in PROTOCOLS for m in ('frozen',) + MAIN + (('full',) if p == 'supervised' else ())]
GRID = MAIN_GRID + [('fewshot', 'm2clip', 'b16'), ('fewshot', 'st-adapter', 'clip-b16'), ('fewshot', 'full', 'b16')] + \
       [(p, m, 'b16') for p in PROTOCOLS for m in ABLATIONS]
FIRST = len(MAIN_GRID)                 # the main rows of every protocol run first; the rest after all their seeds


def jobs(seeds, protocols):
    """(protocol, shots, method, backbone, seed) in running order: each protocol's main rows seed by seed (so every
    protocol has a full first seed before any gets a third), then the other rows one row at a time, all its seeds."""
    def runs(row, seed_list):
        protocol, method, backbone = row
        return [(protocol, SHOTS[protocol], method, backbone, s) for s in seed_list
                if method != 'frozen' or s == seeds[0]]              # the frozen backbone trains nothing: one run
    main = [(p, m, b) for p, m, b in MAIN_GRID if p in protocols]
    rest = [(p, m, b) for p, m, b in GRID[FIRST:] if p in protocols]
    return ([job for p in PROTOCOLS for s in seeds for row in main if row[0] == p for job in runs(row, [s])] +
            [job for row in rest for job in runs(row, seeds)])


def run_name(protocol, shots, method, backbone, seed) -> str:
    return f"{protocol}_{shots}_{method}" + (f"_{backbone}" if backbone != 'b16' else '') + f"_seed{seed}"


def prepare(jobs: int):
    "The world and the pre-trained model (made now if missing, before any run), every video decoded once, this process's threads."
    world = load_world(progress=True)
    ensure_pretrained(world)                                     # no two runs pre-train at once
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    if threads: torch.set_num_threads(threads)
    n = preload_frames([world.split(s) for s in SPLIT_FILES if s != 'pretrain'], progress=True)
    print(f"{n} videos decoded once for all runs")
    return world, threads


def in_parallel(fn, work: list, jobs: int):
    """`fn(item)` for every item, started in order; with jobs > 1, that many at a time, each in a fresh process forked
    from this one, and yielded as they finish."""
    if jobs == 1: yield from map(fn, work); return
    pool = multiprocessing.get_context('fork').Pool(jobs, maxtasksperchild=1)   # shares the decoded frames, leaves nothing
    try: yield from pool.imap_unordered(fn, work)
    finally: pool.close(); pool.join()


def train_run(cfg, threads: int | None) -> dict:
    "`run_experiment(cfg)` on `threads` threads with the data loaded in this process (None: as the preset says)."
    if threads:
        torch.set_num_threads(threads)
        cfg = replace(cfg, train=replace(cfg.train, num_workers=0))
    return run_experiment(cfg, progress=False)


def run_one(job, out_root: str, t0: float, budget_minutes: float, threads: int | None) -> str | None:
    "Train and evaluate one job unless it is done or the budget is spent; the line to print (None: skipped for time)."
    protocol, shots, method, backbone, seed, epochs = job
    out = (Path(out_root) / run_name(protocol, shots, method, backbone, seed) if epochs is None else
           Path(f'{out_root}_ceiling') / f'supervised_full_{epochs}epochs_seed{seed}')
    if (out / 'results.json').exists(): return ''
    if time.time() - t0 > 60 * budget_minutes: return None
    cfg = synthetic_preset(protocol, method, shots=shots or 2, split=seed, out_dir=str(out), backbone=backbone)
    r = train_run(replace(cfg, train=replace(cfg.train, seed=seed, **({'epochs': epochs} if epochs else {}))), threads)
    return (f"{protocol:<10} {method + (f' {epochs} ep' if epochs else ''):<17} {backbone:<8} seed {seed}  "
            f"{json.dumps({k: round(v, 1) for k, v in r['summary'].items()})}  "
            f"train {r['results'].get('train', {}).get('top1', float('nan')):.1f}  {r['seconds']:.0f}s")

def _run_one(args): return run_one(*args)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default='runs/synthetic_table')
    ap.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3], choices=[1, 2, 3])
    ap.add_argument('--protocols', nargs='+', default=['fewshot', 'base2novel', 'zeroshot', 'supervised'])
    ap.add_argument('--budget-minutes', type=float, default=60.0, help='start no new run after this many minutes')
    ap.add_argument('--ceiling-epochs', type=int, default=30,
                    help='epochs of the supervised full fine-tuning run that measures the ceiling (0: none)')
    ap.add_argument('--jobs', type=int, default=2, help='runs at a time, each on cores/jobs threads (1: one run on all)')
    a = ap.parse_args()
    if a.jobs < 1: ap.error('--jobs must be at least 1')
    t0 = time.time()
    world, threads = prepare(a.jobs)
    todo = [j + (None,) for j in jobs(a.seeds, a.protocols)]
    if a.ceiling_epochs and 'supervised' in a.protocols:   # the longest run: first beside the others, else after the main rows
        n_main = sum(1 for p, _, m, b, *_ in todo if (p, m, b) in MAIN_GRID)          # jobs() puts them first
        todo.insert(0 if a.jobs > 1 else n_main, ('supervised', 0, 'full', 'b16', a.seeds[0], a.ceiling_epochs))
    skipped = 0
    with tqdm(total=len(todo), desc='synthetic table', unit='run') as bar:
        for line in in_parallel(_run_one, [(job, a.out, t0, a.budget_minutes, threads) for job in todo], a.jobs):
            bar.update()
            if line is None: skipped += 1
            elif line: tqdm.write(line)
    runs = collect_runs(a.out)
    if runs.empty: print('no runs'); return
    for protocol, t in synthetic_tables(a.out, world.heldout).items():
        print(f"\n### {protocol}" + {'fewshot': ' (K = 2)', 'base2novel': ' (16 shots per base class)'}.get(protocol, ''))
        print(t.to_markdown(index=False))
    ceiling = collect_runs(f'{a.out}_ceiling') if Path(f'{a.out}_ceiling').exists() else None
    if ceiling is not None and len(ceiling):                    # only the runs of the schedule asked for
        ceiling = ceiling[ceiling.run.map(lambda r: Path(r).name.startswith(f'supervised_full_{a.ceiling_epochs}epochs_'))]
    if ceiling is not None and len(ceiling):
        print(f"\nceiling: supervised full fine-tuning for {a.ceiling_epochs} epochs: " +
              ', '.join(f"{t:.1f}%" for t in ceiling.top1))
    print('\nsoundness of the test-bed:')
    for name, ok, figures in soundness_checks(runs, ceiling=ceiling):
        print(f"  [{'pass' if ok else 'FAIL' if ok is False else 'n/a '}] {name}: {figures}")
    print(f"\nruns: {len(runs)} in {a.out}; not started (budget): {skipped}; this call {time.time() - t0:.0f} s")


if __name__ == '__main__':
    main()
