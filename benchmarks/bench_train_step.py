"""Cost of one training step of ViCLIP-B/16 (8 frames, 224²) against the frozen forward, with peak memory.

    python benchmarks/bench_train_step.py [--batch 2] [--classes 101] [--repeats 2] [--device cpu]

Configurations, each in its own process (so peak memory is its own):
  frozen      video forward only, no graph (the cost of inference)
  msta_8_12   MSTA + consistency, blocks 8–12 of both towers (the authors' runs): forward + backward + AdamW step
  msta_1_12   the same in all 12 blocks (Table 1's base-to-novel setting, d=256)
  full        full fine-tuning (the backbone's 124.3M parameters)
A step includes the class-prompt text features of `--classes` classes (UCF101: 101) through the trainable text
blocks, as in training. Peak memory: max RSS of the process on CPU, `torch.cuda.max_memory_allocated` on CUDA.
"""
import argparse, json, resource, subprocess, sys, time

CONFIGS = ('frozen', 'msta_8_12', 'msta_1_12', 'full')


def worker(name, batch, classes, repeats, device):
    import torch
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
    if name == 'frozen':
        model.to(dev).eval().requires_grad_(False)
        def step():
            with torch.no_grad(): model.encode_video(video)
    else:
        peft = {'msta_8_12': dict(method='msta', dims=128, layers=(8, 12)),
                'msta_1_12': dict(method='msta', dims=256, layers=(1, 12)), 'full': dict(method='full')}[name]
        apply_peft(model, **peft)
        D = model.config.embed_dim
        targets = FrozenTextTargets(torch.nn.functional.normalize(torch.randn(classes, D), dim=-1),
                                    torch.nn.functional.normalize(torch.randn(classes, D), dim=-1))
        clf = VideoTextClassifier(model, names, targets=targets).to(dev).train()
        opt = build_optimizer(clf, TrainConfig())
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
    trainable = 0 if name == 'frozen' else sum(p.numel() for p in clf.parameters() if p.requires_grad)
    print(json.dumps({'name': name, 'seconds': min(ts), 'peak_mib': peak, 'trainable': trainable}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--batch', type=int, default=2); ap.add_argument('--classes', type=int, default=101)
    ap.add_argument('--repeats', type=int, default=2); ap.add_argument('--device', default='cpu')
    ap.add_argument('--worker', default=None)
    a = ap.parse_args()
    if a.worker: return worker(a.worker, a.batch, a.classes, a.repeats, a.device)
    import torch
    print(f"ViCLIP-B/16, {a.batch} clip(s) of 8×224², {a.classes} classes, fp32, device={a.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = {}
    for name in CONFIGS:
        r = subprocess.run([sys.executable, __file__, '--worker', name, '--batch', str(a.batch), '--classes', str(a.classes),
                            '--repeats', str(a.repeats), '--device', a.device], capture_output=True, text=True)
        if r.returncode: print(r.stderr[-2000:]); raise SystemExit(f'{name} failed')
        rows[name] = json.loads(r.stdout.strip().splitlines()[-1])
    base = rows['frozen']['seconds']
    print(f"{'config':<11} {'s/step':>8} {'× frozen fwd':>13} {'peak MiB':>9} {'trainable':>12}")
    for name, r in rows.items():
        print(f"{name:<11} {r['seconds']:8.2f} {r['seconds'] / base:13.2f} {r['peak_mib']:9.0f} {r['trainable']:12,}")
    print("goals: msta_8_12 ≤ 1.6× frozen, msta_1_12 ≤ 2.2×, peak memory well under full fine-tuning's")


if __name__ == '__main__':
    main()
