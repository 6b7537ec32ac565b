"""End to end on a tiny synthetic world: M2-CLIP (on the frame-level CLIP and on ViCLIP) and ST-Adapter on the
frame-level CLIP run through `run_experiment`, report what they should, and save what reloads."""
import json
from pathlib import Path

import pytest
import torch

from msta_core.distributed import Dist
from msta_core.engine import TrainConfig
from msta_core.presets import synthetic_preset
from msta_core.world import generate_world
from msta_core.pretrain import pretrain_tiny, load_tiny
from msta_core.experiment import run_experiment
from msta_core.peft import load_peft
from msta_core.clip import FrameCLIP, viclip_as_frame_clip


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    "A small world and a tiny ViCLIP pre-trained on it for a few steps."
    base = tmp_path_factory.mktemp('frame_exp')
    world = generate_world(base / 'world', seed=0, videos_per_class=4, pretrain_per_class=2, test_per_class=1,
                           shots=(2,), base_shots=2, descriptions=(2,), workers=2)
    ckpt = pretrain_tiny(world, base / 'pre', steps=3, batch_size=8, log_every=3, evaluate=False, num_workers=0, progress=False)
    return world, ckpt


def run(tiny, tmp_path, method, backbone, protocol='fewshot'):
    world, ckpt = tiny
    train = TrainConfig(epochs=1, lr=1e-3, warmup_epochs=0.5, batch_size=8, micro_batch=8, num_workers=0, save_every=0)
    cfg = synthetic_preset(protocol, method, shots=2, data_root=str(world.root), checkpoint=str(ckpt), views=(1, 1),
                           backbone=backbone, out_dir=str(tmp_path / f'{method}_{backbone}'), train=train)
    return cfg, run_experiment(cfg, Dist(), progress=False)


@pytest.mark.parametrize('backbone', ['clip-b16', 'b16'])
def test_m2clip_runs_and_reports_both_accuracies(tiny, tmp_path, backbone):
    cfg, r = run(tiny, tmp_path, 'm2clip', backbone)
    test = r['results']['test']
    assert r['method'] == 'm2clip' and r['backbone'] == backbone and test['n'] == 40
    assert {'top1', 'top5'} <= set(test['visual']) and r['summary']['visual_top1'] == test['visual']['top1']
    hist = [json.loads(l) for l in (Path(cfg.out_dir) / 'metrics.jsonl').read_text().splitlines()]
    assert {'train_v2t', 'train_t2v', 'train_ce', 'train_cons', 'train_fc', 'train_mlm'} <= set(hist[-1])
    assert hist[-1]['train_mlm'] > 0                                    # masking is on: the MLM head has targets
    # adapters.pt holds the heads too and reloads into a fresh backbone
    world, ckpt = tiny
    fresh = load_tiny(ckpt)
    if backbone.startswith('clip-'): fresh = viclip_as_frame_clip(fresh)
    m = load_peft(fresh, Path(cfg.out_dir) / 'adapters.pt')
    assert m.peft.heads is not None and len(m.peft.heads.class_names) == m.peft.heads.classifier.out_features
    assert r['trainable_params'] == sum(p.numel() for p in m.peft.parameters())


def test_st_adapter_on_frame_level_clip(tiny, tmp_path):
    cfg, r = run(tiny, tmp_path, 'st-adapter', 'clip-b16')
    assert r['results']['test']['n'] == 40 and 'visual' not in r['results']['test']
    sd = torch.load(Path(cfg.out_dir) / 'adapters.pt', weights_only=True)['state_dict']
    assert sd and all(k.startswith('peft.video.') for k in sd)


def test_m2clip_base_to_novel_visual_on_base_only(tiny, tmp_path):
    "The visual classifier knows only the training classes: base gets both accuracies, novel the cross-modal one."
    cfg, r = run(tiny, tmp_path, 'm2clip', 'clip-b16', protocol='base2novel')
    assert 'visual' in r['results']['base'] and 'visual' not in r['results']['novel']
    assert {'base', 'novel', 'hm'} <= set(r['summary'])
