# %% [markdown]
# # Pre-training a tiny ViCLIP on the synthetic world
#
# > Video–caption contrastive pre-training (ViCLIP's objective) of a small ViCLIP on the synthetic world: the embedded default backbone, cached once per world and settings.
#
# MSTA adapts a *pre-trained* video-language model: what it transfers is what pre-training put there. The real backbone
# (ViCLIP-B/16, 10M InternVid clips) cannot be trained on a laptop, so the embedded default pre-trains a tiny ViCLIP on
# the synthetic world of `05_synthetic`: clips of a coloured shape that moves, each with a few captions in varied
# phrasing ("the blue square slides to the left", "a video of a blue square moving left", ...). Some compositions are
# held out of pre-training, so zero-shot accuracy on them measures real transfer, not memory.

# %% [markdown]
# The objective is ViCLIP's (and CLIP's): in a batch of B (clip, caption) pairs, each clip must pick its caption among
# the B captions and each caption its clip. With unit features $v_i$, $t_j$ and the learned temperature τ,
#
# $$\mathcal{L} = \tfrac12\Big(-\tfrac1B\sum_i \log \frac{e^{v_i\cdot t_i/\tau}}{\sum_j e^{v_i\cdot t_j/\tau}}
#   \;-\;\tfrac1B\sum_j \log \frac{e^{v_j\cdot t_j/\tau}}{\sum_i e^{v_i\cdot t_j/\tau}}\Big).$$
#
# Choices, and where they come from (the feasibility notes in `shared/design/SYNTHETIC_WORLD_NOTES.md` unless said):
#
# - **Model**: ViCLIP's architecture at width 128, 4 layers, 4 heads in both towers, 8×8 patches of 32×32 frames,
#   8 frames, and a **temporal patch size of 2** (`kernel_size=2`: each token spans two frames). The notes found the
#   temporal kernel mattered most: ~1.8× the steps per minute and motion learnt (34% → 99%). Context length 32 as
#   ViCLIP's (the captions need 15 tokens; the text tower drops padding columns, so the longer context is free and the
#   authors' long temporal descriptions are cut where ViCLIP would cut them). The full CLIP vocabulary (49,408 BPE
#   tokens) so the real tokenizer is used unchanged.
# - **Batches of distinct compositions** (no false negatives: two clips of "a red circle moving left" in one batch
#   would be pushed apart). The loss also takes ViCLIP's `idx` targets, which share the target between samples with the
#   same id, so a batch with repeats would still be right.
# - **Temperature**: ViCLIP learns τ directly and clamps it from below at `temp_min = 1/100` before every step
#   (`clip_contrastive_temperature`). ViCLIP starts from CLIP weights with τ = 0.01; from scratch we start at CLIP's
#   initial τ = 0.07 (our judgement: at 0.01 random features give huge logits).
# - **Optimiser**: AdamW, lr 1e-3 (the notes: better than 5e-4), β = (0.9, 0.98), warm-up then cosine — the
#   engine's loop, so pre-training gets its atomic checkpoints and exact resume.
# - **No spatial augmentation**: the world already randomises position, size, rotation, tint and noise, and a
#   horizontal flip would swap "left" and "right". Frames are drawn as in training elsewhere (TSN: one random frame in
#   each of 8 segments of the 16) and tested on segment centres.
#
# The result is an ordinary ViCLIP checkpoint (`{'model': state_dict}`, the official format) and a JSON beside it
# with its config, the loss curve and the zero-shot accuracies; `load_tiny` reads both back.

# %%
#| default_exp pretrain

# %%
#| export
from __future__ import annotations
import hashlib, json, math, time, warnings
from dataclasses import dataclass, asdict, fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from msta_core.core import atomic_torch_save, atomic_write_json, cache_dir, default_device, seed_everything
from msta_core.viclip import ViCLIP, ViCLIPConfig, get_config, load_viclip
from msta_core.tokenizer import tokenize
from msta_core.datasets import VideoSplit
from msta_core.video import VideoReadError, read_clip, tsn_indices
from msta_core.loader import VideoDataset, check_skipped
from msta_core.engine import TrainConfig, Dist, fit, environment_info
from msta_core.evaluate import evaluate_dataset
from msta_core.classifier import VideoTextClassifier
from msta_core.synthetic import WorldInfo, generate_world, composition_classes

# %% [markdown]
# ## The model and the settings

# %%
#| export
TINY_VICLIP = get_config('b16', input_resolution=32, patch_size=8, vision_width=128, vision_layers=4, vision_heads=4,
                         num_frames=8, kernel_size=2, embed_dim=128, context_length=32, text_width=128,
                         text_heads=4, text_layers=4, temp=0.07)

@dataclass(frozen=True)
class PretrainConfig:
    "How the tiny ViCLIP is pre-trained (defaults: about 4–5 minutes on 2 CPU cores)."
    steps: int = 480               # optimiser steps (a step budget, not a time budget: a seed gives one model)
    batch_size: int = 64           # clip–caption pairs per step, all of different compositions
    lr: float = 1e-3
    warmup_steps: int = 40
    weight_decay: float = 0.05
    temp_min: float = 0.01         # ViCLIP: τ is clamped to at least 1/100 before each step
    seed: int = 0                  # initial weights, batches and frames
    log_every: int = 40            # steps per point of the loss curve (and per checkpoint)

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 2 or self.log_every < 1:
            raise ValueError(f"need steps >= 1, batch_size >= 2 and log_every >= 1; got {self}")

def chunk_steps(steps: int, log_every: int) -> int:
    "Steps per logged chunk: the largest divisor of `steps` not above `log_every` (so the run is exactly `steps`)."
    return max(d for d in range(1, min(steps, log_every) + 1) if steps % d == 0)

# %%
assert TINY_VICLIP.time_steps == 4 and TINY_VICLIP.grid == 4       # 4 × 4 patches × 4 time steps = 64 tokens + [CLS]
assert chunk_steps(480, 40) == 40 and chunk_steps(5, 40) == 5 and chunk_steps(7, 3) == 1 and chunk_steps(500, 40) == 25
m = ViCLIP(TINY_VICLIP)
n_params = sum(p.numel() for p in m.parameters())
n_embed = m.text_encoder.token_embedding.weight.numel()
print(f"{n_params / 1e6:.2f}M parameters, {n_embed / 1e6:.2f}M of them the token embedding")
assert n_embed == 49408 * 128 and n_params - n_embed < 2e6

# %% [markdown]
# ## The loss: ViCLIP's video–text contrastive term
#
# `vtc_loss` follows ViCLIP's `vtc_loss`: the target of row $i$ is uniform over the samples sharing its `idx`
# (just the diagonal when the ids are distinct), and the two directions are averaged.

# %%
#| export
def vtc_loss(video_features: torch.Tensor, text_features: torch.Tensor, temp: torch.Tensor | float,
             idx: torch.Tensor | None = None) -> torch.Tensor:
    "Symmetric InfoNCE of paired features `[B, D]`; samples with equal `idx` count as positives of each other."
    v, t = F.normalize(video_features, dim=-1), F.normalize(text_features, dim=-1)
    sim = v @ t.T / temp                                                     # [B, B]: clip i vs caption j
    if idx is None: idx = torch.arange(len(sim), device=sim.device)
    pos = (idx[:, None] == idx[None, :]).float()
    targets = pos / pos.sum(1, keepdim=True)
    v2t = -(F.log_softmax(sim, dim=1) * targets).sum(1).mean()
    t2v = -(F.log_softmax(sim.T, dim=1) * targets).sum(1).mean()
    return (v2t + t2v) / 2

# %%
torch.manual_seed(0)
v, t = torch.randn(6, 8), torch.randn(6, 8)
logits = F.normalize(v, dim=-1) @ F.normalize(t, dim=-1).T / 0.07
clip_loss = (F.cross_entropy(logits, torch.arange(6)) + F.cross_entropy(logits.T, torch.arange(6))) / 2
assert torch.allclose(vtc_loss(v, t, 0.07), clip_loss)                          # distinct ids: CLIP's loss
assert torch.allclose(vtc_loss(v, t, 0.07, torch.tensor([3, 1, 4, 5, 9, 2])), clip_loss)
# a repeated id: clip 0's target is split between captions 0 and 1
idx = torch.tensor([7, 7, 1, 2, 3, 4])
manual = -(logits.log_softmax(1)[0, :2].mean())
assert not torch.allclose(vtc_loss(v, t, 0.07, idx), clip_loss)
row0 = -(F.log_softmax(logits, 1) * (idx[:, None] == idx).float() / (idx[:, None] == idx).float().sum(1, keepdim=True)).sum(1)[0]
assert torch.allclose(row0, manual)
assert vtc_loss(v, v, 0.01) < vtc_loss(v, t, 0.01)                              # aligned pairs: lower loss

# %% [markdown]
# ## The data: every pre-training clip in memory, batches of distinct compositions
#
# The pre-training split is small (2,304 clips of 16 frames of 32², 113 MB as uint8), and one batch touches 64 of
# them, so the clips are decoded **once** into a uint8 tensor. A video that cannot be read is skipped and counted
# (as everywhere in the project); if more than half are unreadable the root is wrong, and that is an error.

# %%
#| export
class _WholeClips(Dataset):
    "Every frame of every video of a split (uint8 `[F, 3, H, W]`), or the path of a video that cannot be read."
    def __init__(self, split: VideoSplit): self.split = split
    def __len__(self): return len(self.split)
    def __getitem__(self, i):
        path, _ = self.split[i]
        try: return i, read_clip(path, lambda n: range(n)), ''
        except VideoReadError as e: return i, None, str(e.path)

def load_clips(split: VideoSplit, num_workers: int = 2, max_bad_fraction: float = 0.5,
               progress: bool = False) -> tuple[torch.Tensor, list[int]]:
    "Decode every frame of every video of `split`: (uint8 clips `[N, F, 3, H, W]`, their sample indices)."
    loader = DataLoader(_WholeClips(split), batch_size=32, num_workers=num_workers, collate_fn=list)
    if progress:
        from tqdm.auto import tqdm
        loader = tqdm(loader, desc='decoding pre-training clips', unit='batch', leave=False)
    clips, kept, bad = None, [], []
    for batch in loader:
        for i, clip, err in batch:
            if clip is None: bad.append(err); continue
            if clips is None: clips = torch.empty(len(split), *clip.shape, dtype=torch.uint8)
            if clip.shape != clips.shape[1:]:
                raise ValueError(f"{split[i][0]}: frames {tuple(clip.shape)}, but the first video has {tuple(clips.shape[1:])}; "
                                 f"pre-training expects clips of one size (the synthetic world's)")
            clips[len(kept)] = clip; kept.append(i)          # copied: no handle on the workers' shared memory is kept
    check_skipped(bad, len(split), max_bad_fraction, 'pre-training set')
    if clips is None: raise ValueError(f"no readable video in the split under {split.root}")
    return clips[:len(kept)], kept

# %% [markdown]
# A `CaptionBatches` item is a whole batch. Item `(i, seed)` — the key the engine's sampler gives — draws, from
# `seed` alone: `batch_size` different compositions, one clip of each, one of that clip's captions, and TSN frames.
# So the engine's loop (one item per step) trains on batches that are new every step yet reproducible for a seed,
# and its exact resume works unchanged.

# %%
#| export
class CaptionBatches(Dataset):
    "`length` items per epoch; item `(i, seed)` is a batch of clips of distinct compositions with one caption each."
    def __init__(self, clips: torch.Tensor, labels: list[int], captions: list[list[str]], batch_size: int,
                 length: int, config: ViCLIPConfig):
        self.clips, self.batch_size, self.length, self.config = clips, batch_size, length, config
        self.labels = torch.as_tensor(labels)
        self.tokens = tokenize([c for cs in captions for c in cs], context_length=config.context_length)
        n = torch.tensor([len(cs) for cs in captions])
        if (n == 0).any(): raise ValueError("every pre-training clip needs at least one caption")
        self.first_caption, self.n_captions = n.cumsum(0) - n, n
        self.by_class = [torch.nonzero(self.labels == c).flatten() for c in self.labels.unique().tolist()]
        if batch_size > len(self.by_class):
            raise ValueError(f"batch_size={batch_size} is more than the {len(self.by_class)} compositions with "
                             f"pre-training clips: a batch could not hold distinct compositions; lower batch_size")
        self.mean = torch.tensor(config.mean).view(1, 1, 3, 1, 1)
        self.std = torch.tensor(config.std).view(1, 1, 3, 1, 1)

    def __len__(self): return self.length

    def __getitem__(self, key) -> dict:
        _, seed = key if isinstance(key, tuple) else (key, key)
        g = torch.Generator().manual_seed(seed)
        B, T = self.batch_size, self.config.num_frames
        comps = torch.randperm(len(self.by_class), generator=g)[:B]                     # distinct compositions
        vids = torch.stack([self.by_class[c][torch.randint(len(self.by_class[c]), (), generator=g)] for c in comps.tolist()])
        caps = self.first_caption[vids] + (torch.rand(B, generator=g) * self.n_captions[vids]).long()
        frames = torch.stack([tsn_indices(self.clips.shape[1], T, g) for _ in range(B)])   # [B, T]
        video = self.clips[vids[:, None], frames].float().div_(255)                      # [B, T, 3, H, W]
        return {'video': (video - self.mean) / self.std, 'text': self.tokens[caps], 'label': self.labels[vids]}

def first_item(items): return items[0]   # the engine's loader wraps each item (a whole batch) in a list of one

# %% [markdown]
# ## The module the engine trains

# %%
#| export
class ContrastivePretrainer(nn.Module):
    "ViCLIP under its pre-training objective: `forward(batch)` → `{'loss', 'acc', 'temp'}`."
    def __init__(self, model: ViCLIP, temp_min: float = 0.01):
        super().__init__()
        self.model, self.temp_min = model, temp_min

    def forward(self, batch: dict) -> dict:
        with torch.no_grad(): self.model.temp.clamp_(min=self.temp_min)          # ViCLIP's clip_contrastive_temperature
        v = self.model.encode_video(batch['video'])
        t = self.model.encode_text(batch['text'])
        loss = vtc_loss(v, t, self.model.temp, batch['label'])
        with torch.no_grad():
            acc = ((F.normalize(v, dim=-1) @ F.normalize(t, dim=-1).T).argmax(1) == torch.arange(len(v), device=v.device)).float().mean()
        return {'loss': loss, 'acc': acc, 'temp': self.model.temp.detach()}

# %% [markdown]
# ### A tiny world for the tests
#
# One pre-training clip per composition, one test clip per composition and a handful of action clips: a couple of
# seconds to generate. With a smaller model, one batch is learnt in a few steps.

# %%
import tempfile
from msta_core.synthetic import generate_world
tmp = Path(tempfile.mkdtemp())
TINY_WORLD = dict(videos_per_class=2, pretrain_per_class=1, test_per_class=1, shots=(1, 2), base_shots=2, descriptions=(2,))
world = generate_world(tmp / 'world', seed=0, workers=2, **TINY_WORLD)
small = get_config(TINY_VICLIP, vision_width=32, vision_layers=1, vision_heads=2, text_width=32, text_layers=1, text_heads=2,
                   embed_dim=32)
split = world.split('pretrain')
clips, kept = load_clips(split, num_workers=0)
assert clips.dtype == torch.uint8 and clips.shape == (72, 16, 3, 32, 32) and kept == list(range(72))
# an unreadable video is skipped, named and counted; a split of mostly unreadable videos is an error
import warnings
from msta_core.datasets import Sample
from msta_core.loader import TooManyBrokenVideos
(tmp / 'broken.mp4').write_bytes(b'not a video')
bad = VideoSplit(split.root, split.samples[:3] + [Sample(str(tmp / 'broken.mp4'), 0)], split.classnames)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter('always')
    c3, k3 = load_clips(bad, num_workers=0)
assert k3 == [0, 1, 2] and torch.equal(c3, clips[:3]) and any('broken.mp4' in str(x.message) for x in w)
(tmp / 'empty.mp4').write_bytes(b'')
try: load_clips(VideoSplit(split.root, [Sample(str(tmp / f), 0) for f in ('broken.mp4', 'empty.mp4')], split.classnames), num_workers=0)
except TooManyBrokenVideos: pass
else: raise AssertionError('a split of unreadable videos must fail')

# %%
caps = json.loads((world.root / 'captions/pretrain_captions.json').read_text())
ds = CaptionBatches(clips, [split.samples[i].label for i in kept], [caps[split.samples[i].path] for i in kept], 16, 10, small)
b = ds[(3, 1234)]
assert b['video'].shape == (16, 8, 3, 32, 32) and b['text'].shape == (16, 32) and b['label'].unique().numel() == 16
assert all(torch.equal(b[k], ds[(0, 1234)][k]) for k in b)                      # the seed decides the batch
assert not torch.equal(b['label'], ds[(3, 99)]['label'])
# each caption belongs to its clip's composition: the caption names the colour and shape of the label
names = split.classnames
from msta_core.tokenizer import default_tokenizer
for lab, tok in zip(b['label'][:4].tolist(), b['text'][:4]):
    text = default_tokenizer().decode([x for x in tok.tolist() if x]).lower()
    colour, shape = names[lab].split()[1:3]
    assert colour in text and shape in text, (names[lab], text)

# %%
# the objective learns: a fixed batch of 16 is matched after a few dozen steps
seed_everything(0)
pre = ContrastivePretrainer(ViCLIP(small))
opt = torch.optim.AdamW(pre.parameters(), lr=2e-3)
losses = []
for step in range(30):
    out = pre(b); opt.zero_grad(); out['loss'].backward(); opt.step(); losses.append(out['loss'].item())
assert losses[-1] < 0.5 * losses[0] and out['acc'] > 0.5, (losses[0], losses[-1], out['acc'])
assert pre.model.temp.item() >= 0.01

# %% [markdown]
# ## Zero-shot evaluation
#
# The world's zero-shot test has 8 clips of each of the 96 compositions; `zeroshot_seen` holds the 72 compositions
# that were pre-trained, `zeroshot_unseen` the held-out ones. Each is a **96-way** classification against all
# composition names (so a held-out clip competes with every seen name; chance is 1/96). The prompt is the class name
# itself, "a red circle moving left", the plainest caption phrasing. As the notes warn, held-out triples can be
# partly solved from two factors, so the accuracy of each factor (shape, colour, motion) of the predicted name is
# reported too.

# %%
#| export
@torch.no_grad()
def zero_shot(model: ViCLIP, world: WorldInfo, splits=('zeroshot_seen', 'zeroshot_unseen'), template: str = '{}',
              batch_size: int = 64, num_workers: int = 2, progress: bool = False) -> dict:
    "Zero-shot top-1/top-5 and per-factor accuracy (%) of `model` on the world's composition splits, with chance."
    model.eval()
    c, dev = model.config, next(model.parameters()).device
    comps = composition_classes()
    out = {}
    for name in splits:
        split = world.split(name)
        ds = VideoDataset(split, num_frames=c.num_frames, size=c.input_resolution, mean=c.mean, std=c.std, mode='test')
        predict = VideoTextClassifier(model, split.classnames, template=template, tau=float(model.temp)).predictor()
        r = evaluate_dataset(predict, ds, batch_size=batch_size, num_workers=num_workers, d=Dist(device=dev),
                             progress=progress, desc=f'zero-shot {name}')
        ok = r['labels'] >= 0
        pred, true = r['probs'][ok].argmax(1).tolist(), r['labels'][ok].tolist()
        factors = {f: 100 * sum(comps[p][k] == comps[y][k] for p, y in zip(pred, true)) / max(len(true), 1)
                   for k, f in enumerate(('shape', 'colour', 'motion'))}
        out[name] = {'top1': r['top1'], 'top5': r['top5'], 'mean_class_acc': r['mean_class_acc'], **factors,
                     'n': r['n'], 'classes': len(split.classnames), 'chance': 100 / len(split.classnames),
                     'skipped': r['skipped']}
    return out

# %% [markdown]
# ## Pre-train, save, load

# %%
#| export
PRETRAIN_VERSION = 1      # bump when a change to this module changes the trained weights

def open_world(world: WorldInfo | str | Path) -> WorldInfo:
    "A `WorldInfo`, or the synthetic world generated in folder `world` (read from its `world.json`)."
    if isinstance(world, WorldInfo): return world
    root = Path(world); manifest = root / 'world.json'
    if not manifest.exists():
        raise FileNotFoundError(f"{root} holds no synthetic world (no world.json): make one with "
                                f"msta_core.synthetic.generate_world({str(root)!r}) or python data_prep/make_synthetic.py {root}")
    cfg = json.loads(manifest.read_text())['config']
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items() if k != 'version'}
    return generate_world(root, **cfg)          # finds the world as it is (finishes it if files are missing)

def pretrain_key(world: WorldInfo, config: PretrainConfig, viclip: ViCLIPConfig) -> str:
    "What determines the weights: the world's videos and captions, the settings, the model and this code's version."
    what = {'version': PRETRAIN_VERSION, 'world': world.videos_digest, 'world_config': asdict(world.config),
            'heldout': world.heldout, 'pretrain': asdict(config), 'viclip': asdict(viclip)}
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()

def _config_of(config: PretrainConfig | None, overrides: dict) -> PretrainConfig:
    names = {f.name for f in fields(PretrainConfig)}
    if unknown := sorted(set(overrides) - names):
        raise TypeError(f"unknown pre-training setting(s) {unknown}; PretrainConfig has {sorted(names)}")
    return replace(config or PretrainConfig(), **overrides)

# %% [markdown]
# `pretrain_tiny` is one function from a world to a checkpoint file: decode the pre-training clips, build the model
# from `seed`, train with the engine (its `out_dir` gets `last.pt`, `metrics.jsonl` and `run_info.json`; an
# interrupted run resumes where it stopped), save the weights atomically in ViCLIP's format, and evaluate zero-shot.
# The engine's "epochs" here are chunks of `log_every` steps: each gives one point of the loss curve and a checkpoint.

# %%
#| export
CHECKPOINT_NAME = 'viclip_tiny.pth'

def pretrain_tiny(world: WorldInfo | str | Path, out_dir, config: PretrainConfig | None = None, *,
                  viclip: ViCLIPConfig = TINY_VICLIP, evaluate: bool = True, num_workers: int = 2,
                  progress: bool = True, keep_last: bool = False, **overrides) -> Path:
    "Pre-train a tiny ViCLIP on `world`'s captioned clips; write `out_dir/viclip_tiny.pth` (+ `.json`), return its path."
    world, config = open_world(world), _config_of(config, overrides)
    out_dir = Path(out_dir); out_dir.mkdir(parents=True, exist_ok=True)
    ckpt, info_path = out_dir / CHECKPOINT_NAME, (out_dir / CHECKPOINT_NAME).with_suffix('.json')
    key = pretrain_key(world, config, viclip)
    if ckpt.exists() and info_path.exists() and json.loads(info_path.read_text()).get('key') == key: return ckpt
    started = out_dir / 'pretrain_started.json'
    if (out_dir / 'last.pt').exists() and (not started.exists() or json.loads(started.read_text()).get('key') != key):
        raise FileExistsError(f"{out_dir} holds another pre-training run (other world or settings): choose an empty "
                              f"out_dir, or delete {out_dir / 'last.pt'} to start again")
    atomic_write_json(started, {'key': key, 'pretrain': asdict(config)})
    t0 = time.time()
    split = world.split('pretrain')
    clips, kept = load_clips(split, num_workers=num_workers, progress=progress)
    captions = json.loads((world.root / 'captions/pretrain_captions.json').read_text())
    missing = [split.samples[i].path for i in kept if split.samples[i].path not in captions]
    if missing: raise KeyError(f"{world.root / 'captions/pretrain_captions.json'} has no captions for {missing[:3]}; regenerate the world")
    chunk = chunk_steps(config.steps, config.log_every)
    data = CaptionBatches(clips, [split.samples[i].label for i in kept], [captions[split.samples[i].path] for i in kept],
                          config.batch_size, chunk, viclip)
    seed_everything(config.seed)
    model = ViCLIP(viclip)
    train = TrainConfig(epochs=config.steps // chunk, lr=config.lr, warmup_epochs=config.warmup_steps / chunk,
                        weight_decay=config.weight_decay, batch_size=1, micro_batch=1, seed=config.seed, num_workers=0,
                        save_every=0, amp='off')
    t1 = time.time()
    history = fit(ContrastivePretrainer(model, config.temp_min), data, train, out_dir, collate_fn=first_item,
                  config_to_save={'pretrain': config, 'viclip': viclip, 'key': key}, progress=progress,
                  d=Dist(device=default_device()))          # one process, even under torchrun
    t2 = time.time()
    atomic_torch_save({'model': model.state_dict()}, ckpt)
    curve = [{'step': h['step'], 'lr': h['lr'], 'loss': h['train_loss'], 'acc': h['train_acc'], 'temp': h['train_temp']}
             for h in history]
    results = zero_shot(model, world, num_workers=num_workers, progress=progress) if evaluate else {}
    atomic_write_json(info_path, {
        'checkpoint': CHECKPOINT_NAME, 'key': key, 'viclip_config': asdict(viclip), 'pretrain': asdict(config),
        'world': {'root': str(world.root), 'videos_digest': world.videos_digest, 'config': asdict(world.config),
                  'heldout': world.heldout, 'pretrain_clips': len(kept), 'skipped': len(split) - len(kept)},
        'loss_curve': curve, 'zero_shot': results,
        'seconds': {'decode': round(t1 - t0, 2), 'train': round(t2 - t1, 2), 'zero_shot': round(time.time() - t2, 2)},
        'torch_threads': torch.get_num_threads(), 'env': environment_info()})
    if not keep_last: (out_dir / 'last.pt').unlink(missing_ok=True)      # optimiser state: only needed to resume
    return ckpt

def read_info(path) -> dict:
    "The JSON written beside a tiny checkpoint (config, loss curve, zero-shot results)."
    info_path = Path(path).with_suffix('.json')
    if not info_path.exists():
        raise FileNotFoundError(f"{info_path} not found: a tiny ViCLIP checkpoint needs the JSON `pretrain_tiny` writes "
                                f"beside it (its model config); for an official ViCLIP checkpoint use load_viclip")
    return json.loads(info_path.read_text())

def load_tiny(path) -> ViCLIP:
    "The tiny ViCLIP saved by `pretrain_tiny` (config from the JSON beside it), in eval mode."
    c = read_info(path)['viclip_config']
    cfg = ViCLIPConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in c.items()})
    return load_viclip(path, cfg)

# %% [markdown]
# ## The cache
#
# `ensure_pretrained` is what the experiment notebook calls: the checkpoint for this world and these settings from
# the cache (`$MSTA_CACHE`, default `~/.cache/msta`, under `pretrained/`), trained on first use. The folder name
# carries the key (a hash of the world's video digest, the settings, the model config and `PRETRAIN_VERSION`), so a
# changed world or setting trains a new model and never returns a stale one.

# %%
#| export
def ensure_pretrained(world: WorldInfo | str | Path, cache: str | Path | None = None,
                      config: PretrainConfig | None = None, *, viclip: ViCLIPConfig = TINY_VICLIP,
                      progress: bool = True, **overrides) -> Path:
    "The cached tiny ViCLIP for `world` and these settings (`cache`: default `cache_dir()/'pretrained'`), trained if missing."
    world, config = open_world(world), _config_of(config, overrides)
    key = pretrain_key(world, config, viclip)
    out_dir = Path(cache) if cache is not None else cache_dir() / 'pretrained'
    out_dir = out_dir / f'viclip_tiny_{key[:16]}'
    ckpt = out_dir / CHECKPOINT_NAME
    if ckpt.exists() and ckpt.with_suffix('.json').exists() and read_info(ckpt).get('key') == key: return ckpt
    if progress: print(f"pre-training the tiny ViCLIP on {world.root} ({config.steps} steps) -> {out_dir}")
    return pretrain_tiny(world, out_dir, config, viclip=viclip, progress=progress)

# %% [markdown]
# ### A short run end to end
#
# Three steps on the tiny world, then: the checkpoint is in ViCLIP's format and loads back into the same model
# (its zero-shot numbers are reproduced exactly), and the second `ensure_pretrained` call returns the cache untouched.

# %%
cache = tmp / 'cache'
path = ensure_pretrained(world, cache, viclip=small, steps=3, batch_size=16, log_every=1, progress=False)
info = read_info(path)
assert path.name == CHECKPOINT_NAME and path.parent.name == f"viclip_tiny_{info['key'][:16]}"
assert [r['step'] for r in info['loss_curve']] == [1, 2, 3] and not (path.parent / 'last.pt').exists()
sd = torch.load(path, map_location='cpu', weights_only=True)
assert set(sd) == {'model'} and set(sd['model']) == set(ViCLIP(small).state_dict())      # the official layout
m = load_tiny(path)
assert m.config == small and not m.training
zs = info['zero_shot']
assert zs['zeroshot_seen']['n'] == 72 and zs['zeroshot_unseen']['n'] == 24 and zs['zeroshot_seen']['classes'] == 96
again = zero_shot(m, world, num_workers=0)
assert all(again[s][k] == zs[s][k] for s in zs for k in ('top1', 'top5', 'shape', 'colour', 'motion'))
stamp = path.stat().st_mtime_ns, path.stat().st_ino
assert ensure_pretrained(world.root, cache, viclip=small, steps=3, batch_size=16, log_every=1, progress=False) == path
assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp                            # not trained again

# %%
# other settings: another key, another folder; bad settings: clear errors
assert pretrain_key(world, PretrainConfig(steps=4), small) != pretrain_key(world, PretrainConfig(steps=3), small)
try: ensure_pretrained(world, cache, viclip=small, step=3)
except TypeError as e: assert 'step' in str(e) and 'steps' in str(e)
else: raise AssertionError('a misspelt setting must fail')
try: pretrain_tiny(world, tmp / 'x', viclip=small, batch_size=80, steps=1, progress=False)
except ValueError as e: assert 'batch_size=80' in str(e)
else: raise AssertionError('more compositions per batch than exist must fail')
try: open_world(tmp)
except FileNotFoundError as e: assert 'world.json' in str(e)
else: raise AssertionError

# %%
#| hide
import shutil
shutil.rmtree(tmp, ignore_errors=True)
