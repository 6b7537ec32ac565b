"""Two gloo processes under torchrun train exactly what one process trains with the same global batch."""
import subprocess, sys
from pathlib import Path
import torch

HERE = Path(__file__).parent


def test_two_processes_match_one(tmp_path):
    one, two = tmp_path / 'one', tmp_path / 'two'
    r = subprocess.run([sys.executable, str(HERE / 'ddp_toy.py'), str(one)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    torchrun = Path(sys.executable).parent / 'torchrun'
    r = subprocess.run([str(torchrun), '--standalone', '--nproc_per_node', '2', str(HERE / 'ddp_toy.py'), str(two)],
                       capture_output=True, text=True, timeout=300, env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'})
    assert r.returncode == 0, r.stderr[-3000:]
    a = torch.load(one / 'final.pt', weights_only=True); b = torch.load(two / 'final.pt', weights_only=True)
    for k in a['state']:
        torch.testing.assert_close(a['state'][k], b['state'][k], rtol=1e-5, atol=1e-6)
    la, lb = [h['train_loss'] for h in a['history']], [h['train_loss'] for h in b['history']]
    assert len(la) == 2 and all(abs(x - y) < 1e-5 for x, y in zip(la, lb)), (la, lb)
    # and training did something
    assert la[-1] < la[0]


def test_fewer_videos_than_processes():
    "An evaluation of fewer videos than processes (a tiny split, a smoke run's few videos) ends, scoring each video once."
    torchrun = Path(sys.executable).parent / 'torchrun'
    for args in (['1'], ['40', '1']):                        # one video in all; a smoke-style bound of one
        r = subprocess.run([str(torchrun), '--standalone', '--nproc_per_node', '2', str(HERE / 'ddp_eval_toy.py'), *args],
                           capture_output=True, text=True, timeout=120, env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'})
        assert r.returncode == 0, r.stderr[-3000:]
        seen = [__import__('json').loads(x) for x in __import__('re').findall(r'\{[^{}]*\}', r.stdout)]   # lines may interleave
        assert sorted(x['rank'] for x in seen) == [0, 1] and all(x['n'] == 1 and x['top1'] == 100 for x in seen)
