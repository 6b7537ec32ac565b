"""Rehearse the README's real-data commands on a CPU, before a GPU hour is spent on them.

Every command of the README's "The paper's settings on real data" block (read from README.md: the bash block after
`<!-- ci: paper-commands -->`, as .ci/run reads the quick start) runs as written there, in smoke mode
(`-p smoke True`: every stage of the run on a few steps and videos), against
  - the real ViFi-CLIP split and label files and the authors' description files (`reference_data`; without them
    the rehearsal stops, naming `python data_prep/fetch_splits.py`);
  - a dataset tree in which every video the split files name exists: links to a few small clips of the project's
    own (the synthetic world's renderer), in each dataset's container — .avi (MPEG-4 Part 2) for UCF-101 and
    HMDB-51, .webm (VP9) for SSv2, .mp4 (H.264) for Kinetics;
  - ViCLIP-B/16 and CLIP ViT-B/16 checkpoints with random weights in the official formats: InternVid's
    `{'model': state_dict}` .pth with every key, shape and dtype of the official list
    (tests/fixtures/viclip_b16_keys.tsv), and OpenAI's TorchScript archive (open_clip's ViT-B-16 layout, OpenAI's
    fp16 matrices and the archive's bookkeeping buffers);
so the strict loaders, the split readers, the description files, the decoders and the writers all meet what they
will meet on a GPU machine. A command's comment names its variants (`K = 2, 4, 8, 16 on hmdb51 / ucf101 / ssv2`,
`splits 1, 2, 3 on ...`): each is a row. The block's other lines run first, as written (`python data_prep/...`;
the Kinetics-400 annotations CSV they read is made here from ViFi-CLIP's `train_tiny.txt`); the results notebook
runs last. `/data/...` paths become folders of the rehearsal's own tree, and the tree's path holds a space (the
assignment line's relative paths are made absolute, so what the commands expand holds it too).

Each row runs with `--machine` appended, by default `-p nproc 1 -p micro_batch 1` (a CPU): how many processes there
are and what one of them holds, not what the run is (the global batch, schedule, data and model stay the command's).
On one GPU, `--machine "-p nproc 1"`. Each row's wall time and CPU time (every process of the row, whatever else the
machine runs) are printed.

    python benchmarks/rehearse_paper_commands.py --list                 # the rows, nothing run
    python benchmarks/rehearse_paper_commands.py                        # every row
    python benchmarks/rehearse_paper_commands.py --as-written           # one row per command: the one written out
    python benchmarks/rehearse_paper_commands.py --dry                  # every row's data side, no model (a minute)
    python benchmarks/rehearse_paper_commands.py --only fewshot-ssv2-K2 --keep /tmp/rehearsal
"""
import argparse, json, os, re, shlex, shutil, subprocess, sys, tempfile, time, zlib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))            # this checkout's msta_core: the one whose README is rehearsed (and the rows run)

import av                 # before msta_core: decord's own FFmpeg, loaded first, leaves PyAV's VP9 encoder unusable
import numpy as np
import torch

from msta_core.core import reference_data, fixtures_dir, FETCH_COMMAND
from msta_core.datasets import read_split
from msta_core.sources import DATASETS, Benchmark

MARKER = 'paper-commands'
MACHINE = '-p nproc 1 -p micro_batch 1'           # a CPU: one process, one clip per forward
CLIPS_PER_CONTAINER = 3


# ---------------------------------------------------------------- the README block
def readme_block(readme: Path = ROOT / 'README.md', name: str = MARKER) -> str:
    "The bash block that follows `<!-- ci: NAME -->` in the README (as .ci/run reads it)."
    m = re.search(r'<!-- ci: %s -->\s*```bash\n(.*?)```' % re.escape(name), readme.read_text(encoding='utf-8'), re.S)
    if not m: raise SystemExit(f"{readme} has no bash block marked <!-- ci: {name} -->")
    return m.group(1)


@dataclass
class Row:
    name: str                     # e.g. fewshot-ucf101-K2
    command: str                  # the README's command with this row's variant filled in
    written: bool                 # the variant the README writes out


@dataclass
class Block:
    assignments: list = field(default_factory=list)   # lines such as `CK=...; S=...` (run before every command)
    prepare: list = field(default_factory=list)       # other lines (`python data_prep/...`), run once, first
    rows: list = field(default_factory=list)          # the train.ipynb commands, one row per variant
    results: list = field(default_factory=list)       # the results.ipynb commands, run last


def params(cmd: str) -> dict:
    "The `-p name value` pairs of a papermill command (shell words; variables left as written)."
    words = shlex.split(cmd)
    return {words[i + 1]: words[i + 2] for i, w in enumerate(words) if w == '-p'}


def _param(cmd: str, name: str) -> str | None:
    m = re.search(r'-p %s (\S+)' % name, cmd)
    return m.group(1) if m else None


def _values(comment: str, label: str) -> list[str]:
    "The numbers after `label` in a comment: `K = 2, 4, 8, 16` → ['2', '4', '8', '16']."
    m = re.search(label + r'\s*=?\s*(\d+(?:\s*,\s*\d+)*)', comment)
    return re.findall(r'\d+', m.group(1)) if m else []


def variants(cmd: str, comment: str) -> list[Row]:
    "The rows of one train.ipynb command: the datasets (`on a / b / c`), shots (`K = ...`) and splits (`splits ...`) its comment names."
    dataset, shots, split = _param(cmd, 'dataset'), _param(cmd, 'shots'), _param(cmd, 'split')
    m = re.search(r'\bon ([a-z0-9]+(?: / [a-z0-9]+)+)', comment)
    datasets = m.group(1).split(' / ') if m and dataset else [dataset]
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown: raise SystemExit(f"README: the comment {comment!r} names datasets msta does not know: {unknown}")
    values, key = ([shots], None)
    if shots is not None: values, key = _values(comment, 'K') or [shots], 'shots'
    elif split is not None: values, key = _values(comment, 'splits') or [split], 'split'
    preset = _param(cmd, 'preset')
    rows = []
    for ds in datasets:
        for v in values:
            c = cmd
            if dataset and ds != dataset:
                c = c.replace(f'-p dataset {dataset}', f'-p dataset {ds}').replace(f'/data/{dataset}/', f'/data/{ds}/')
            if key: c = c.replace(f'-p {key} {_param(cmd, key)}', f'-p {key} {v}')
            name = '-'.join(x for x in (preset or _param(cmd, 'protocol'), ds, {'shots': f'K{v}', 'split': f's{v}'}.get(key)) if x)
            rows.append(Row(name, c, ds == dataset and (key is None or v == _param(cmd, key))))
    return rows


def parse_block(text: str) -> Block:
    "The README block as assignments, preparation lines, one row per train.ipynb variant, and results commands."
    b, comment = Block(), ''
    for line in (l.strip() for l in text.splitlines()):
        if not line: continue
        if line.startswith('#'): comment = line; continue
        if re.match(r'^(mkdir [^;]*; *)?[A-Za-z_]\w*=', line): b.assignments.append(line)
        elif line.startswith('papermill nbs/train.ipynb'): b.rows += variants(line, comment)
        elif line.startswith('papermill nbs/results.ipynb'): b.results.append(line)
        else: b.prepare.append(line)
        comment = ''
    names = [r.name for r in b.rows]
    if len(set(names)) != len(names): raise SystemExit(f"README: two rows share a name: {names}")
    return b


# ---------------------------------------------------------------- what the commands read
def write_clips(folder: Path, n: int = CLIPS_PER_CONTAINER) -> dict[str, list[Path]]:
    "A few 320×240 clips (48 frames, 16 fps) of the synthetic world's renderer in each container the datasets use."
    from msta_core.synthetic import render_clip
    codecs = {'.avi': ('avi', 'mpeg4'), '.webm': ('webm', 'libvpx-vp9'), '.mp4': ('mp4', 'libx264')}
    kinds = [('circle', 'red', 'moving left'), ('ring', 'blue', 'moving up'), ('triangle', 'green', 'growing')]
    out = {}
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, (fmt, codec) in codecs.items():
        out[suffix] = []
        for i in range(n):
            path = folder / f'clip{i}{suffix}'
            out[suffix].append(path)
            if path.exists(): continue
            shape, colour, motion = kinds[i % len(kinds)]
            frames = render_clip(shape, colour, motion, np.random.default_rng(i), size=240, frames=48)
            frames = np.concatenate([frames[:, :, :40], frames, frames[:, :, -40:]], 2)      # 320×240, as UCF-101's
            tmp = path.with_name(f'.{path.name}.tmp{suffix}')
            with av.open(str(tmp), mode='w', format=fmt) as c:
                s = c.add_stream(codec, rate=16)
                s.width, s.height, s.pix_fmt = 320, 240, 'yuv420p'
                for f in frames:
                    for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format='rgb24')): c.mux(p)
                for p in s.encode(): c.mux(p)
            os.replace(tmp, path)
    return out


def split_folders(name: str) -> set[str]:
    "The folders (under the splits folder) of every split file of dataset `name`."
    spec = DATASETS[name]
    files = [*spec.test, spec.fewshot_train, spec.b2n_train, spec.b2n_base_val, spec.b2n_novel_val, spec.supervised_train]
    return {str(Path(f).parent) for f in files if f}


def link_tree(splits: Path, datasets: Path, clips: dict[str, list[Path]]) -> dict[str, int]:
    "`datasets/<name>/videos/<path>` for every path of every split file of each dataset: a link to one of `clips`."
    counts = {}
    for name in (n for n, spec in DATASETS.items() if isinstance(spec, Benchmark)):   # the paper's, not the synthetic world
        root, made = datasets / name / 'videos', set()
        for folder in sorted(split_folders(name)):
            for f in sorted((splits / folder).glob('*.txt')):
                for s in read_split(f):
                    if s.path in made: continue
                    dst = root / s.path
                    if not dst.is_symlink():
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        pool = clips.get(Path(s.path).suffix.lower(), clips['.mp4'])
                        os.symlink(pool[zlib.crc32(s.path.encode()) % len(pool)], dst)
                    made.add(s.path)
        counts[name] = len(made)
    return counts


def mirror(src: Path, dst: Path) -> None:
    "`dst`: the folders of `src`, each file a link to the original (what the commands add stays in `dst`)."
    for f in sorted(src.rglob('*')):
        if f.is_file() and not f.name.startswith('.'):
            t = dst / f.relative_to(src)
            t.parent.mkdir(parents=True, exist_ok=True)
            if not t.is_symlink(): os.symlink(f.resolve(), t)


def kinetics_csv(train_list: Path, labels: Path, out: Path) -> Path:
    "An official-format Kinetics annotations CSV (`label,youtube_id,time_start,time_end,split`) of a ViFi-CLIP list."
    import csv, io
    from msta_core.datasets import read_labels
    names, buf = read_labels(labels), io.StringIO()
    w = csv.writer(buf, lineterminator='\n')
    w.writerow(['label', 'youtube_id', 'time_start', 'time_end', 'split'])
    for s in read_split(train_list):
        folder, stem = s.path.split('/')[0], Path(s.path).stem
        yid, t0, t1 = stem.rsplit('_', 2)
        w.writerow([names[s.label], yid, int(t0), int(t1), folder])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(buf.getvalue())
    return out


def random_viclip_checkpoint(path: Path, keys=None, seed: int = 0) -> Path:
    "ViCLIP-B/16 with random weights, in InternVid's format: `{'model': state_dict}` with every official key, shape and dtype."
    from msta_core.weights import read_key_list
    if path.exists(): return path
    dtypes = {l.split('\t')[0]: l.split('\t')[2] for l in (fixtures_dir() / 'viclip_b16_keys.tsv').read_text().splitlines()
              if l and not l.startswith('#')}
    g, sd = torch.Generator().manual_seed(seed), {}
    for k, shape in keys or read_key_list(fixtures_dir() / 'viclip_b16_keys.tsv'):
        if k == 'temp': t = torch.tensor(0.01)
        elif k.endswith('.bias'): t = torch.zeros(shape)
        elif len(shape) == 1 and ('ln' in k or 'norm' in k): t = torch.ones(shape)
        elif len(shape) >= 2 and not k.endswith(('embedding', 'proj', 'projection')):
            t = torch.randn(shape, generator=g) * (int(np.prod(shape[1:])) ** -0.5)
        else: t = torch.randn(shape, generator=g) * 0.02
        sd[k] = t.to(getattr(torch, dtypes[k]))
    tmp = path.with_name(f'.{path.name}.tmp')
    torch.save({'model': sd}, tmp)
    os.replace(tmp, path)
    return path


_OPENAI_FP16 = ('.attn.', '.mlp.', 'visual.conv1.weight', 'text_projection', 'visual.proj')   # CLIP's convert_weights


def random_openai_clip_archive(path: Path) -> Path:
    "CLIP ViT-B/16 with random weights as OpenAI released it: a TorchScript archive, fp16 matrices, bookkeeping buffers."
    import warnings
    import open_clip
    from torch import nn
    if path.exists(): return path
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        sd = open_clip.create_model('ViT-B-16', pretrained=None).state_dict()
    sd = {k: v.half() if any(s in k for s in _OPENAI_FP16) else v for k, v in sd.items()}
    sd.update(input_resolution=torch.tensor(224), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    root = nn.Module()
    for k, v in sd.items():
        *mods, leaf = k.split('.'); m = root
        for name in mods:
            if not hasattr(m, name): m.add_module(name, nn.Module())
            m = getattr(m, name)
        m.register_buffer(leaf, v.clone())
    tmp = path.with_name(f'.{path.name}.tmp')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.jit.save(torch.jit.script(root), str(tmp))
    os.replace(tmp, path)
    return path


def prepare(work: Path, log=print) -> dict:
    "The rehearsal's folder: splits, descriptions, checkpoints, clips and the dataset tree; returns the environment for the commands."
    splits, descriptions = reference_data('vifi_clip_splits'), reference_data('msta_descriptions')
    missing = [n for n, p in (('vifi_clip_splits', splits), ('msta_descriptions', descriptions)) if p is None]
    if missing:
        raise FileNotFoundError(f"the public data {missing} is not on this machine: fetch it with `{FETCH_COMMAND}`")
    t0 = time.time()
    (work / 'runs').mkdir(parents=True, exist_ok=True)
    for name in ('nbs', 'data_prep'):
        if not (work / name).exists(): os.symlink(ROOT / name, work / name)
    mirror(splits, work / 'data' / 'vifi_clip_splits')
    if not (work / 'data' / 'msta_descriptions').exists(): os.symlink(descriptions, work / 'data' / 'msta_descriptions')
    k400 = work / 'datasets' / 'k400'
    kinetics_csv(splits / 'datasets_splits/k400_splits/train_tiny.txt', splits / DATASETS['k400'].labels,
                 k400 / 'annotations' / 'train.csv')
    random_viclip_checkpoint(work / 'ViClip-InternVid-10M-FLT.pth')
    random_openai_clip_archive(work / 'ViT-B-16.pt')
    clips = write_clips(work / 'clips')
    log(f"prepared {work} in {time.time() - t0:.0f} s")
    env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
           'MSTA_CACHE': str(work / 'cache'), 'PYTHONUNBUFFERED': '1'}
    for name in DATASETS: env.pop(f'MSTA_ROOT_{name.upper()}', None)   # the zero-shot targets' roots: the commands' own
    return {'env': env, 'clips': clips, 'splits': work / 'data' / 'vifi_clip_splits'}


# ---------------------------------------------------------------- running
def localise(line: str, work: Path) -> str:
    """`/data/...` → the rehearsal's tree (shell-quoted: its path holds a space; as it is inside a quoted Python literal
    such as eval_roots' dict); relative paths in assignments made absolute."""
    def tree(m):
        path = str(work / 'datasets' / m.group(2))
        return "'" + path if m.group(1) else shlex.quote(path)
    line = re.sub(r"""(?<![\w.])(')?/data/([^\s'"]*)""", tree, line)
    def absolute(m):
        value = m.group(2)
        return f"{m.group(1)}={shlex.quote(str(work / value))}" if (work / value).exists() and not value.startswith('/') else m.group(0)
    return re.sub(r'\b([A-Za-z_]\w*)=([^\s;]+)', absolute, line) if re.match(r'^(mkdir [^;]*; *)?[A-Za-z_]\w*=', line) else line


def bash(script: str, work: Path, env: dict, log_file: Path) -> tuple[int, float, float]:
    """Run `script` in `work`; (exit status, wall seconds, CPU seconds of all its processes). The CPU time is what the
    row costs whatever else the machine runs: every process of the row (papermill, its kernel, the loader workers) is
    looked at each second and its last user + system time counted."""
    import psutil
    t0, seen = time.time(), {}
    with open(log_file, 'w') as f:
        p = subprocess.Popen(['bash', '-euo', 'pipefail', '-c', script], cwd=work, env=env, stdout=f, stderr=subprocess.STDOUT)
        root = psutil.Process(p.pid)
        while p.poll() is None:
            try: procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess: procs = []
            for q in procs:
                try: c = q.cpu_times(); seen[(q.pid, q.create_time())] = c.user + c.system
                except psutil.NoSuchProcess: pass
            time.sleep(1)
    return p.returncode, time.time() - t0, sum(seen.values())


RUN_FILES = ('config.json', 'run_info.json', 'results.json', 'predictions.json', 'curves.png')
TRAIN_FILES = ('metrics.jsonl', 'metrics.csv', 'last.pt', 'adapters.pt')


def check_run(out: Path) -> list[str]:
    "What is wrong with a smoke run's folder (nothing: [])."
    problems = [f'{f} missing' for f in RUN_FILES if not (out / f).exists()]
    if (out / 'results.json').exists():
        r = json.loads((out / 'results.json').read_text())
        if 'smoke' not in r: problems.append('results.json is not labelled a smoke run')
        if r.get('trainable_params'): problems += [f'{f} missing' for f in TRAIN_FILES if not (out / f).exists()]
        for name, res in r['results'].items():
            if not res.get('n'): problems.append(f'{name}: no video scored')
            if res.get('skipped'): problems.append(f'{name}: {res["skipped"]} video(s) unreadable')
    return problems


def run_row(row: Row, block: Block, work: Path, env: dict, machine: str = MACHINE) -> dict:
    "One row: its command, as written but for the variant, smoke mode and the machine's parameters; then its run folder checked."
    cmd = re.sub(r'(papermill nbs/train.ipynb )\S+', rf'\g<1>runs/{row.name}.ipynb', row.command)
    cmd = localise(cmd, work) + ' -p smoke True ' + machine
    script = '\n'.join([*(localise(a, work) for a in block.assignments), cmd])
    t0 = time.time()
    rc, seconds, cpu = bash(script, work, env, work / 'runs' / f'{row.name}.log')
    new = sorted(f for f in (work / 'runs').rglob('results.json') if f.stat().st_mtime >= t0)   # written by this row
    problems = [] if rc == 0 else [f'exit status {rc}: see {work / "runs" / (row.name + ".log")}']
    if rc == 0 and len(new) != 1: problems.append(f'{len(new)} new results.json (expected 1)')
    if rc == 0 and len(new) == 1: problems += check_run(new[0].parent)
    return {'row': row.name, 'ok': not problems, 'seconds': seconds, 'cpu_seconds': cpu, 'problems': problems, 'command': cmd,
            'out_dir': str(new[0].parent) if len(new) == 1 else None}


def expand(line: str, assignments: list[str], work: Path) -> str:
    """`line` localised, with the block's variables (`$S`, `"$CK"`) replaced by their localised values."""
    values = {}
    for a in assignments:
        for part in localise(a, work).split(';'):
            k, eq, v = part.strip().partition('=')
            if eq and re.fullmatch(r'[A-Za-z_]\w*', k): values[k] = shlex.split(v)[0]
    return re.sub(r'\$\{?([A-Za-z_]\w*)\}?', lambda m: values[m.group(1)], localise(line, work))


def dry_row(row: Row, block: Block, work: Path) -> dict:
    """The data side of one row, in this process, without a model: its parameters checked, its splits resolved, every
    video they name present in the tree, and the descriptions the consistency constraint reads, class for class."""
    from msta_core.presets import config_from_params
    from msta_core.descriptions import load_author_pair
    t0, problems = time.time(), []
    try:
        p = params(expand(row.command, block.assignments, work))
        cfg = config_from_params(**{k: v for k, v in p.items() if k != 'nproc'})
        data = DATASETS[cfg.dataset].resolve(cfg)
        splits = {'train': data.train, **data.evals}
        for name, split in splits.items():
            missing = [s.path for s in split.samples if not (split.root / s.path).exists()]
            if missing: problems.append(f'{name}: {len(missing)} of {len(split.samples)} videos missing, e.g. {missing[0]}')
        if cfg.consistency:
            desc = load_author_pair(data.descriptions_dir, data.descriptions, cfg.n_descriptions, data.train.class_names)
            if len(desc) != len(data.train.class_names):
                problems.append(f'{len(desc)} described classes for {len(data.train.class_names)} training classes')
        videos = sum(len(s.samples) for s in splits.values())
    except Exception as e:                                              # any failure is this row's finding
        problems.append(f'{type(e).__name__}: {e}'); videos = 0
    return {'row': row.name, 'ok': not problems, 'seconds': time.time() - t0, 'cpu_seconds': 0.0, 'problems': problems,
            'command': row.command, 'videos': videos}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--list', action='store_true', help='print the rows and exit')
    p.add_argument('--only', nargs='+', default=None, help='rows to run, by name (see --list), in this order')
    p.add_argument('--as-written', action='store_true', help='one row per command: the variant the README writes out')
    p.add_argument('--keep', default=None, help='the rehearsal folder (kept; reused: checkpoints and clips are made once)')
    p.add_argument('--json', default=None, help='write every row\'s figures to this file')
    p.add_argument('--dry', action='store_true', help="each row's data side only (seconds): parameters, splits, videos, descriptions")
    p.add_argument('--machine', default=MACHINE, help=f'parameters appended to every row (default: {MACHINE!r}, a CPU)')
    a = p.parse_args(argv)
    block = parse_block(readme_block())
    rows = [r for r in block.rows if (a.only is None or r.name in a.only) and (r.written or not a.as_written)]
    if a.only: rows.sort(key=lambda r: a.only.index(r.name))                     # in the order asked for
    if a.only and (unknown := set(a.only) - {r.name for r in block.rows}):
        raise SystemExit(f"no such row {sorted(unknown)}; the rows: {[r.name for r in block.rows]}")
    if a.list:
        for r in block.rows: print(f"{r.name:28s} {'(written out) ' if r.written else ''}{r.command}")
        return []
    if a.keep: work = Path(a.keep) / 'msta rehearsal'
    else: work = Path(tempfile.mkdtemp(prefix='msta-rehearsal-')) / 'msta rehearsal'   # a path with a space, as users have them
    work.mkdir(parents=True, exist_ok=True)
    try: ctx = prepare(work)
    except FileNotFoundError as e:
        print(f"rehearsal skipped: {e}"); return None
    counts = link_tree(ctx['splits'], work / 'datasets', ctx['clips'])   # what the preparation lines read (check_videos)
    for line in block.prepare:
        rc, s, _ = bash('\n'.join([*(localise(x, work) for x in block.assignments), localise(line, work)]), work, ctx['env'],
                        work / 'runs' / 'prepare.log')
        print(f"{'ok  ' if rc == 0 else 'FAIL'} {s:6.0f} s  {line}")
        if rc: raise SystemExit(f"a preparation line failed: see {work / 'runs' / 'prepare.log'}")
    counts = link_tree(ctx['splits'], work / 'datasets', ctx['clips'])   # and what they made (Kinetics-400's training list)
    print('dataset tree: ' + ', '.join(f'{n} {c:,} videos' for n, c in counts.items()))
    results = []
    if a.dry:
        for row in rows:
            r = dry_row(row, block, work)
            results.append(r)
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['seconds']:6.1f} s  {row.name}: {r['videos']:,} videos resolved"
                  + ('' if r['ok'] else '  ' + '; '.join(r['problems'])), flush=True)
        block.results = []
    for row in ([] if a.dry else rows):
        r = run_row(row, block, work, ctx['env'], a.machine)
        results.append(r)
        print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['seconds']:6.0f} s ({r['cpu_seconds']:5.0f} CPU-s)  {row.name}"
              + ('' if r['ok'] else '  ' + '; '.join(r['problems'])), flush=True)
    for line in block.results:
        rc, s, cpu = bash('\n'.join([*(localise(x, work) for x in block.assignments), localise(line, work)]), work, ctx['env'],
                          work / 'runs' / 'results.log')
        nb = (work / 'runs' / 'results.ipynb')
        shown = nb.read_text() if nb.exists() else ''
        smoke_left_out = bool(re.search(r'\b0 runs under', shown)) and ('smoke run(s) left out' in shown or not results)
        ok = rc == 0 and smoke_left_out
        print(f"{'ok  ' if ok else 'FAIL'} {s:6.0f} s  {line}" + ('' if ok else f'  (see {work / "runs" / "results.log"})'))
        results.append({'row': 'results', 'ok': ok, 'seconds': s, 'cpu_seconds': cpu, 'problems': [] if ok else ['results notebook'],
                        'command': line})
    if a.json: Path(a.json).write_text(json.dumps(results, indent=2))
    failed = [r['row'] for r in results if not r['ok']]
    print(f"{len(results) - len(failed)} of {len(results)} passed" + (f"; failed: {failed}" if failed else '')
          + f"; {sum(r['seconds'] for r in results) / 60:.0f} min, {sum(r['cpu_seconds'] for r in results) / 60:.0f} CPU-min")
    if not a.keep: shutil.rmtree(work.parent, ignore_errors=True)
    if failed: sys.exit(1)
    return results


if __name__ == '__main__':
    main()
