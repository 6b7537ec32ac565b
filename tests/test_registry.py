"One name per method, and records written by earlier versions (config.json, checkpoints, adapter files) still load."
import json
from dataclasses import replace

import pytest
import torch

from msta_core.adapters import (BRANCH_SCALE, METHODS, PEFT_FAMILIES, PeftConfig, apply_peft, load_peft, save_peft, upgrade_peft_dict)
from msta_core.core import fixtures_dir
from msta_core.run_folder import config_changes
from msta_core.presets import ExperimentConfig, config_from_params, paper_preset, synthetic_preset
from msta_core.tokenizer import tokenize
from msta_core.viclip import ViCLIP, get_config

OLD = json.loads((fixtures_dir() / 'saved_configs_v1.json').read_text())


def tiny(seed=0):
    torch.manual_seed(seed)
    return ViCLIP(get_config('tiny')).eval()


def test_every_method_is_read_from_the_one_table():
    for name, m in METHODS.items():
        for cfg in (synthetic_preset('fewshot', name), paper_preset('fewshot', 'hmdb51', method=name)):
            assert cfg.method == name and cfg.peft.method == m.peft and cfg.consistency == m.consistency, name
            assert all(getattr(cfg.peft, k) == v for k, v in m.options.items()), name
    assert {m.peft for m in METHODS.values()} == set(PEFT_FAMILIES)


def preset_when_written(method: str, cfg: ExperimentConfig) -> ExperimentConfig:
    "Today's preset with the lr and branch scale `cfg` holds: the sweep (synthetic_sweep.py) may have moved them since."
    now = synthetic_preset('fewshot', method)
    scale = BRANCH_SCALE.get(now.peft.method)
    peft = replace(now.peft, **{scale: getattr(cfg.peft, scale)}) if scale else now.peft
    return replace(now, peft=peft, train=replace(now.train, lr=cfg.train.lr))


@pytest.mark.parametrize('method', sorted(OLD['configs']))
def test_an_old_config_json_loads_as_the_same_run(method):
    old = OLD['configs'][method]
    cfg = ExperimentConfig.from_json(json.dumps(old))
    assert cfg == preset_when_written(method, cfg)                         # every other setting, under today's names
    assert cfg.train.lr == old['train']['lr']                              # the file's own lr, as written
    assert config_changes(old, cfg) == []                                  # its run resumes
    changed = replace(cfg, split=2)
    assert config_changes(old, changed) == ['split: 1 → 2']                # a real change still counts


@pytest.mark.parametrize('name', sorted(OLD['peft_configs']))
def test_an_old_adapter_file_loads(name, tmp_path):
    old = OLD['peft_configs'][name]
    m = apply_peft(tiny(), PeftConfig(**upgrade_peft_dict(old)))
    with torch.no_grad():
        for p in m.peft.parameters(): p.add_(0.05 * torch.randn_like(p))
    path = save_peft(m, tmp_path / 'adapters.pt')
    obj = torch.load(path, weights_only=True)
    obj['peft_config'] = old                                               # as the earlier version wrote it
    torch.save(obj, path)
    video, tokens = torch.randn(2, 4, 3, 32, 32), tokenize(['a dog', 'a person juggling'], context_length=32)
    m2 = load_peft(tiny(), path)
    assert m2.peft.config == m.peft.config
    with torch.no_grad():
        assert torch.equal(m2.encode_video(video), m.encode_video(video)) and torch.equal(m2.encode_text(tokens), m.encode_text(tokens))


def test_an_old_method_spelling_runs_with_a_warning_and_a_wrong_one_names_the_right_one():
    with pytest.warns(UserWarning, match="spelled 'st-adapter'"): c = config_from_params(method='st_adapter')
    assert c.method == 'st-adapter' and c.peft.method == 'st-adapter' and c.out_dir.endswith('_st-adapter')
    with pytest.raises(ValueError, match="did you mean 'st-adapter'"): config_from_params(method='st-adaptor')
    with pytest.raises(ValueError, match="did you mean 'zero-shot'"): ExperimentConfig(method='zeroshot')


def test_parameters_route_to_the_fields_that_mean_them():
    c = config_from_params(method='lora', rank=4, scale='2.0')
    assert (c.peft.rank, c.peft.scale, c.peft.dims, c.peft.alpha) == (4, 2.0, None, None)
    with pytest.raises(ValueError, match="lora's scale is scale=0.5"): config_from_params(method='lora', alpha=0.5)
    with pytest.raises(ValueError, match='its rank is rank=16'): config_from_params(method='lora', dims=16)
    with pytest.raises(ValueError, match='scale'): config_from_params(method='adaptformer', scale=-1)
    c = config_from_params(method='msta', dims=16, alpha=0.05)
    assert (c.peft.dims, c.peft.alpha, c.peft.rank, c.peft.scale) == (16, 0.05, None, None)


def test_the_block_range_was_called_layers():
    "`PeftConfig.blocks` was `layers`: saved configs with `layers` load, and passing the old name fails naming the new."
    assert PeftConfig(**upgrade_peft_dict(dict(method='msta', layers=[1, 12]))) == PeftConfig('msta', blocks=(1, 12))
    assert ExperimentConfig(peft=dict(method='msta', layers=[1, 4])).peft.blocks == (1, 4)
    assert config_from_params(blocks='[3, 4]').peft.blocks == (3, 4)
    with pytest.raises(ValueError, match="Unknown parameter 'layers': it is called 'blocks' now"): config_from_params(layers='[3, 4]')
    with pytest.raises(TypeError, match='layers= is called blocks= now'): apply_peft(tiny(), 'msta', layers=(1, 2))
