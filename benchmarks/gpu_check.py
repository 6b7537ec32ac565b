"""The GPU check: one script, one table, under 10 minutes on a GPU machine.

    python benchmarks/gpu_check.py                    # a GPU machine: ViCLIP-B/16, everything that applies
    python benchmarks/gpu_check.py --quick            # tiny settings, any machine (CI runs it on the CPU)
    python benchmarks/gpu_check.py --checkpoint ViClip-InternVid-10M-FLT.pth   # logits of the real model

Rows of the table (clips/s = clips of 8 frames at 224² per second; peak = `torch.cuda.max_memory_allocated`,
or the process's peak RSS on a CPU):
  forward      ViCLIP video forward (inference, no graph), in fp32, TF32 and bf16 autocast
  msta 8-12    one MSTA + consistency training step, blocks 8–12 of both towers, d = 128 (the authors' runs):
               forward, backward, AdamW; 101 class prompts through the trainable text blocks
  msta 1-12    the same with MSTA in all 12 blocks, d = 256 (Table 1's base-to-novel setting)
  logits       how far bf16 (and TF32) move the logits (max |Δ| over a batch × classes, logits = cosine / τ):
               "forward Δ" scores the same weights in that precision and in fp32; "trained Δ" trains the same
               start a few MSTA steps in that precision and in fp32 and scores both in fp32; beside them, how far
               those fp32 steps moved the logits (the training signal the rounding competes with)
  loader       the training data path (decode + augment, `VideoDataset` in a DataLoader with all the machine's
               cores as workers, each batch moved to the device) on the synthetic world re-encoded at 320×240, against
               the fastest training step; then with `augment_on='device'` (the workers decode and crop, `BatchAugment`
               flips, jitters and normalises each batch on the device), with the largest difference between its
               output on the device and on the CPU for the same clips and seeds
  nccl         two processes (NCCL, one GPU each) against one process, a few MSTA steps with the same global
               batch: the largest weight difference (only with two or more GPUs; `--gloo` runs it on a CPU)

With --quick everything is tiny (the 2-block tiny ViCLIP, 32² inputs, a few steps); on a CPU, TF32 and NCCL do not
apply and are marked so. The numbers printed are this machine's; nothing is compared against stored figures.
"""
import argparse, json, math, os, resource, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path

try:
    import msta_core  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
import torch.nn.functional as F

from msta_core.viclip import ViCLIP, get_config
from msta_core.weights import load_viclip
from msta_core.peft import apply_peft
import msta_core.msta, msta_core.baselines
from msta_core.classifier import VideoTextClassifier
from msta_core.losses import FrozenTextTargets
from msta_core.engine import TrainConfig, build_optimizer, set_tf32

PRECISIONS = ('fp32', 'tf32', 'bf16')


# ---------------------------------------------------------------- settings
def settings(a) -> dict:
    "What to build and how much to run, for the full check or `--quick`."
    if a.quick:
        return dict(config='tiny', forward_batch=4, train_batch=2, classes=11, steps=1, warmup=1, logit_steps=2,
                    world=dict(videos_per_class=1, pretrain_per_class=1, test_per_class=1, shots=(1,), base_shots=1,
                               descriptions=(2,)), videos=12, frames=32, size=(320, 240), load_size=32, workers=2,
                    loader_clips=24)
    return dict(config='b16', forward_batch=a.batch * 2, train_batch=a.batch, classes=101, steps=10, warmup=2,
                logit_steps=5, world=dict(videos_per_class=4, pretrain_per_class=1, test_per_class=1, shots=(2,),
                                          base_shots=2, descriptions=(2,)),
                videos=160, frames=96, size=(320, 240), load_size=224, workers=os.cpu_count() or 1, loader_clips=640)


def msta_blocks(depth: int, full: bool) -> tuple:
    "Blocks 8–12 of 12 (the top five) or all; on a shallower model, its top block or all."
    if full: return (1, depth)
    return (8, 12) if depth == 12 else (depth, depth)


class Precision:
    "fp32 (TF32 off), TF32 (matmuls and convolutions), or bf16 autocast (TF32 off) — on CUDA; the CPU has fp32 and bf16."
    def __init__(self, name, device):
        self.name, self.device = name, device
    def applies(self) -> bool:
        return not (self.name == 'tf32' and self.device.type != 'cuda')
    def __enter__(self):
        if self.device.type == 'cuda': set_tf32(self.name == 'tf32')
        self.ac = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.name == 'bf16' else None
        if self.ac: self.ac.__enter__()
        return self
    def __exit__(self, *exc):
        if self.ac: self.ac.__exit__(*exc)
        if self.device.type == 'cuda': set_tf32(False)


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize()


def reset_peak(device):
    if device.type == 'cuda': torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()


def peak_mib(device) -> float:
    if device.type == 'cuda': return torch.cuda.max_memory_allocated() / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # the process's peak so far


def backbone(s, a, device):
    "The ViCLIP under test: random weights (speed does not depend on them), or an official checkpoint."
    torch.manual_seed(0)
    if a.checkpoint and not a.quick: return load_viclip(a.checkpoint, 'b16', num_frames=8).to(device)
    return ViCLIP(get_config(s['config'])).to(device)


def classifier(s, a, device, blocks, dims, seed=0):
    "MSTA + consistency on a fresh backbone, with fixed random consistency targets (the frozen branch's stand-in)."
    model = backbone(s, a, device)
    torch.manual_seed(seed)
    D = model.config.embed_dim
    targets = FrozenTextTargets(F.normalize(torch.randn(s['classes'], D), dim=-1), F.normalize(torch.randn(s['classes'], D), dim=-1))
    apply_peft(model, method='msta', dims=dims, blocks=blocks, dropout=0.0)
    names = [f'action number {i}' for i in range(s['classes'])]
    return VideoTextClassifier(model, names, targets=targets).to(device)


def clips(s, model_cfg, n, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, model_cfg.num_frames, 3, model_cfg.input_resolution, model_cfg.input_resolution, generator=g)
    return x.to(device), torch.randint(0, s['classes'], (n,), generator=g).to(device)


def timed(fn, steps, warmup, device) -> float:
    "Seconds per call: `warmup` calls, then the mean of `steps`."
    for _ in range(warmup): fn()
    sync(device); t0 = time.perf_counter()
    for _ in range(steps): fn()
    sync(device)
    return (time.perf_counter() - t0) / steps


# ---------------------------------------------------------------- throughput and memory
def bench_forward(s, a, device, prec):
    model = backbone(s, a, device).eval().requires_grad_(False)
    x, _ = clips(s, model.config, s['forward_batch'], device)
    reset_peak(device)
    with Precision(prec, device), torch.no_grad():
        sec = timed(lambda: model.encode_video(x), s['steps'], s['warmup'], device)
    return {'clips_s': s['forward_batch'] / sec, 'peak_mib': peak_mib(device)}


def bench_train(s, a, device, prec, full):
    depth = get_config(s['config']).vision_layers
    dims = 16 if s['config'] == 'tiny' else (256 if full else 128)
    clf = classifier(s, a, device, msta_blocks(depth, full), dims).train()
    opt = build_optimizer(clf, TrainConfig())
    x, y = clips(s, clf.model.config, s['train_batch'], device)
    batch = {'video': x, 'label': y}
    def step():
        opt.zero_grad(set_to_none=True)
        with Precision(prec, device): loss = clf(batch)['loss']
        loss.backward(); opt.step()
    reset_peak(device)
    sec = timed(step, s['steps'], s['warmup'], device)
    return {'clips_s': s['train_batch'] / sec, 'peak_mib': peak_mib(device),
            'trainable': sum(p.numel() for p in clf.parameters() if p.requires_grad)}


# ---------------------------------------------------------------- numerics
def logits_check(s, a, device) -> dict:
    "Max |Δ logit| of bf16/TF32 against fp32: same weights; and after the same MSTA steps from the same start."
    depth = get_config(s['config']).vision_layers
    dims = 16 if s['config'] == 'tiny' else 128
    x, y = clips(s, get_config(s['config']), s['train_batch'], device, seed=1)
    xe, _ = clips(s, get_config(s['config']), s['forward_batch'], device, seed=2)

    def trained(prec, steps):
        clf = classifier(s, a, device, msta_blocks(depth, False), dims).train()
        opt = build_optimizer(clf, TrainConfig(lr=1e-3))
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            with Precision(prec, device): loss = clf({'video': x, 'label': y})['loss']
            loss.backward(); opt.step()
        return clf.eval()

    def scored(clf, prec='fp32'):
        with Precision(prec, device), torch.no_grad(): return clf.predictor()(xe).float()

    out = {}
    ref0 = trained('fp32', 0)
    l0 = scored(ref0)
    ref = trained('fp32', s['logit_steps'])
    lref = scored(ref)
    out['moved'] = (lref - l0).abs().max().item()                  # what the fp32 steps changed
    for prec in ('tf32', 'bf16'):
        if not Precision(prec, device).applies(): continue
        out[f'{prec}_forward'] = (scored(ref, prec) - lref).abs().max().item()
        other = scored(trained(prec, s['logit_steps']))
        out[f'{prec}_trained'] = (other - lref).abs().max().item()
        out[f'{prec}_top1_agree'] = (other.argmax(1) == lref.argmax(1)).float().mean().item()
    out['logit_scale'] = lref.abs().max().item()
    return out


# ---------------------------------------------------------------- data loading
def reencode(job):
    "One synthetic video re-encoded at `size` (H.264), each frame repeated to reach `frames` frames."
    src, dst, size, frames = job
    import av
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    with av.open(src) as inp:
        pics = [f.to_ndarray(format='rgb24') for f in inp.decode(video=0)]
    rep = max(1, math.ceil(frames / len(pics)))
    with av.open(dst, 'w') as out:
        st = out.add_stream('libx264', rate=25)
        st.width, st.height, st.pix_fmt = size[0], size[1], 'yuv420p'
        st.options = {'crf': '20', 'preset': 'veryfast'}
        i = 0
        for p in pics:
            big = av.VideoFrame.from_ndarray(p, format='rgb24').reformat(width=size[0], height=size[1], format='yuv420p')
            for _ in range(rep):                                        # constant frame rate: frame i at i / 25 s
                frame = big.reformat(format='yuv420p'); frame.pts, frame.time_base = i, Fraction(1, 25); i += 1
                for pkt in st.encode(frame): out.mux(pkt)
        for pkt in st.encode(): out.mux(pkt)
    return dst


def loader_check(s, tmp: Path, device) -> dict:
    """Clips/s of the training data path on the synthetic world re-encoded at 320×240, all cores as workers, each batch
    moved to `device`: with all augmentation in the workers (`augment_on='worker'`, the default) and with only the crop
    there and `BatchAugment` on `device` (`augment_on='device'`), and how far `BatchAugment` on `device` is from the CPU's."""
    from msta_core.world import generate_world
    from msta_core.datasets import VideoSplit
    from msta_core.loader import EpochSampler, VideoDataset
    from msta_core.augment import BatchAugment, split_augment
    t0 = time.time()
    world = generate_world(tmp / 'world', seed=0, workers=s['workers'], **s['world'])
    split = world.split('actions_train')
    samples = split.samples[:s['videos']]
    root = tmp / 'world_320x240'
    jobs = [(str(world.root / v.path), str(root / v.path), s['size'], s['frames']) for v in samples]
    with ProcessPoolExecutor(s['workers']) as pool: list(pool.map(reencode, jobs))
    prep = time.time() - t0
    mc = get_config('b16', input_resolution=s['load_size'])
    out = {}
    for augment_on in ('worker', 'device'):
        ds = VideoDataset.for_model(VideoSplit(root, samples, split.class_names), mc, mode='train', augment_on=augment_on)
        augment = BatchAugment(mc.mean, mc.std, **split_augment(None)[1]) if augment_on == 'device' else None
        epochs = max(1, math.ceil(s['loader_clips'] / len(ds)))
        sampler = EpochSampler(len(ds) * epochs, seed=0)
        class Repeat(torch.utils.data.Dataset):
            def __len__(self): return len(ds) * epochs
            def __getitem__(self, key): i, seed = key; return ds[(i % len(ds), seed)]
        dl = torch.utils.data.DataLoader(Repeat(), batch_size=8, sampler=sampler, num_workers=s['workers'],
                                         pin_memory=device.type == 'cuda')
        def on_device(b):
            v = b['video'].to(device, non_blocking=True)
            return augment(v, b['seed']) if augment is not None else v
        it = iter(dl); first = next(it); shape = tuple(on_device(first).shape[1:])
        t0, n = time.perf_counter(), 0
        for b in it: n += on_device(b).shape[0]
        sync(device)
        r = {'clips_s': n / (time.perf_counter() - t0), 'clip_shape': shape}
        if augment is not None:                                          # the same clips and seeds, on the CPU
            r['max_abs_diff_vs_cpu'] = float((on_device(first).cpu() - augment(first['video'], first['seed'])).abs().max())
        out[augment_on] = r
    return {**out['worker'], 'workers': s['workers'], 'videos': len(samples), 'frames': s['frames'], 'prep_s': prep,
            'augment_on_device': out['device']}


# ---------------------------------------------------------------- two processes
def ddp_worker(out: str, s_json: str, backend_device: str):
    "One of the processes of the two-process check (or the single reference process): a few MSTA steps with fit."
    from msta_core.distributed import setup_distributed
    from msta_core.run_folder import trainable_state_dict
    from msta_core.engine import fit
    s = json.loads(s_json)
    d = setup_distributed(backend_device)
    a = argparse.Namespace(checkpoint=None, quick=s['config'] == 'tiny')
    set_tf32(False)
    dims = 16 if s['config'] == 'tiny' else 128
    clf = classifier(s, a, d.device, msta_blocks(get_config(s['config']).vision_layers, False), dims)
    mc = clf.model.config
    class RandomClips(torch.utils.data.Dataset):
        def __len__(self): return 16
        def __getitem__(self, key):
            i, _ = key
            g = torch.Generator().manual_seed(i)
            return {'video': torch.randn(mc.num_frames, 3, mc.input_resolution, mc.input_resolution, generator=g),
                    'label': i % s['classes']}
    cfg = TrainConfig(epochs=1, lr=1e-3, warmup_epochs=0, batch_size=8, micro_batch=4,
                      num_workers=0, save_every=0, amp='off', tf32=False)
    fit(clf, RandomClips(), cfg, out, d=d, progress=False, resume=False)
    if d.is_main: torch.save(trainable_state_dict(clf), Path(out) / 'weights.pt')


def ddp_check(s, device_kind: str, tmp: Path) -> dict:
    "Two processes against one: the largest difference of the trained weights."
    torchrun = Path(sys.executable).parent / 'torchrun'
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                                                 os.environ.get('PYTHONPATH', '')])}
    base = [__file__, '--ddp-worker', '--ddp-settings', json.dumps(s), '--ddp-device', device_kind]
    t0 = time.time()
    for name, cmd in [('one', [sys.executable, *base]),
                      ('two', [str(torchrun), '--standalone', '--nproc_per_node', '2', *base])]:
        r = subprocess.run(cmd + ['--ddp-out', str(tmp / name)], env=env, capture_output=True, text=True, timeout=300)
        if r.returncode: raise RuntimeError(f'{name} process(es) failed:\n{r.stderr[-3000:]}')
    a, b = (torch.load(tmp / n / 'weights.pt', weights_only=True) for n in ('one', 'two'))
    diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    scale = max(a[k].float().abs().max().item() for k in a)
    return {'max_abs_diff': diff, 'max_abs_weight': scale, 'seconds': time.time() - t0}


# ---------------------------------------------------------------- the table
def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--quick', action='store_true', help='tiny settings: the tiny ViCLIP, a few steps (CPU CI)')
    ap.add_argument('--device', default=None, help="'cuda' or 'cpu' (default: cuda if there is one)")
    ap.add_argument('--batch', type=int, default=8, help='clips per training step (the forward uses twice as many)')
    ap.add_argument('--checkpoint', default=None, help='an official ViCLIP-B/16 checkpoint for the logits check')
    ap.add_argument('--skip', nargs='*', default=[], choices=['forward', 'train', 'logits', 'loader', 'nccl'])
    ap.add_argument('--gloo', action='store_true', help='run the two-process check with gloo on the CPU')
    ap.add_argument('--json', default=None, help='also write every measurement to this JSON file')
    ap.add_argument('--ddp-worker', action='store_true', help=argparse.SUPPRESS)
    ap.add_argument('--ddp-settings', help=argparse.SUPPRESS); ap.add_argument('--ddp-out', help=argparse.SUPPRESS)
    ap.add_argument('--ddp-device', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.ddp_worker: return ddp_worker(a.ddp_out, a.ddp_settings, a.ddp_device)
    device = torch.device(a.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    s = settings(a)
    mc = get_config(s['config'])
    start = time.time()
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
    print(f"GPU check: ViCLIP-{s['config']} ({mc.num_frames}×{mc.input_resolution}²), {name}, torch {torch.__version__}, "
          f"{os.cpu_count()} cores, forward batch {s['forward_batch']}, train batch {s['train_batch']}, "
          f"{s['classes']} classes, {'random weights' if not a.checkpoint or a.quick else a.checkpoint}", flush=True)
    rows, results = [], {'device': name, 'settings': {k: v for k, v in s.items() if k != 'world'}}
    if 'forward' not in a.skip:
        for prec in PRECISIONS:
            if not Precision(prec, device).applies(): rows.append(('forward', prec, 'n/a on CPU', '')); continue
            r = bench_forward(s, a, device, prec); results[f'forward_{prec}'] = r
            rows.append(('forward', prec, f"{r['clips_s']:.1f} clips/s", f"{r['peak_mib']:.0f} MiB"))
    if 'train' not in a.skip:
        for full in (False, True):
            lay = msta_blocks(mc.vision_layers, full)
            for prec in PRECISIONS:
                label = f'msta {lay[0]}-{lay[1]}'
                if not Precision(prec, device).applies(): rows.append((label, prec, 'n/a on CPU', '')); continue
                r = bench_train(s, a, device, prec, full); results[f'train_{lay[0]}_{lay[1]}_{prec}'] = r
                rows.append((label, prec, f"{r['clips_s']:.1f} clips/s", f"{r['peak_mib']:.0f} MiB  ({r['trainable']:,} trained)"))
    if 'logits' not in a.skip:
        r = logits_check(s, a, device); results['logits'] = r
        rows.append(('logits', 'fp32', f"{s['logit_steps']} steps moved them by {r['moved']:.3g}", f"|logit| ≤ {r['logit_scale']:.3g}"))
        for prec in ('tf32', 'bf16'):
            if f'{prec}_forward' not in r: rows.append(('logits', prec, 'n/a on CPU', '')); continue
            rows.append(('logits', prec, f"forward Δ {r[f'{prec}_forward']:.3g}, trained Δ {r[f'{prec}_trained']:.3g}",
                         f"top-1 agrees on {100 * r[f'{prec}_top1_agree']:.0f}%"))
    if 'loader' not in a.skip:
        with tempfile.TemporaryDirectory() as tmp:
            r = loader_check(s, Path(tmp), device); results['loader'] = r
        fastest = max((v['clips_s'] for k, v in results.items() if k.startswith('train_')), default=None)
        fed = lambda x: f"; fastest step needs {fastest:.1f}: {'fed' if x >= fastest else 'NOT fed'}" if fastest else ''
        rows.append(('loader', f"{r['workers']} workers", f"{r['clips_s']:.1f} clips/s",
                     f"{r['videos']} videos 320×240×{r['frames']} → {r['clip_shape']}{fed(r['clips_s'])}"))
        rd = r['augment_on_device']
        rows.append(('loader', "augment_on='device'", f"{rd['clips_s']:.1f} clips/s",
                     f"BatchAugment on {device.type}: max |Δ| against the CPU's {rd['max_abs_diff_vs_cpu']:.3g}"
                     f"{fed(rd['clips_s'])}"))
    if 'nccl' not in a.skip:
        n_gpu = torch.cuda.device_count() if device.type == 'cuda' else 0
        if n_gpu >= 2 or a.gloo:
            with tempfile.TemporaryDirectory() as tmp:
                r = ddp_check(s, 'cuda' if n_gpu >= 2 else 'cpu', Path(tmp)); results['ddp'] = r
            rows.append(('2 processes', 'nccl' if n_gpu >= 2 else 'gloo', f"max |Δw| {r['max_abs_diff']:.3g}",
                         f"|w| ≤ {r['max_abs_weight']:.3g}, vs 1 process, {r['seconds']:.0f} s"))
        else: rows.append(('2 processes', 'nccl', f'skipped: {n_gpu} GPU(s)', 'needs 2 GPUs (--gloo: on the CPU)'))
    w = [max(len(str(r[i])) for r in rows + [('check', 'precision', 'result', 'memory / notes')]) for i in range(4)]
    print()
    for r in [('check', 'precision', 'result', 'memory / notes')] + rows:
        print('  '.join(str(c).ljust(w[i]) for i, c in enumerate(r)).rstrip())
    results['seconds'] = time.time() - start
    print(f"\n{results['seconds']:.0f} s in all")
    if a.json: Path(a.json).write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == '__main__':
    main()
