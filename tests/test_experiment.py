"""End-to-end runs on a tiny synthetic world: a run killed mid-epoch resumes to the identical result, two gloo
processes train what one process trains, and train.ipynb runs every protocol under papermill."""
import json, os, signal, subprocess, sys, time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from msta_core.engine import TrainConfig
from msta_core.presets import synthetic_preset
from msta_core.world import generate_world
from msta_core.pretrain import pretrain_tiny

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A small world and a tiny ViCLIP pre-trained on it for a few steps."
    base = tmp_path_factory.mktemp('exp')
    world = generate_world(base / 'world', seed=0, videos_per_class=4, pretrain_per_class=2, test_per_class=1, zeroshot_per_class=1, val_per_class=1,
                           shots=(2,), base_shots=2, descriptions=(2,), workers=2)
    ckpt = pretrain_tiny(world, base / 'pre', steps=3, batch_size=8, log_every=3, evaluate=False, num_workers=0, progress=False)
    return world, ckpt, base


def config(tiny, out, **train):
    world, ckpt, _ = tiny
    t = TrainConfig(epochs=2, lr=1e-3, warmup_epochs=0.5, batch_size=4, micro_batch=4, num_workers=0, save_every=1, **train)
    c = synthetic_preset('fewshot', 'msta+consistency', shots=2, data_root=str(world.root), checkpoint=str(ckpt),
                         views=(1, 1), out_dir=str(out), train=t)
    return c


def run_cli(cfg, nproc=1, wait=True):
    out = Path(cfg.out_dir); out.mkdir(parents=True, exist_ok=True)
    (out / 'config.json').write_text(cfg.to_json())
    if nproc == 1: cmd = [sys.executable, '-m', 'msta_core.experiment', str(out / 'config.json')]
    else: cmd = [str(Path(sys.executable).parent / 'torchrun'), '--standalone', '--nproc_per_node', str(nproc),
                 '-m', 'msta_core.experiment', str(out / 'config.json')]
    p = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    if wait:
        log, _ = p.communicate(timeout=600)
        assert p.returncode == 0, log[-4000:]
    return p


def adapters(out):
    return torch.load(Path(out) / 'adapters.pt', weights_only=True)['state_dict']


def test_killed_run_resumes_identically(tiny, tmp_path):
    full = config(tiny, tmp_path / 'full')
    run_cli(full)
    cut = replace(full, out_dir=str(tmp_path / 'cut'))
    p = run_cli(cut, wait=False)
    ck = Path(cut.out_dir) / 'last.pt'
    t0 = time.time()
    while not ck.exists() and time.time() - t0 < 300 and p.poll() is None: time.sleep(0.02)
    time.sleep(0.3)
    os.killpg(p.pid, signal.SIGKILL); p.wait()                      # a real kill, mid-run
    assert p.returncode == -signal.SIGKILL, 'the run finished before it could be killed: make it longer'
    state = torch.load(ck, weights_only=True)
    assert state['step'] < 2 * 20                                   # it stopped before the end
    run_cli(cut)                                                    # a new process resumes from last.pt
    a, b = adapters(full.out_dir), adapters(cut.out_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = (json.loads((Path(o) / 'results.json').read_text()) for o in (full.out_dir, cut.out_dir))
    assert ra['summary'] == rb['summary']
    ha = [json.loads(l) for l in (Path(full.out_dir) / 'metrics.jsonl').read_text().splitlines()]
    hb = [json.loads(l) for l in (Path(cut.out_dir) / 'metrics.jsonl').read_text().splitlines()]
    assert ha == hb


def test_two_processes_match_one(tiny, tmp_path):
    one = config(tiny, tmp_path / 'one', seed=7)
    one = replace(one, peft=replace(one.peft, dropout=0.0), train=replace(one.train, epochs=1))   # dropout masks depend on the shard
    two = replace(one, out_dir=str(tmp_path / 'two'), train=replace(one.train, micro_batch=2), nproc=2)
    run_cli(one); run_cli(two, nproc=2)
    a, b = adapters(one.out_dir), adapters(two.out_dir)
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    ra, rb = (json.loads((Path(o) / 'results.json').read_text()) for o in (one.out_dir, two.out_dir))
    assert ra['results']['test']['n'] == rb['results']['test']['n'] == 40          # every test clip, once
    assert abs(ra['summary']['top1'] - rb['summary']['top1']) < 1e-6


@pytest.mark.parametrize('protocol,method', [('fewshot', 'lora'), ('base2novel', 'msta+consistency'),
                                             ('zeroshot', 'frozen'), ('supervised', 'adaptformer')])
def test_train_notebook(tiny, tmp_path, protocol, method):
    import papermill as pm
    world, ckpt, _ = tiny
    out = tmp_path / 'run'
    pm.execute_notebook(str(ROOT / 'nbs/train.ipynb'), str(tmp_path / 'out.ipynb'), kernel_name='python3', progress_bar=False,
                        cwd=str(ROOT / 'nbs'),
                        parameters=dict(protocol=protocol, method=method, shots=2, data_root=str(world.root), checkpoint=str(ckpt),
                                        out_dir=str(out), epochs=1, batch_size=8, micro_batch=8, num_workers=0, views=[1, 1]))
    r = json.loads((out / 'results.json').read_text())
    assert r['protocol'] == protocol and r['method'] == method
    if protocol == 'base2novel': assert {'base', 'novel', 'hm'} <= set(r['summary'])
    assert (out / 'curves.png').exists()


def test_bad_parameters_fail_first(tiny, tmp_path):
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError, match='shots'):
        pm.execute_notebook(str(ROOT / 'nbs/train.ipynb'), str(tmp_path / 'out.ipynb'), kernel_name='python3',
                            progress_bar=False, parameters=dict(protocol='fewshot', shots=3, out_dir=str(tmp_path / 'x')))
    assert not (tmp_path / 'x').exists()                             # failed before any work


def test_results_notebook(tiny, tmp_path):
    "results.ipynb collects run folders into the paper's table layout beside the paper's and the authors' numbers."
    import papermill as pm
    world, ckpt, _ = tiny
    for method in ('frozen', 'lora'):
        pm.execute_notebook(str(ROOT / 'nbs/train.ipynb'), str(tmp_path / f'{method}.ipynb'), kernel_name='python3',
                            progress_bar=False, cwd=str(ROOT / 'nbs'),
                            parameters=dict(protocol='base2novel', method=method, data_root=str(world.root), checkpoint=str(ckpt),
                                            out_dir=str(tmp_path / 'runs' / method), epochs=1, batch_size=8, micro_batch=8,
                                            num_workers=0, views=[1, 1]))
    pm.execute_notebook(str(ROOT / 'nbs/train.ipynb'), str(tmp_path / 'smoke.ipynb'), kernel_name='python3',   # a smoke run
                        progress_bar=False, cwd=str(ROOT / 'nbs'),
                        parameters=dict(protocol='base2novel', method='adaptformer', data_root=str(world.root), checkpoint=str(ckpt),
                                        out_dir=str(tmp_path / 'runs' / 'smoke'), batch_size=8, micro_batch=4, num_workers=0,
                                        views=[1, 1], smoke=True))
    shown = (tmp_path / 'smoke.ipynb').read_text()
    assert 'SMOKE RUN' in shown and 'a check of the command, not a result' in shown
    assert 'smoke' in json.loads((tmp_path / 'runs' / 'smoke' / 'results.json').read_text())
    pm.execute_notebook(str(ROOT / 'nbs/results.ipynb'), str(tmp_path / 'results.ipynb'), kernel_name='python3',
                        progress_bar=False, cwd=str(ROOT / 'nbs'), parameters=dict(runs_dir=str(tmp_path / 'runs')))
    md = (tmp_path / 'runs' / 'results.md').read_text()
    assert 'frozen' in md and 'lora' in md and '| base2novel' in md
    assert 'adaptformer' not in md and '1 smoke run(s) left out of every table' in (tmp_path / 'results.ipynb').read_text()


def test_refused_rerun_leaves_the_run_folder_as_it_was(tmp_path):
    "A rerun into a finished run's folder under other settings is refused, naming the field, before anything is written."
    from msta_core.core import atomic_torch_save
    from msta_core.core import to_plain
    from msta_core.experiment import check_out_dir, launch, run_experiment
    t = TrainConfig(epochs=2, lr=1e-3, batch_size=4, micro_batch=4, num_workers=0)
    done = synthetic_preset('fewshot', 'lora', shots=2, data_root=str(tmp_path / 'world'), views=(1, 1),
                            out_dir=str(tmp_path / 'run'), train=t)
    out = Path(done.out_dir); out.mkdir()
    (out / 'config.json').write_text(done.to_json())
    (out / 'run_info.json').write_text('{"config": "the run that happened"}')
    (out / 'results.json').write_text('{"summary": {"top1": 61.0}}')
    atomic_torch_save({'config': json.dumps(to_plain(done))}, out / 'last.pt')     # what fit saves with a run
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = replace(done, train=replace(t, lr=5e-4))
    for call in (run_experiment, launch):
        with pytest.raises(ValueError, match=r'changed: train.lr: 0.001 → 0.0005'):
            call(other)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # the same experiment in a moved folder, with other DataLoader workers, is no other experiment
    out.rename(tmp_path / 'moved')
    check_out_dir(replace(done, out_dir=str(tmp_path / 'moved'), train=replace(t, num_workers=3)))
    # a finished run without training (the frozen backbone) is compared through its config.json
    zs = synthetic_preset('fewshot', 'frozen', shots=2, data_root=str(tmp_path / 'world'), out_dir=str(tmp_path / 'zs'))
    Path(zs.out_dir).mkdir(); (Path(zs.out_dir) / 'config.json').write_text(zs.to_json())
    (Path(zs.out_dir) / 'results.json').write_text('{}')
    with pytest.raises(ValueError, match=r"changed: template: "):
        run_experiment(replace(zs, template='a clip of {}.'))
    assert json.loads((Path(zs.out_dir) / 'config.json').read_text())['template'] == zs.template


def test_a_second_run_on_a_live_runs_folder_is_refused(tiny, tmp_path, monkeypatch):
    "While a run holds its folder, a second run there (in a notebook, through launch, from the command line) is refused "
    "at once, naming the holder, before writing anything; a crash leaves no stale lock; launch's workers run under it."
    from msta_core.experiment import launch, run_experiment
    from msta_core.run_folder import FolderInUse, LOCK_FILE
    cfg = config(tiny, tmp_path / 'run')
    cfg = replace(cfg, train=replace(cfg.train, epochs=1, save_every=0, micro_batch=2))   # (2 processes later)
    out = Path(cfg.out_dir)
    first = run_cli(cfg, wait=False)
    t0 = time.time()
    while first.poll() is None and time.time() - t0 < 300:          # until the first run holds the folder
        try:
            if json.loads((out / LOCK_FILE).read_text())['pid'] == first.pid: break
        except (OSError, ValueError, KeyError): pass
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGSTOP)                            # it stays in the middle of its run
    try:
        assert first.poll() is None, 'the first run ended before it could be caught running'
        before = {p.name: p.read_bytes() for p in out.iterdir()}
        for call in (run_experiment, launch):
            with pytest.raises(FolderInUse, match=rf"{out} is being written by another run: pid {first.pid} on "):
                call(cfg)
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before     # nothing written
        cmd = [sys.executable, '-m', 'msta_core.experiment', str(out / 'config.json')]
        second = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
        assert second.returncode != 0 and f'pid {first.pid} on ' in second.stderr, second.stderr[-2000:]
    finally:
        os.killpg(first.pid, signal.SIGKILL); first.wait()         # the first run crashes
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    r = launch(cfg, nproc=2)                                        # no stale lock; the workers run under launch's
    assert r['world_size'] == 2 and (out / 'adapters.pt').exists()


def test_scheduling_does_not_change_a_run(tiny, tmp_path, monkeypatch):
    "What benchmarks/synthetic_table.py changes to fit two runs on the cores (threads, loader workers, frames decoded "
    "once up front) leaves a run's numbers as they were, bit for bit."
    from msta_core.experiment import run_experiment
    from msta_core import loader
    from msta_core.loader import PRELOADED, preload_frames
    world, *_ = tiny
    base = config(tiny, tmp_path / 'plain', seed=3)
    base = replace(base, views=(2, 1), train=replace(base.train, epochs=1, save_every=0))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        plain = run_experiment(replace(base, train=replace(base.train, num_workers=2)), progress=False)
        torch.set_num_threads(1)
        assert preload_frames([world.split(s) for s in ('actions_2shot', 'actions_test')], num_workers=0) > 0
        def no_decoding(*a, **k): raise AssertionError('a video was decoded again although it was preloaded')
        monkeypatch.setattr(loader, 'read_clip', no_decoding)
        table = run_experiment(replace(base, out_dir=str(tmp_path / 'table')), progress=False)
    finally:
        torch.set_num_threads(threads); PRELOADED.clear()
    assert plain['summary'] == table['summary'] and plain['results'] == table['results']
    a, b = adapters(tmp_path / 'plain'), adapters(tmp_path / 'table')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_every_evaluation_keeps_the_runs_bound_on_unreadable_videos(tiny, tmp_path, monkeypatch):
    "With `max_bad_fraction=0.9`, a test split two thirds unreadable is evaluated (and counted) by every evaluation of "
    "the run, M2-CLIP's visual classifier included, instead of failing one of them at the default bound."
    from msta_core.experiment import run_experiment
    from msta_core import loader
    from msta_core.video import VideoReadError
    world, *_ = tiny
    test = [str(p) for p, _ in world.split('actions_test')]
    broken = {p for i, p in enumerate(test) if i % 3}
    real = loader.read_clip
    def read_clip(path, *a, **k):
        if str(path) in broken: raise VideoReadError(path, 'made unreadable by the test')
        return real(path, *a, **k)
    monkeypatch.setattr(loader, 'read_clip', read_clip)
    c = config(tiny, tmp_path / 'm2', max_bad_fraction=0.9)
    c = replace(synthetic_preset('fewshot', 'm2clip', shots=2, data_root=c.data_root, checkpoint=c.checkpoint, views=(1, 1),
                                 out_dir=c.out_dir), train=replace(c.train, epochs=1, save_every=0))
    with pytest.warns(UserWarning, match='unreadable'):
        r = run_experiment(c, progress=False)
    assert r['results']['test']['skipped'] == len(broken) and r['results']['test']['n'] == len(test) - len(broken)
    assert 'visual' in r['results']['test']


def test_an_old_parameter_name_fails_naming_the_new(tmp_path):
    "`-p layers` (the block range's earlier name) fails in the checking cell, before any work, naming `blocks`."
    import papermill as pm
    with pytest.raises(pm.PapermillExecutionError, match="it is called 'blocks' now"):
        pm.execute_notebook(str(ROOT / 'nbs/train.ipynb'), str(tmp_path / 'out.ipynb'), kernel_name='python3',
                            progress_bar=False, parameters=dict(layers='[3, 4]', out_dir=str(tmp_path / 'x')))
    assert not (tmp_path / 'x').exists()


TOY_METHOD = """
from dataclasses import dataclass, field
import torch
from torch import nn
from msta_core.peft import PeftConfig, PeftModule, check_blocks, tower_blocks, register_method

@dataclass
class ShiftConfig(PeftConfig):
    family: str = field(default='shift', init=False)
    towers: tuple = ('video',)

class Shift(PeftModule):
    def __init__(self, mc, cfg):
        super().__init__(cfg); check_blocks(cfg, mc)
        self.video = nn.ParameterDict({str(l): nn.Parameter(torch.zeros(mc.vision_width)) for l in cfg.adapted_blocks(mc.vision_layers)})
    def slots(self, model):
        return [(tower_blocks(model, 'video')[int(l) - 1], lambda b, x, grid=None, p=p: b.plain_forward(x) + p) for l, p in self.video.items()]

register_method('shift', ShiftConfig, Shift, about='a learned vector added to each video block', synthetic=dict(blocks=(1, 4)),
                synthetic_lr=1e-2, fits_shots=True)
"""


def test_a_method_of_your_own_is_one_registration(tiny, tmp_path, monkeypatch):
    "A method registered in a module of its own runs through configs, presets, apply_peft, the diagnostics and train.ipynb."
    import sys, papermill as pm
    from msta_core.peft import METHODS, FAMILIES, apply_peft
    from msta_core.presets import config_from_params
    from msta_core.diagnostics import method_roles
    from msta_core.viclip import ViCLIP
    world, ckpt, _ = tiny
    (tmp_path / 'toy_shift.py').write_text(TOY_METHOD)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv('PYTHONPATH', str(tmp_path) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    try:
        cfg = config_from_params(method='shift', plugins="['toy_shift']", data_root=str(world.root), checkpoint=str(ckpt))
        assert cfg.peft.family == 'shift' and cfg.peft.blocks == (1, 4) and cfg.train.lr == 1e-2 and not cfg.consistency
        assert synthetic_preset('fewshot', 'shift').peft == cfg.peft and 'shift' in method_roles()['fit']
        m = apply_peft(ViCLIP('tiny'), 'shift')
        assert {n for n, p in m.named_parameters() if p.requires_grad} == {f'peft.video.{l}' for l in (1, 2)}
        out = tmp_path / 'run'
        pm.execute_notebook(str(ROOT / 'nbs/train.ipynb'), str(tmp_path / 'out.ipynb'), kernel_name='python3', progress_bar=False,
                            cwd=str(ROOT / 'nbs'),
                            parameters=dict(method='shift', plugins=['toy_shift'], shots=2, data_root=str(world.root),
                                            checkpoint=str(ckpt), out_dir=str(out), epochs=1, batch_size=8, micro_batch=8,
                                            num_workers=0, views=[1, 1]))
        r = json.loads((out / 'results.json').read_text())
        assert r['method'] == 'shift' and r['trainable_params'] == 4 * 128 and (out / 'adapters.pt').exists()
        assert json.loads((out / 'config.json').read_text())['plugins'] == ['toy_shift']
    finally:
        METHODS.pop('shift', None); FAMILIES.pop('shift', None); sys.modules.pop('toy_shift', None)
