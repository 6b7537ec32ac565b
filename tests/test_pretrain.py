"""The pre-training experiment notebook (`nbs/pretrain.ipynb`) run end to end with papermill on a tiny world:
a few steps, the checkpoint and its JSON written, and the model loads back."""
import json
from pathlib import Path

import pytest
import torch

from msta_core.world import generate_world
from msta_core.pretrain import CHECKPOINT_NAME, TINY_VICLIP, load_tiny, read_info

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(videos_per_class=2, pretrain_per_class=1, test_per_class=1, zeroshot_per_class=1, val_per_class=1, shots=(1, 2),
            base_shots=2, descriptions=(2,))


def test_pretrain_notebook(tmp_path, monkeypatch):
    papermill = pytest.importorskip('papermill')
    monkeypatch.setenv('MSTA_CACHE', str(tmp_path / 'cache'))       # never touch the user's cache
    world = generate_world(tmp_path / 'world', seed=0, workers=2, **TINY)
    out = tmp_path / 'run'
    nb = papermill.execute_notebook(str(ROOT / 'nbs/pretrain.ipynb'), str(tmp_path / 'pretrain_out.ipynb'),
                                    parameters=dict(world_root=str(world.root), out_dir=str(out), steps=5,
                                                    batch_size=16, log_every=1, num_workers=0),
                                    kernel_name='python3', cwd=str(ROOT / 'nbs'), progress_bar=False)
    text = ''.join(o.get('text', '') for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []))
    assert 'zeroshot_unseen' in text and 'checkpoint:' in text
    path = out / CHECKPOINT_NAME
    info = read_info(path)
    assert [r['step'] for r in info['loss_curve']] == [1, 2, 3, 4, 5]
    assert info['pretrain']['steps'] == 5 and info['world']['videos_digest'] == world.videos_digest
    assert info['zero_shot']['zeroshot_seen']['n'] == 120 and info['zero_shot']['zeroshot_unseen']['n'] == 40
    assert all(0 <= info['zero_shot'][s]['top1'] <= 100 for s in info['zero_shot'])
    m = load_tiny(path)
    assert m.config == TINY_VICLIP
    sd = torch.load(path, map_location='cpu', weights_only=True)['model']
    assert all(torch.equal(sd[k], v) for k, v in m.state_dict().items())
    assert json.loads((out / 'run_info.json').read_text())['config']['key'] == info['key']
    assert not (tmp_path / 'cache' / 'pretrained').exists()          # out_dir given: nothing in the cache


def test_same_seed_same_weights(tmp_path):
    "A step budget and a seed give one model: two runs are identical, another seed is not."
    from msta_core.viclip import get_config
    from msta_core.pretrain import pretrain_tiny
    small = get_config(TINY_VICLIP, vision_width=32, vision_layers=1, vision_heads=2, text_width=32, text_layers=1,
                       text_heads=2, embed_dim=32)
    world = generate_world(tmp_path / 'world', seed=0, workers=2, **TINY)
    kw = dict(viclip=small, steps=4, batch_size=16, log_every=2, evaluate=False, progress=False, num_workers=0)
    a, b, c = (torch.load(pretrain_tiny(world, tmp_path / name, seed=s, **kw), weights_only=True)['model']
               for name, s in (('a', 0), ('b', 0), ('c', 1)))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    ra, rb = (read_info(tmp_path / n / CHECKPOINT_NAME)['loss_curve'] for n in 'ab')
    assert ra == rb and len(ra) == 2
