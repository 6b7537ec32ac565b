"""benchmarks/gpu_check.py in its CPU mode (`--quick`): every check that applies on a CPU runs and lands in the table,
so the script a GPU machine will run does not rot."""
import json, math, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / 'benchmarks' / 'gpu_check.py'
ENV = {'OMP_NUM_THREADS': '2', 'PYTHONPATH': str(ROOT)}


def run(tmp_path, *args):
    out = tmp_path / 'r.json'
    r = subprocess.run([sys.executable, str(SCRIPT), '--quick', '--device', 'cpu', '--json', str(out), *args],
                       capture_output=True, text=True, timeout=600, env={**os.environ, **ENV}, cwd=ROOT)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return r.stdout, json.loads(out.read_text())


def test_quick_table_on_cpu(tmp_path):
    text, res = run(tmp_path, '--skip', 'nccl')
    for row in ('forward', 'msta 2-2', 'msta 1-2', 'logits', 'loader'): assert row in text, row
    assert text.count('n/a on CPU') >= 4                                 # TF32: forward, two train rows, logits
    for k in ('forward_fp32', 'forward_bf16', 'train_2_2_fp32', 'train_1_2_bf16'):
        assert res[k]['clips_s'] > 0 and res[k]['peak_mib'] > 0, k
    assert res['train_1_2_fp32']['trainable'] > res['train_2_2_fp32']['trainable'] > 0
    lg = res['logits']
    assert lg['moved'] > 0 and math.isfinite(lg['bf16_forward']) and math.isfinite(lg['bf16_trained'])
    assert 'tf32_forward' not in lg                                      # no TF32 on a CPU
    ld = res['loader']
    assert ld['clips_s'] > 0 and ld['clip_shape'] == [8, 3, 32, 32] and ld['frames'] == 32
    dev = ld['augment_on_device']                                        # uint8 crops from the workers, augmented here
    assert dev['clips_s'] > 0 and dev['clip_shape'] == [8, 3, 32, 32] and dev['max_abs_diff_vs_cpu'] == 0
    assert "augment_on='device'" in text


def test_two_processes_gloo(tmp_path):
    "The two-process check (NCCL on two GPUs) runs with gloo on a CPU and finds the same weights as one process."
    text, res = run(tmp_path, '--gloo', '--skip', 'forward', 'train', 'logits', 'loader')
    assert '2 processes' in text and 'gloo' in text
    assert res['ddp']['max_abs_weight'] > 0 and res['ddp']['max_abs_diff'] < 1e-4
