"""Two torchrun node agents on one machine (gloo, c10d rendezvous), as a run across two nodes would start:
they train the weights one process trains, score every test clip once, report the same figures (the final one
and the authors' best-epoch one), and build per-node files once per node."""
import json, os, socket, subprocess, sys, time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from msta_core.engine import TrainConfig
from msta_core.presets import synthetic_preset
from msta_core.world import generate_world
from msta_core.pretrain import pretrain_tiny

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = str(Path(sys.executable).parent / 'torchrun')
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONUNBUFFERED': '1'}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def two_nodes(args, nproc_per_node=1, envs=({}, {}), timeout=600):
    "Start two torchrun node agents (node_rank 0 and 1) meeting at one c10d endpoint; wait for both."
    port = free_port()
    procs = [subprocess.Popen([TORCHRUN, '--nnodes', '2', '--node_rank', str(r), '--nproc_per_node', str(nproc_per_node),
                               '--rdzv-backend', 'c10d', '--rdzv-endpoint', f'127.0.0.1:{port}', '--rdzv-id', f'test{port}',
                               *args], cwd=ROOT, env={**ENV, **envs[r]}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, start_new_session=True) for r in (0, 1)]
    logs = []
    t0 = time.time()
    for p in procs:
        try: logs.append(p.communicate(timeout=max(1, timeout - (time.time() - t0)))[0])
        except subprocess.TimeoutExpired:
            for q in procs: q.kill()
            raise
    for p, log in zip(procs, logs): assert p.returncode == 0, log[-4000:]
    return logs


def test_once_per_node(tmp_path):
    "Each node's first process builds its node's copy; on a shared disk only rank 0 builds; everyone reads it."
    for shared in (False, True):
        out = tmp_path / f'out_{shared}'; out.mkdir()
        disks = [tmp_path / f'disk_{shared}_{r}' for r in (0, 1)]
        if shared: disks = [disks[0]] * 2
        two_nodes([str(ROOT / 'tests/multinode_worker.py'), str(out)], nproc_per_node=2,
                  envs=[{'NODE_DISK': str(d)} for d in disks], timeout=300)
        rows = [json.loads((out / f'rank{r}.json').read_text()) for r in range(4)]
        assert sorted(r['rank'] for r in rows) == [0, 1, 2, 3] and all(r['world_size'] == 4 for r in rows)
        for disk in set(disks):
            here = [r for r in rows if r['disk'] == str(disk)]
            builder = int((disk / 'built_by.txt').read_text())
            assert {r['got'] for r in here} == {str(builder)}                       # one build, read by all
            if shared: assert builder == 0                                          # rank 0 builds first
            else: assert builder in [r['rank'] for r in here if r['local_rank'] == 0]   # the node's own first process


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp('mn')
    world = generate_world(base / 'world', seed=0, videos_per_class=4, pretrain_per_class=2, test_per_class=1,
                           shots=(2,), base_shots=2, descriptions=(2,), workers=2)
    ckpt = pretrain_tiny(world, base / 'pre', steps=3, batch_size=8, log_every=3, evaluate=False, num_workers=0, progress=False)
    return world, ckpt


def test_two_nodes_match_one_process(tiny, tmp_path):
    "Base-to-novel with report='paper': weights, final figures and the authors' figures equal one process's."
    world, ckpt = tiny
    t = TrainConfig(epochs=2, lr=1e-3, warmup_epochs=0.5, batch_size=4, micro_batch=4, num_workers=0, save_every=0,
                    seed=7, report='paper')
    one = synthetic_preset('base2novel', 'msta+consistency', data_root=str(world.root), checkpoint=str(ckpt),
                           views=(1, 1), out_dir=str(tmp_path / 'one'), train=t)
    one = replace(one, peft=replace(one.peft, dropout=0.0))              # dropout masks depend on the shard
    two = replace(one, out_dir=str(tmp_path / 'two'), train=replace(t, micro_batch=2), nproc=2)
    for c in (one, two):
        Path(c.out_dir).mkdir(parents=True); (Path(c.out_dir) / 'config.json').write_text(c.to_json())
    r = subprocess.run([sys.executable, '-m', 'msta_core.experiment', str(Path(one.out_dir) / 'config.json')], cwd=ROOT,
                       env=ENV, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    two_nodes(['-m', 'msta_core.experiment', str(Path(two.out_dir) / 'config.json')])
    a, b = (torch.load(Path(c.out_dir) / 'adapters.pt', weights_only=True)['state_dict'] for c in (one, two))
    assert a.keys() == b.keys()
    for k in a: torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    ra, rb = (json.loads((Path(c.out_dir) / 'results.json').read_text()) for c in (one, two))
    assert rb['world_size'] == 2 and json.loads((Path(two.out_dir) / 'run_info.json').read_text())['world_size'] == 2
    for name in ('base', 'novel'): assert ra['results'][name]['n'] == rb['results'][name]['n'] == 20   # each clip once
    for k in ('base', 'novel', 'hm'): assert abs(ra['summary'][k] - rb['summary'][k]) < 1e-6
    pa, pb = ra['paper_rule'], rb['paper_rule']
    assert pa['evaluated_epochs'] == pb['evaluated_epochs'] == [1, 2] and pa['epoch'] == pb['epoch']
    assert 'test set' in pa['rule'] and 'base' in pa['rule']
    for k in ('base', 'novel', 'hm'): assert abs(pa[k] - pb[k]) < 1e-6
    ba, bb = (torch.load(Path(c.out_dir) / 'best.pt', weights_only=True) for c in (one, two))
    assert ba['epoch'] == bb['epoch'] == pa['epoch']
    for k in ba['model']: torch.testing.assert_close(ba['model'][k], bb['model'][k], rtol=1e-4, atol=1e-5)
