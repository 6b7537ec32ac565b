"""The kernels behind a training step of ViCLIP-B/16 on 2 clips (L = 1569 tokens), timed one by one on this CPU.

    python benchmarks/bench_kernels.py [--repeats 5]

  malloc       `x * y` on fresh [2, 1569, 3072] tensors, with glibc's default malloc and after `tune_cpu_malloc()`
               (each in its own process: the setting cannot be undone)
  quickgelu    forward + backward of x·σ(1.702x): autograd's version against `QuickGELUFunction`
  temporal     MSTA's depthwise (3, 1, 1) convolution on [2, 1568, 768] patch tokens, forward + backward:
               permute to [B, C, T, h, w] + Conv3d against `conv_tokens`
  attention    flash attention (SDPA) and the block's largest matmul, forward vs forward + backward: the
               backward/forward ratios that set the floor of any adapter's training step
"""
import argparse, json, subprocess, sys, time

import torch
import torch.nn.functional as F


def best_ms(f, repeats):
    f(); ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return 1e3 * min(ts)


def malloc_worker(tune: bool, repeats: int):
    from msta_core.core import tune_cpu_malloc
    applied = tune_cpu_malloc() if tune else False
    x, y = torch.randn(2, 1569, 3072), torch.randn(2, 1569, 3072)
    print(json.dumps({'applied': applied, 'ms': best_ms(lambda: x * y, repeats)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeats', type=int, default=5); ap.add_argument('--malloc-worker', choices=('on', 'off'))
    a = ap.parse_args()
    if a.malloc_worker: return malloc_worker(a.malloc_worker == 'on', a.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32, best of {a.repeats}")

    for mode in ('off', 'on'):
        r = subprocess.run([sys.executable, __file__, '--malloc-worker', mode, '--repeats', str(a.repeats)],
                           capture_output=True, text=True, check=True)
        r = json.loads(r.stdout.strip().splitlines()[-1])
        print(f"malloc     x * y, fresh [2, 1569, 3072]   tuning {mode:>3} (applied: {r['applied']!s:>5}): {r['ms']:7.1f} ms")

    from msta_core.core import tune_cpu_malloc
    tune_cpu_malloc()                                                # the rest as training runs them
    from msta_core.viclip import QuickGELU
    from msta_core.msta import conv_tokens, tokens_to_video, video_to_tokens

    x = torch.randn(2, 1569, 3072, requires_grad=True); g = torch.randn_like(x)
    plain = best_ms(lambda: torch.autograd.grad(x * torch.sigmoid(1.702 * x), x, g), a.repeats)
    ours = best_ms(lambda: torch.autograd.grad(QuickGELU()(x), x, g), a.repeats)
    print(f"quickgelu  fwd + bwd [2, 1569, 3072]        autograd {plain:7.1f} ms   QuickGELUFunction {ours:7.1f} ms")

    grid, C = (8, 14, 14), 768
    s = torch.randn(2, 1568, C, requires_grad=True); g = torch.randn_like(s)
    conv = torch.nn.Conv3d(C, C, (3, 1, 1), padding=(1, 0, 0), groups=C)
    params = (s, conv.weight, conv.bias)
    plain = best_ms(lambda: torch.autograd.grad(video_to_tokens(conv(tokens_to_video(s, grid))), params, g), a.repeats)
    ours = best_ms(lambda: torch.autograd.grad(conv_tokens(conv, s, grid), params, g), a.repeats)
    print(f"temporal   fwd + bwd depthwise (3,1,1) conv  permute {plain:7.1f} ms   conv_tokens {ours:7.1f} ms")

    q, k, v = [torch.randn(2, 12, 1569, 64, requires_grad=True) for _ in range(3)]
    g = torch.randn(2, 12, 1569, 64)
    fwd = best_ms(lambda: F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach()), a.repeats)
    both = best_ms(lambda: torch.autograd.grad(F.scaled_dot_product_attention(q, k, v), (q, k, v), g), a.repeats)
    print(f"attention  SDPA [2, 12, 1569, 64]          fwd {fwd:7.1f} ms   fwd + bwd {both:7.1f} ms   bwd/fwd {(both - fwd) / fwd:.2f}")
    x = torch.randn(3138, 768, requires_grad=True); w = torch.randn(3072, 768); g = torch.randn(3138, 3072)
    fwd = best_ms(lambda: F.linear(x.detach(), w), a.repeats)
    both = best_ms(lambda: torch.autograd.grad(F.linear(x, w), x, g), a.repeats)
    print(f"matmul     [3138, 768] × [768, 3072]       fwd {fwd:7.1f} ms   fwd + bwd {both:7.1f} ms   bwd/fwd {(both - fwd) / fwd:.2f}"
          f"   (frozen weight: input gradient only)")


if __name__ == '__main__':
    main()
