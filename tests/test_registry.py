"One record per method, and records written by earlier versions (config.json, checkpoints, adapter files) still load."
import json
from dataclasses import replace

import pytest
import torch

from msta_core.peft import METHODS, ALIASES, apply_peft, load_peft, save_peft, upgrade_peft_dict, peft_config_from_dict
from msta_core.core import fixtures_dir
from msta_core.run_folder import config_changes
from msta_core.presets import ExperimentConfig, config_from_params, paper_preset, synthetic_preset
from msta_core.msta import MSTAConfig
from msta_core.baselines import LoRAConfig
from msta_core.tokenizer import tokenize
from msta_core.viclip import ViCLIP, get_config

OLD = json.loads((fixtures_dir() / 'saved_configs_v1.json').read_text())     # before rank/scale and blocks
V2 = json.loads((fixtures_dir() / 'saved_configs_v2.json').read_text())      # before each family had its own config


def tiny(seed=0):
    torch.manual_seed(seed)
    return ViCLIP(get_config('tiny')).eval()


def test_every_method_is_read_from_its_record():
    for name, m in METHODS.items():
        for cfg in (synthetic_preset('fewshot', name), paper_preset('fewshot', 'hmdb51', method=name)):
            assert cfg.method == name and cfg.peft.family == m.family and cfg.consistency == m.consistency, name
            assert all(getattr(cfg.peft, k) == v for k, v in m.options.items()), name
        assert synthetic_preset('fewshot', name).peft == m.peft_config(**m.synthetic) and m.label, name
    assert {ALIASES[a] for a in ('zero-shot', 'zero_shot', 'st_adapter', 'msta_only_video')} == {'frozen', 'st-adapter', 'msta-only-video'}


def preset_when_written(method: str, cfg: ExperimentConfig) -> ExperimentConfig:
    "Today's preset with the lr and branch scale `cfg` holds: the sweep (synthetic_sweep.py) may have moved them since."
    now = synthetic_preset('fewshot', method)
    scale = type(now.peft).branch_scale
    peft = replace(now.peft, **{scale: getattr(cfg.peft, scale)}) if scale else now.peft
    return replace(now, peft=peft, train=replace(now.train, lr=cfg.train.lr))


@pytest.mark.parametrize('method', sorted(OLD['configs']))
def test_an_old_config_json_loads_as_the_same_run(method):
    old = OLD['configs'][method]
    cfg = ExperimentConfig.from_json(json.dumps(old))
    assert cfg == replace(preset_when_written(method, cfg), out_dir=cfg.out_dir)   # every other setting, under today's names
    assert cfg.train.lr == old['train']['lr']                              # the file's own lr, as written
    assert config_changes(old, cfg) == []                                  # its run resumes
    changed = replace(cfg, split=2)
    assert config_changes(old, changed) == ['split: 1 → 2']                # a real change still counts


@pytest.mark.parametrize('name', sorted(V2['configs']))
def test_a_config_json_of_the_flat_format_loads_as_the_same_run(name):
    "What the version before per-family configs wrote: the same run today, resumable, and a change still counts."
    old = V2['configs'][name]
    cfg = ExperimentConfig.from_json(json.dumps(old))
    if name == 'm2clip-release': today = config_from_params(protocol='supervised', dataset='k400', method='m2clip', preset='m2clip-release')
    elif name.startswith('paper:'):
        protocol, dataset, method, *backbone = name[len('paper:'):].split('/')
        today = config_from_params(protocol=protocol, dataset=dataset, method=method, **({'backbone': backbone[0]} if backbone else {}))
    else: today = synthetic_preset('fewshot', name)
    assert cfg == replace(today, out_dir=cfg.out_dir), name              # the folder keeps the name it was given
    assert config_changes(old, cfg) == [] and config_changes(old, replace(cfg, tau=0.02)) == ['tau: 0.01 → 0.02']
    assert cfg.method == ALIASES.get(old['method'], old['method']) and cfg.peft.family == METHODS[cfg.method].family


@pytest.mark.parametrize('name', sorted(OLD['peft_configs']))
def test_an_old_adapter_file_loads(name, tmp_path):
    old = OLD['peft_configs'][name]
    m = apply_peft(tiny(), peft_config_from_dict(upgrade_peft_dict(old)))
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
    assert c.method == 'st-adapter' and c.peft.family == 'st-adapter' and c.out_dir.endswith('_st-adapter')
    with pytest.warns(UserWarning, match="spelled 'frozen'"): assert config_from_params(method='zero-shot').method == 'frozen'
    with pytest.raises(ValueError, match="did you mean 'st-adapter'"): config_from_params(method='st-adaptor')
    with pytest.raises(ValueError, match="did you mean 'frozen'"): ExperimentConfig(method='zeroshot')


def test_parameters_route_to_the_fields_that_mean_them():
    c = config_from_params(method='lora', rank=4, scale='2.0')
    assert c.peft == LoRAConfig(rank=4, scale=2.0, blocks=(1, 4))
    with pytest.raises(ValueError, match="lora's scale is scale=0.5"): config_from_params(method='lora', alpha=0.5)
    with pytest.raises(ValueError, match="lora's rank is rank=16"): config_from_params(method='lora', dims=16)
    with pytest.raises(ValueError, match='scale'): config_from_params(method='adaptformer', scale=-1)
    c = config_from_params(method='msta', dims=16, alpha=0.05)
    assert c.peft == MSTAConfig(dims=16, alpha=0.05, blocks=(1, 4))
    with pytest.raises(ValueError, match="Unknown parameter 'lamda_cons': did you mean 'lambda_cons'"): config_from_params(lamda_cons=1.0)


def test_the_block_range_was_called_layers():
    "`blocks` was `layers`: saved configs with `layers` load, and passing the old name fails naming the new."
    assert peft_config_from_dict(upgrade_peft_dict(dict(method='msta', layers=[1, 12]))) == MSTAConfig(blocks=(1, 12))
    assert ExperimentConfig(peft=dict(method='msta', layers=[1, 4])).peft.blocks == (1, 4)
    assert config_from_params(blocks='[3, 4]').peft.blocks == (3, 4)
    with pytest.raises(ValueError, match="Unknown parameter 'layers': it is called 'blocks' now"): config_from_params(layers='[3, 4]')
    with pytest.raises(TypeError, match='layers= is called blocks= now'): apply_peft(tiny(), 'msta', layers=(1, 2))
