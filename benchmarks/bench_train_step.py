"""Cost of one training step of ViCLIP-B/16 (8 frames, 224²) against the frozen forward, with peak memory.

    python benchmarks/bench_train_step.py [--batch 2] [--classes 101|400] [--repeats 3] [--device cpu]
                                          [--model b16|tiny] [--only CONFIG ...] [--no-malloc-tuning]
                                          [--rounds R]

Configurations, each in its own process (so peak memory is its own):
  frozen        video forward only, no graph (the cost of inference)
  backprop_8    the frozen video tower with a gradient back to block 8's input, nothing trained, no text:
                the least any method with adapters in blocks 8–12 can cost
  msta_8_12     MSTA + consistency, blocks 8–12 of both towers (the authors' runs): forward + backward + AdamW step
  backprop_1    as backprop_8, down to block 1's input: the least any method adapting block 1 can cost
  msta_1_12     MSTA in all 12 blocks (Table 1's base-to-novel setting, d=256)
  full          full fine-tuning (the backbone's 124.3M parameters)
  *_padded      the same MSTA step with the class prompts as a padded batch (cut to the longest prompt) instead of
                packed (the shared prefix once, no padding: `PackedPrompts`, 02_viclip)
  textfloor_8   the frozen text tower on the packed class prompts, a gradient back to block 8's input, no video:
  textfloor_1   the least the text branch of a method adapting text blocks 8–12 (1–12) can cost
  text_8_12     the text branch of msta_8_12 alone: class features forward + backward into the adapters
  text_1_12     (also as *_padded)
A step includes the class-prompt text features of `--classes` classes through the trainable text blocks, as in
training: UCF-101's 101 names or Kinetics-400's 400 from the label lists (`msta_core.core.reference_data`), or,
without them (or for another count), synthetic names of one to four words. Peak memory: max RSS of the process on
CPU, `torch.cuda.max_memory_allocated` on CUDA. `--model tiny` runs the tiny ViCLIP (a smoke test; its blocks
"8–12" are its top block, "1–12" all of them).

The "FLOP floor" column is the same bound counted analytically: the forward's multiply-adds plus, for every block
the gradient passes, the input-gradient matmuls (as many as the forward's) and the flash-attention backward
(five L²·D products against the forward's two). No implementation of the method can go below it. For the MSTA
and text rows it adds the text blocks' forward and input-gradient matmuls on the packed prompt tokens.
The goal lines compare each MSTA step with the video-only floor, with the floor that includes the text branch
(backprop_k + textfloor_k: a step must pay for the text blocks' backward over every class prompt, once per step,
while the video work is paid once per clip: the line "≤ 5% needs a batch ≥" gives the batch from which the text
branch alone fits in 5%), and with that floor scaled by MSTA's own multiply-adds (its down, shared and up layers and
the temporal convolution: forward, input and weight gradients, counted from the layer's weights). That last one is
the least any implementation of the method can cost, assuming its layers run at the backbone's FLOP rate; the goal is
≤ 1.05× it. The floors include block k's own input gradient, which an adapter in block k does not need, so a step can
come in slightly under them.
On the CPU every process first calls `msta_core.core.tune_cpu_malloc()`, as `engine.fit` does.
"""
import argparse, json, math, resource, subprocess, sys, time

CONFIGS = ('frozen', 'backprop_8', 'textfloor_8', 'text_8_12', 'text_8_12_padded', 'msta_8_12', 'msta_8_12_padded',
           'backprop_1', 'textfloor_1', 'text_1_12', 'text_1_12_padded', 'msta_1_12', 'msta_1_12_padded', 'full')
FIRST_BLOCK = {n: int(n.split('_')[1]) if n.startswith(('msta', 'text_')) else int(n[-1])
               for n in CONFIGS if n not in ('frozen', 'full')}            # first block (of 12) a gradient reaches
MSTA_DIMS = {'8': 128, '1': 256}           # MSTA's width in the authors' runs (blocks 8–12) and in Table 1's base-to-novel (1–12)
UCF101_NAMES, K400_NAMES = 'labels/ucf_101_labels.csv', 'labels/kinetics_400_labels.csv'
WORDS = ('playing', 'riding', 'throwing', 'ball', 'guitar', 'horse', 'jumping', 'rope', 'making', 'tea', 'push',
         'ups', 'ice', 'skating', 'blowing', 'dry', 'hair', 'walking', 'the', 'dog', 'apply', 'eye', 'makeup', 'yo')


def class_names(n: int) -> tuple[list[str], str]:
    "`n` realistic class names (UCF-101's for 101, Kinetics-400's for 400, when the label lists are here) and their source."
    from msta_core.core import reference_data
    from msta_core.datasets import read_labels
    root, file = reference_data('vifi_clip_splits'), {101: UCF101_NAMES, 400: K400_NAMES}.get(n)
    if root is not None and file is not None and (root / file).is_file(): return read_labels(root / file), file
    import random
    rng = random.Random(0)                                          # 1–4 words, as action names have
    return [' '.join(rng.choice(WORDS) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))) + f' {i}' for i in range(n)], 'synthetic'


def scaled_block(k: int, depth: int) -> int:
    "Block `k` of a 12-block encoder in one of `depth` blocks (the same for ViCLIP-B/16; the top block for tiny's 8)."
    return 1 + (k - 1) * depth // 12


def prompt_tokens(names, context_length: int):
    from msta_core.tokenizer import tokenize
    from msta_core.losses import class_prompts
    return tokenize(class_prompts(names), context_length=context_length)


def flop_parts(first_block: int, c, text_tokens: int = 0, text_keys: float = 0.0) -> tuple[float, float, float]:
    """Multiply-adds of one clip's video forward, of its backward down to `first_block`, and of the text blocks from
    `first_block` on (forward and input gradient) for `text_tokens` packed prompt tokens with `text_keys` keys each on average."""
    from msta_core.accounting import block_macs
    L, D, depth = 1 + c.grid ** 2 * c.time_steps, c.vision_width, c.vision_layers
    linear = block_macs(L, D, attention=False)                     # qkv + out + MLP
    attn = block_macs(L, D) - linear                               # QKᵀ and PV
    backward = (depth - first_block + 1) * (linear + 2.5 * attn)
    Dt, n = c.text_width, c.text_layers - first_block + 1
    text = n * (2 * block_macs(text_tokens, Dt, attention=False) + 3.5 * 2 * text_tokens * text_keys * Dt)
    return depth * (linear + attn), backward, text


def adapter_macs(first_block: int, c, dims: int, text_tokens: int = 0) -> tuple[float, float]:
    """Multiply-adds of MSTA's own layers (width `dims`) in blocks `first_block`.. per step: (one clip's video branches,
    the text branches on `text_tokens` packed prompt tokens), each counted three times: forward, input and weight
    gradients. A linear layer costs one multiply-add per weight per token."""
    import torch
    from msta_core.msta import MSTALayer
    with torch.device('meta'): layer = MSTALayer(c.vision_width, c.text_width, dims)
    w = lambda *ms: sum(m.weight.numel() for m in ms)
    L = 1 + c.grid ** 2 * c.time_steps
    video = (c.vision_layers - first_block + 1) * L * w(layer.video_down, layer.shared, layer.video_up_spatial, layer.video_up_temporal)
    text = (c.text_layers - first_block + 1) * text_tokens * w(layer.text_down, layer.shared, layer.text_up)
    return 3 * video, 3 * text


def flop_floor(first_block: int, c, text_tokens: int = 0, text_keys: float = 0.0, batch: int = 1) -> float:
    "(forward + backward down to `first_block` [+ the text blocks, once per step of `batch` clips]) / forward."
    fwd, bwd, text = flop_parts(first_block, c, text_tokens, text_keys)
    return 1 + (bwd + text / batch) / fwd


def worker(name, batch, classes, repeats, device, malloc_tuning, model_name='b16'):
    import torch
    if device == 'cpu' and malloc_tuning:
        from msta_core.core import tune_cpu_malloc; tune_cpu_malloc()
    from msta_core.viclip import ViCLIP, PackedPrompts
    from msta_core.peft import apply_peft
    import msta_core.msta
    from msta_core.classifier import VideoTextClassifier
    from msta_core.losses import FrozenTextTargets
    from msta_core.engine import build_optimizer, TrainConfig
    torch.manual_seed(0)
    dev = torch.device(device)
    model = ViCLIP(model_name)
    c = model.config
    names, _ = class_names(classes)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    video = torch.randn(batch, c.num_frames, 3, c.input_resolution, c.input_resolution, device=dev)
    labels = torch.randint(0, classes, (batch,), device=dev)
    trainable = 0
    if name == 'frozen':
        model.to(dev).eval().requires_grad_(False)
        def step():
            with torch.no_grad(): model.encode_video(video)
    elif name.startswith('backprop_'):
        model.to(dev).eval().requires_grad_(False)
        ve, k = model.vision_encoder, scaled_block(FIRST_BLOCK[name], c.vision_layers) - 1
        def step():
            with torch.no_grad():                                 # the blocks below the first adapted one
                x, grid = ve.embed(video.permute(0, 2, 1, 3, 4)); x = ve.ln_pre(x)
                for blk in ve.transformer.resblocks[:k]: x = blk(x, grid)
            y = x.requires_grad_()
            for blk in ve.transformer.resblocks[k:]: y = blk(y, grid)
            torch.autograd.grad((ve.ln_post(y[:, 0]) @ ve.proj).sum(), x)
    elif name.startswith('textfloor_'):
        model.to(dev).eval().requires_grad_(False)
        te, k = model.text_encoder, scaled_block(FIRST_BLOCK[name], c.text_layers) - 1
        pk = PackedPrompts(prompt_tokens(names, c.context_length).to(dev))
        r = torch.randn(classes, c.embed_dim, device=dev)
        with torch.no_grad(): x0 = te.blocks(pk.embed(te), 0, k, packing=pk)   # the frozen blocks below: cached
        def step():
            x = x0.detach().requires_grad_()
            torch.autograd.grad((pk.head(te, te.blocks(x, k, packing=pk)) * r).sum(), x)
    else:
        blocks = lambda k: (scaled_block(k, max(c.vision_layers, c.text_layers)), max(c.vision_layers, c.text_layers))
        kind = name.removeprefix('text_').removeprefix('msta_').removesuffix('_padded')
        peft = {'8_12': dict(method='msta', dims=MSTA_DIMS['8'], blocks=blocks(8)),
                '1_12': dict(method='msta', dims=MSTA_DIMS['1'], blocks=blocks(1)), 'full': dict(method='full')}[kind]
        apply_peft(model, **peft)
        D = c.embed_dim
        targets = FrozenTextTargets(torch.nn.functional.normalize(torch.randn(classes, D), dim=-1),
                                    torch.nn.functional.normalize(torch.randn(classes, D), dim=-1))
        clf = VideoTextClassifier(model, names, targets=targets, packed=not name.endswith('_padded')).to(dev).train()
        opt = build_optimizer(clf, TrainConfig())
        trainable = sum(p.numel() for p in clf.parameters() if p.requires_grad)
        batch_ = {'video': video, 'label': labels}
        r = torch.randn(classes, D, device=dev)
        def step():
            opt.zero_grad(set_to_none=True)
            if name.startswith('text_'): (clf.class_features() * r).sum().backward()   # the text branch alone
            else:
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
    ap.add_argument('--model', default='b16', choices=('b16', 'tiny'), help='ViCLIP size (tiny: a smoke test)')
    ap.add_argument('--no-malloc-tuning', action='store_true', help="leave glibc's malloc as it is")
    ap.add_argument('--rounds', type=int, default=1,
                    help="run the configurations this many times in turn, each time in fresh processes: the table and "
                         "the ratios use each configuration's fastest step over all rounds (the one the rest of the "
                         "machine disturbed least); the ratios within each round are shown beside them")
    ap.add_argument('--only', nargs='*', default=None, help=f'a subset of {CONFIGS} (frozen is always run)')
    ap.add_argument('--worker', default=None)
    a = ap.parse_args()
    if a.worker: return worker(a.worker, a.batch, a.classes, a.repeats, a.device, not a.no_malloc_tuning, a.model)
    import torch
    from msta_core.viclip import get_config, PackedPrompts
    c = get_config(a.model)
    names, source = class_names(a.classes)
    tokens = prompt_tokens(names, c.context_length)
    pk, ends = PackedPrompts(tokens), tokens.argmax(-1) + 1
    keys = (sum(i + 1 for i in range(pk.prefix))                    # mean keys per packed token (for the FLOP floor)
            + sum(n * sum(pk.prefix + j + 1 for j in range(s)) for n, s in pk.groups)) / len(pk)
    print(f"ViCLIP-{a.model}, {a.batch} clip(s) of {c.num_frames}×{c.input_resolution}², {a.classes} classes ({source}), "
          f"fp32, device={a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, malloc tuning "
          f"{'off' if a.no_malloc_tuning else 'on'}, min of {a.repeats} steps"
          + (f", {a.rounds} rounds" if a.rounds > 1 else ''))
    print(f"class prompts: {len(pk)} tokens packed (shared prefix {pk.prefix}, {len(pk.groups)} lengths) vs "
          f"{a.classes}×{int(ends.max())} = {a.classes * int(ends.max())} padded to the longest")
    rounds = []                                                      # one {config: result} per round
    for _ in range(a.rounds):
        rows = {}
        for name in [c for c in CONFIGS if a.only is None or c in a.only or c == 'frozen']:
            cmd = [sys.executable, __file__, '--worker', name, '--batch', str(a.batch), '--classes', str(a.classes),
                   '--repeats', str(a.repeats), '--device', a.device, '--model', a.model] + \
                  (['--no-malloc-tuning'] if a.no_malloc_tuning else [])
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode: print(r.stderr[-2000:]); raise SystemExit(f'{name} failed')
            rows[name] = json.loads(r.stdout.strip().splitlines()[-1])
        rounds.append(rows)
    rows = {n: dict(r, seconds=min(rr[n]['seconds'] for rr in rounds), peak_mib=max(rr[n]['peak_mib'] for rr in rounds))
            for n, r in rounds[0].items()}                           # each configuration's fastest step
    base = rows['frozen']['seconds']
    def floor_of(name):                                              # FLOP floor, in video forwards
        if name not in FIRST_BLOCK: return ''
        k = scaled_block(FIRST_BLOCK[name], c.vision_layers)
        video, both = flop_floor(k, c), flop_floor(k, c, len(pk), keys, a.batch)
        return f"{video if name.startswith('backprop') else both - video if name.startswith('text') else both:.2f}"
    print(f"{'config':<17} {'s/step':>8} {'× frozen fwd':>13} {'FLOP floor':>11} {'peak MiB':>9} {'trainable':>12}")
    for name, r in rows.items():
        print(f"{name:<17} {r['seconds']:8.3f} {r['seconds'] / base:13.2f} {floor_of(name):>11} {r['peak_mib']:9.0f} "
              f"{r['trainable']:12,}")
    print("goals: each MSTA step ≤ 1.05× the least a step can cost: the backprop floor of its first adapted block, "
          "the text branch's floor and MSTA's own layers ((backprop_k + textfloor_k) × (1 + their share of the "
          "multiply-adds)); peak memory well under full fine-tuning's")
    t = lambda n: rows[n]['seconds'] if n in rows else None
    def ratio(f):                                 # f(seconds of a config): from the fastest steps, then round by round
        v = sorted(f(lambda n: rr[n]['seconds']) for rr in rounds)
        return f"{f(t):.2f}×" + (f" (round by round: {', '.join(f'{x:.2f}' for x in v)})" if len(v) > 1 else '')
    for k in ('8', '1'):
        msta, floor, tfloor = f'msta_{k}_12', f'backprop_{k}', f'textfloor_{k}'
        fwd, bwd, text = flop_parts(scaled_block(int(k), c.vision_layers), c, len(pk), keys)
        L = int(ends.max())
        padded = flop_parts(scaled_block(int(k), c.vision_layers), c, a.classes * L, (L + 1) / 2)[2]
        print(f"  blocks {k}–12, in multiply-adds: the text branch is {text / (a.batch * (fwd + bwd)):.1%} of {floor}'s "
              f"video work at batch {a.batch} (padded prompts: {padded / (a.batch * (fwd + bwd)):.1%}); ≤ 5% needs a "
              f"batch ≥ {math.ceil(text / (0.05 * (fwd + bwd)))} (padded: {math.ceil(padded / (0.05 * (fwd + bwd)))})")
        if t(msta) and t(floor):
            print(f"  {msta}: {ratio(lambda s: s(msta) / s(floor))} {floor} (packed prompts)"
                  + (f", padded: {ratio(lambda s: s(msta + '_padded') / s(floor))}" if t(msta + '_padded') else ''))
        if t(tfloor) and t(floor):
            print(f"    reachable? the floor with the text branch, {floor} + {tfloor} = {t(floor) + t(tfloor):.3f} s "
                  f"= {ratio(lambda s: (s(floor) + s(tfloor)) / s(floor))} {floor}"
                  + (f"; {msta} is {ratio(lambda s: s(msta) / (s(floor) + s(tfloor)))} it" if t(msta) else ''))
            av, at = adapter_macs(scaled_block(int(k), c.vision_layers), c, MSTA_DIMS[k], len(pk))
            share = (a.batch * av + at) / (a.batch * (fwd + bwd) + text)
            print(f"    MSTA's own layers (d={MSTA_DIMS[k]}: forward, input and weight gradients) add {share:.1%} to "
                  f"those multiply-adds: no step can cost less than ({floor} + {tfloor}) × {1 + share:.3f} = "
                  f"{(t(floor) + t(tfloor)) * (1 + share):.3f} s"
                  + (f"; {msta} is {ratio(lambda s: s(msta) / ((s(floor) + s(tfloor)) * (1 + share)))} it "
                     f"(goal: ≤ 1.05×)" if t(msta) else ''))
        if t(f'text_{k}_12'):
            print(f"    text branch alone: {t(f'text_{k}_12'):.3f} s packed"
                  + (f", {t(f'text_{k}_12_padded'):.3f} s padded" if t(f'text_{k}_12_padded') else '')
                  + (f", floor {t(tfloor):.3f} s" if t(tfloor) else ''))

if __name__ == '__main__':
    main()
