"Slower and cross-cutting checks of the methods and msta_core.peft (the notebooks 05_peft, 06_msta and 06a_baselines have the fast ones)."
import copy

import pytest
import torch

from msta_core.peft import (PEFT_PRESETS, PeftConfig, adapters_disabled, apply_peft, load_peft,
                            peft_state_dict, remove_peft, save_peft)
from msta_core.baselines import merge_lora
import msta_core.presets                     # every built-in method registered
from msta_core.tokenizer import tokenize
from msta_core.viclip import ViCLIP, get_config

ADAPTED = [dict(method='msta', blocks=(1, 2)), dict(method='msta', blocks=(2, 2), shared=False, temporal='sequential'),
           dict(method='msta', blocks=(1, 2), towers=('text',)), dict(method='lora', rank=4),
           dict(method='adaptformer', dims=8), dict(method='st-adapter', dims=8, st_position='both')]


def tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    return ViCLIP(get_config('tiny', **overrides)).eval()


@pytest.fixture(scope='module')
def inputs():
    torch.manual_seed(0)
    return torch.randn(2, 4, 3, 32, 32), tokenize(['a person juggling', 'a dog'], context_length=32)


def outputs(m, inputs):
    with torch.no_grad(): return m.encode_video(inputs[0]), m.encode_text(inputs[1])


def perturb_(m, std=0.05):
    "Move every trainable parameter, as training would (also LoRA's B and ST-Adapter's zero conv)."
    with torch.no_grad():
        for p in m.parameters():
            if p.requires_grad: p.add_(std * torch.randn_like(p))


@pytest.mark.parametrize('cfg', ADAPTED, ids=lambda c: '-'.join(f'{v}' for v in c.values()))
def test_training_moves_only_the_method(cfg, inputs):
    m = apply_peft(tiny(), **cfg).train()
    backbone = {k: v.clone() for k, v in m.state_dict().items() if not k.startswith('peft.')}
    method = {k: v.clone() for k, v in peft_state_dict(m).items()}
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        v, t = m.encode_video(inputs[0]), m.encode_text(inputs[1])
        loss = torch.nn.functional.cross_entropy(m.logits(v, t), torch.arange(2))
        opt.zero_grad(); loss.backward(); opt.step()
    assert all(torch.equal(v, m.state_dict()[k]) for k, v in backbone.items())
    moved = [k for k, v in peft_state_dict(m).items() if not torch.equal(v, method[k])]
    assert moved, 'no parameter of the method changed'


@pytest.mark.parametrize('cfg', ADAPTED + [dict(method='full')], ids=lambda c: '-'.join(f'{v}' for v in c.values()))
def test_save_load_roundtrip_without_backbone(cfg, inputs, tmp_path):
    m = apply_peft(tiny(), **cfg)
    perturb_(m)
    want = outputs(m, inputs)
    save_peft(m, tmp_path / 'method.pt')
    sd = torch.load(tmp_path / 'method.pt', weights_only=True)['state_dict']
    n_method = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert sum(v.numel() for v in sd.values()) == n_method          # the file holds the method, not the backbone
    m2 = load_peft(tiny(), tmp_path / 'method.pt')
    got = outputs(m2, inputs)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_load_peft_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='save_peft'): load_peft(tiny(), tmp_path / 'nothing.pt')
    (tmp_path / 'junk.pt').write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='not a readable adapter file'): load_peft(tiny(), tmp_path / 'junk.pt')
    torch.save({'model': {}}, tmp_path / 'backbone.pt')
    with pytest.raises(ValueError, match='not an adapter file'): load_peft(tiny(), tmp_path / 'backbone.pt')


def test_failed_load_peft_leaves_the_model_as_it_was(tmp_path):
    "A file whose parameters do not fit the model: the error names them, and the model keeps no half-applied method."
    m = apply_peft(tiny(), method='msta', blocks=(1, 2))
    save_peft(m, tmp_path / 'msta.pt')
    other = tiny()
    for p in other.text_encoder.parameters(): p.requires_grad_(False)         # the caller's own choice of what trains
    before = ({k: v.clone() for k, v in other.state_dict().items()}, [p.requires_grad for p in other.parameters()])
    obj = torch.load(tmp_path / 'msta.pt', weights_only=True)
    k = next(iter(obj['state_dict'])); obj['state_dict'][k] = obj['state_dict'][k][..., :1]    # a wrong shape
    torch.save(obj, tmp_path / 'bad.pt')
    with pytest.raises(ValueError, match='wrong shape'): load_peft(other, tmp_path / 'bad.pt')
    assert getattr(other, 'peft', None) is None and all(b.adapter is None for b in other.modules() if hasattr(b, 'adapter'))
    assert [p.requires_grad for p in other.parameters()] == before[1]
    assert other.state_dict().keys() == before[0].keys() and all(torch.equal(v, before[0][k]) for k, v in other.state_dict().items())
    load_peft(other, tmp_path / 'msta.pt')                                     # and the good file still loads into it


def test_unsafe_adapter_file_is_refused_with_a_full_message(tmp_path):
    class Evil:
        def __reduce__(self): return (print, ('this must never run',))
    torch.save({'peft_config': {}, 'state_dict': {}, 'x': Evil()}, tmp_path / 'evil.pt')
    with pytest.raises(ValueError, match=r'refused.*pickled Python objects \(the first is print\).*only if you trust'):
        load_peft(tiny(), tmp_path / 'evil.pt')


@pytest.mark.parametrize('targets', [('q',), ('k', 'o'), ('q', 'k', 'v', 'o')])
@pytest.mark.parametrize('towers', [('video',), ('video', 'text')])
def test_lora_merge_identical(targets, towers, inputs):
    m = apply_peft(tiny(), method='lora', rank=3, lora_targets=targets, towers=towers, scale=2.0)
    ref = outputs(m, inputs)
    assert torch.equal(ref[0], outputs(tiny(), inputs)[0])       # before training: the backbone
    perturb_(m, 0.2)
    want = outputs(m, inputs)
    assert not torch.equal(want[0], ref[0])
    merge_lora(m)
    got = outputs(m, inputs)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    with pytest.raises(ValueError, match='merge_lora needs a LoRA model'): merge_lora(apply_peft(tiny(), 'msta', blocks=(1, 2)))


def test_disabled_is_pretrained_and_restores_on_error(inputs):
    ref = outputs(tiny(), inputs)
    m = apply_peft(tiny(), method='msta', blocks=(1, 2))
    perturb_(m)
    adapted = outputs(m, inputs)
    with pytest.raises(RuntimeError):
        with adapters_disabled(m):
            got = outputs(m, inputs)
            assert torch.equal(got[0], ref[0]) and torch.equal(got[1], ref[1])
            raise RuntimeError('boom')
    assert torch.equal(outputs(m, inputs)[1], adapted[1])
    with pytest.raises(ValueError, match='frozen copy'):
        with adapters_disabled(apply_peft(tiny(), 'full')): pass


def test_deepcopy_keeps_its_own_adapters(inputs):
    m = apply_peft(tiny(), method='msta', blocks=(1, 2))
    m2 = copy.deepcopy(m)
    assert torch.equal(outputs(m2, inputs)[0], outputs(m, inputs)[0])
    perturb_(m2)
    assert not torch.equal(outputs(m2, inputs)[0], outputs(m, inputs)[0])
    blk = m2.vision_encoder.transformer.resblocks[1]
    assert blk.adapter.__self__ is m2.peft.layers['2']                 # the copy's slots point at the copy's layers


def test_mode_dtype_and_remove(inputs):
    m = apply_peft(tiny().train(), 'msta', blocks=(1, 2))
    assert m.peft.training
    m = apply_peft(tiny().to(torch.bfloat16), 'msta', blocks=(1, 2))
    assert {p.dtype for p in m.peft.parameters()} == {torch.bfloat16}
    with torch.no_grad(): m.encode_video(inputs[0].bfloat16())
    remove_peft(m)
    assert all(p.requires_grad for p in m.parameters()) and not hasattr(m, 'peft')


def test_temporal_patch_embedding_grid(inputs):
    "ViCLIP with a 2-frame patch kernel has T' = 2 time steps: the temporal convolution follows the grid it is given."
    m = apply_peft(tiny(kernel_size=2), method='msta', blocks=(1, 2))
    assert outputs(m, inputs)[0].shape == (2, 32)
    m = apply_peft(tiny(kernel_size=2), method='st-adapter', dims=8)
    assert outputs(m, inputs)[0].shape == (2, 32)


def test_l14_counts_pair_layers_by_index():
    "L/14: 24 video blocks, 12 text blocks; blocks 13-24 get video adapters only (their shared layer sees video alone)."
    with torch.device('meta'): m = apply_peft(ViCLIP('l14'), method='msta', dims=64, blocks=(1, 24), temporal='none')
    Dv, Dt, d = 1024, 768, 64
    video, text, shared = (Dv * d + d) + (d * Dv + Dv), (Dt * d + d) + (d * Dt + Dt), d * d + d
    assert sum(p.numel() for p in m.parameters() if p.requires_grad) == 24 * (video + shared) + 12 * text
    with pytest.raises(ValueError, match='only 24 blocks'), torch.device('meta'): apply_peft(ViCLIP('l14'), 'msta', blocks=(1, 25))


def test_every_preset_builds_on_b16():
    for name, cfg in PEFT_PRESETS.items():
        assert isinstance(cfg, PeftConfig)
        with torch.device('meta'): m = apply_peft(ViCLIP('b16'), name)
        train = {id(p) for p in m.peft.trainable_parameters(m)}
        assert all(p.requires_grad == (id(p) in train) for p in m.parameters()), name
