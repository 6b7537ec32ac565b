# %% [markdown]
# # Pre-train the tiny ViCLIP on the synthetic world
#
# The experiment behind the embedded default backbone (`msta_core.pretrain`, notebook `15_pretrain`): contrastive
# video–caption pre-training of a small ViCLIP on the synthetic world, then zero-shot classification of the
# compositions it saw and of those held out of pre-training. Run it as is (the default world and settings; the model
# goes to the cache `$MSTA_CACHE`, default `~/.cache/msta`, where `train.ipynb` finds it), or with papermill:
#
# ```bash
# papermill nbs/pretrain.ipynb runs/pretrain_seed1.ipynb -p seed 1 -p out_dir runs/pretrain_seed1
# ```
#
# With `out_dir` the model is trained into that folder (resuming an interrupted run); without it, the cached model
# for these settings is used if there is one.

# %% tags=["parameters"]
world_root = None      # a synthetic world folder; None: the default world in the cache (generated on first use)
world_seed = 0         # seed of the default world (ignored with world_root)
out_dir = None         # None: the cache; else train into this folder
steps = 480            # optimiser steps (the default: about 4-5 minutes on 2 CPU cores)
seed = 0               # initial weights, batches and frames
batch_size = 64        # clip-caption pairs per step, each of a different composition
lr = 1e-3
log_every = 40         # steps per point of the loss curve (and per checkpoint)
num_workers = 2        # decoding processes

# %%
import json, time
from pathlib import Path
import torch
import pandas as pd
import matplotlib.pyplot as plt
from msta_core.core import cache_dir
from msta_core.synthetic import generate_world
from msta_core.pretrain import PretrainConfig, ensure_pretrained, pretrain_tiny, open_world, read_info

print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
t0 = time.time()
world = generate_world(cache_dir() / 'synthetic_world', seed=world_seed) if world_root is None else open_world(world_root)
print(f"world: {world.root} ({world.n_videos} videos, made in {world.seconds:.1f}s; 0 = found ready)")

# %%
config = PretrainConfig(steps=steps, seed=seed, batch_size=batch_size, lr=lr, log_every=log_every)
t1 = time.time()
path = (ensure_pretrained(world, config=config) if out_dir is None
        else pretrain_tiny(world, out_dir, config, num_workers=num_workers))
print(f"checkpoint: {path} ({time.time() - t1:.1f}s here, {time.time() - t0:.1f}s with the world)")
info = read_info(path)
print('seconds of the run that trained it:', info['seconds'])

# %% [markdown]
# ## The loss curve
#
# Each point is the mean over `log_every` steps of the contrastive loss, of the in-batch clip→caption accuracy
# (chance: 1 / batch size) and of the learned temperature τ. The loss starts near ln(batch size).

# %%
curve = pd.DataFrame(info['loss_curve'])
print(curve.to_string(index=False, float_format=lambda x: f'{x:.4g}'))
fig, ax = plt.subplots(1, 3, figsize=(12, 3))
for a, k in zip(ax, ('loss', 'acc', 'temp')):
    a.plot(curve['step'], curve[k], marker='o'); a.set_xlabel('step'); a.set_title(k)
ax[0].axhline(torch.tensor(float(config.batch_size)).log().item(), ls=':', c='grey')   # ln B: a random model
plt.tight_layout(); plt.show()

# %% [markdown]
# ## Zero-shot
#
# 96-way classification of every composition's test clips against all 96 names; `seen` are compositions that were in
# pre-training (other clips of them), `unseen` the held-out ones. `shape`, `colour`, `motion`: how often that factor
# of the predicted name is right.

# %%
zs = pd.DataFrame(info['zero_shot']).T[['top1', 'top5', 'chance', 'shape', 'colour', 'motion', 'n', 'classes']]
print(zs.to_string(float_format=lambda x: f'{x:.1f}'))
