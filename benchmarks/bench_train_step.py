"""Cost of one training step of ViCLIP-B/16 (8 frames, 224²) against the frozen forward, with peak memory.

    python benchmarks/bench_train_step.py [--batch 2] [--classes 101] [--repeats 3] [--device cpu] [--no-malloc-tuning]

Configurations, each in its own process (so peak memory is its own):
  frozen        video forward only, no graph (the cost of inference)
  backprop_8    the frozen video tower with a gradient back to block 8's input, nothing trained, no text:
                the least any method with adapters in blocks 8–12 can cost
  msta_8_12     MSTA + consistency, blocks 8–12 of both towers (the authors' runs): forward + backward + AdamW step
  backprop_1    as backprop_8, down to block 1's input: the least any method adapting block 1 can cost
  msta_1_12     MSTA in all 12 blocks (Table 1's base-to-novel setting, d=256)
  full          full fine-tuning (the backbone's 124.3M parameters)
A step includes the class-prompt text features of `--classes` classes (UCF101: 101) through the trainable text
blocks, as in training. Peak memory: max RSS of the process on CPU, `torch.cuda.max_memory_allocated` on CUDA.

The "FLOP floor" column is the same bound counted analytically: the forward's multiply-adds plus, for every block
the gradient passes, the input-gradient matmuls (as many as the forward's) and the flash-attention backward
(five L²·D products against the forward's two). No implementation of the method can go below it.
On the CPU every process first calls `msta_core.core.tune_cpu_malloc()`, as `engine.fit` does.
"""
import argparse, json, resource, subprocess, sys, time

CONFIGS = ('frozen', 'backprop_8', 'msta_8_12', 'backprop_1', 'msta_1_12', 'full')
FIRST_BLOCK = {'backprop_8': 8, 'msta_8_12': 8, 'backprop_1': 1, 'msta_1_12': 1}   # first block a gradient reaches


def flop_floor(first_block: int, frames: int = 8, grid: int = 14, D: int = 768, layers: int = 12) -> float:
    "(forward + backward down to `first_block`) / forward, in multiply-adds of the ViCLIP-B/16 video blocks."
    L = 1 + grid * grid * frames
    linear, attn = 12 * L * D * D, 2 * L * L * D                   # qkv + out + MLP; QKᵀ and PV
    backward = (layers - first_block + 1) * (linear + 2.5 * attn)
    return 1 + backward / (layers * (linear + attn))


def worker(name, batch, classes, repeats, device, malloc_tuning):
    import torch
    if device == 'cpu' and malloc_tuning:
        from msta_core.core import tune_cpu_malloc; tune_cpu_malloc()
    from msta_core.viclip import ViCLIP
    from msta_core.adapters import apply_peft
    from msta_core.classifier import VideoTextClassifier
    from msta_core.losses import FrozenTextTargets
    from msta_core.engine import build_optimizer, TrainConfig
    torch.manual_seed(0)
    dev = torch.device(device)
    model = ViCLIP('b16')
    names = [f'action number {i}' for i in range(classes)]
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    video = torch.randn(batch, 8, 3, 224, 224, device=dev)
    labels = torch.randint(0, classes, (batch,), device=dev)
    trainable = 0
    if name == 'frozen':
        model.to(dev).eval().requires_grad_(False)
        def step():
            with torch.no_grad(): model.encode_video(video)
    elif name.startswith('backprop_'):
        model.to(dev).eval().requires_grad_(False)
        ve, k = model.vision_encoder, FIRST_BLOCK[name] - 1
        def step():
            with torch.no_grad():                                 # the blocks below the first adapted one
                x, grid = ve.embed(video.permute(0, 2, 1, 3, 4)); x = ve.ln_pre(x)
                for blk in ve.transformer.resblocks[:k]: x = blk(x, grid)
            y = x.requires_grad_()
            for blk in ve.transformer.resblocks[k:]: y = blk(y, grid)
            torch.autograd.grad((ve.ln_post(y[:, 0]) @ ve.proj).sum(), x)
    else:
        peft = {'msta_8_12': dict(method='msta', dims=128, layers=(8, 12)),
                'msta_1_12': dict(method='msta', dims=256, layers=(1, 12)), 'full': dict(method='full')}[name]
        apply_peft(model, **peft)
        D = model.config.embed_dim
        targets = FrozenTextTargets(torch.nn.functional.normalize(torch.randn(classes, D), dim=-1),
                                    torch.nn.functional.normalize(torch.randn(classes, D), dim=-1))
        clf = VideoTextClassifier(model, names, targets=targets).to(dev).train()
        opt = build_optimizer(clf, TrainConfig())
        trainable = sum(p.numel() for p in clf.parameters() if p.requires_grad)
        batch_ = {'video': video, 'label': labels}
        def step():
            opt.zero_grad(set_to_none=True)
            clf(batch_)['loss'].backward()
            opt.step()
    step(); sync()
    if dev.type == 'cuda': torch.cuda.reset_peak_memory_stats()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); step(); sync(); ts.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() / 2 ** 20 if dev.type == 'cuda' else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({'name': name, 'seconds': min(ts), 'peak_mib': peak, 'trainable': trainable}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--batch', type=int, default=2); ap.add_argument('--classes', type=int, default=101)
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--device', default='cpu')
    ap.add_argument('--no-malloc-tuning', action='store_true', help="leave glibc's malloc as it is")
    ap.add_argument('--only', nargs='*', default=None, help=f'a subset of {CONFIGS} (frozen is always run)')
    ap.add_argument('--worker', default=None)
    a = ap.parse_args()
    if a.worker: return worker(a.worker, a.batch, a.classes, a.repeats, a.device, not a.no_malloc_tuning)
    import torch
    print(f"ViCLIP-B/16, {a.batch} clip(s) of 8×224², {a.classes} classes, fp32, device={a.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, malloc tuning "
          f"{'off' if a.no_malloc_tuning else 'on'}, min of {a.repeats} steps")
    rows = {}
    for name in [c for c in CONFIGS if a.only is None or c in a.only or c == 'frozen']:
        cmd = [sys.executable, __file__, '--worker', name, '--batch', str(a.batch), '--classes', str(a.classes),
               '--repeats', str(a.repeats), '--device', a.device] + (['--no-malloc-tuning'] if a.no_malloc_tuning else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode: print(r.stderr[-2000:]); raise SystemExit(f'{name} failed')
        rows[name] = json.loads(r.stdout.strip().splitlines()[-1])
    base = rows['frozen']['seconds']
    print(f"{'config':<11} {'s/step':>8} {'× frozen fwd':>13} {'FLOP floor':>11} {'peak MiB':>9} {'trainable':>12}")
    for name, r in rows.items():
        floor = f"{flop_floor(FIRST_BLOCK[name]):.2f}" if name in FIRST_BLOCK else ''
        print(f"{name:<11} {r['seconds']:8.2f} {r['seconds'] / base:13.2f} {floor:>11} {r['peak_mib']:9.0f} {r['trainable']:12,}")
    print("goals: each MSTA step ≤ 1.05× the backprop floor of its first adapted block (msta_8_12 / backprop_8, "
          "msta_1_12 / backprop_1); peak memory well under full fine-tuning's")
    for msta, floor in (('msta_8_12', 'backprop_8'), ('msta_1_12', 'backprop_1')):
        if msta in rows and floor in rows:
            print(f"  {msta}: {rows[msta]['seconds'] / rows[floor]['seconds']:.2f}× {floor}")


if __name__ == '__main__':
    main()
