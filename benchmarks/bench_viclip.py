"""ViCLIP-B/16 forward speed on this machine (fp32 CPU, or CUDA with --device cuda).

Prints clips/s for one 8×224×224 clip, the achieved GFLOP/s (2 × the analytic multiply-adds) next to the
machine's measured fp32 matmul GFLOP/s, and the same forward with the official attention
(`nn.MultiheadAttention`, sequence-first) swapped in, so the two attention paths are compared on the same weights.

    python benchmarks/bench_viclip.py [--config b16] [--frames 8] [--repeats 3] [--threads N] [--device cpu]
"""
import argparse, time
import torch
from torch import nn
from msta_core.viclip import ViCLIP, get_config
from msta_core.accounting import analytic_vision_macs


class OfficialAttention(nn.Module):
    "The official layout: nn.MultiheadAttention on sequence-first tensors (for comparison only)."
    def __init__(self, ours):
        super().__init__()
        D = ours.in_proj_weight.shape[1]
        self.mha = nn.MultiheadAttention(D, ours.n_head).to(ours.in_proj_weight.device)
        self.mha.load_state_dict({'in_proj_weight': ours.in_proj_weight, 'in_proj_bias': ours.in_proj_bias,
                                  'out_proj.weight': ours.out_proj.weight, 'out_proj.bias': ours.out_proj.bias})
    def forward(self, x):
        x = x.transpose(0, 1)
        return self.mha(x, x, x, need_weights=False)[0].transpose(0, 1)


def timeit(fn, repeats, sync):
    fn(); sync()                                      # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); sync(); ts.append(time.perf_counter() - t0)
    return min(ts)


def matmul_gflops(device, n=2048, repeats=5):
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.type == 'cuda' else (lambda: None)
    return 2 * n ** 3 / timeit(lambda: a @ b, repeats, sync) / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--config', default='b16'); ap.add_argument('--frames', type=int, default=8)
    ap.add_argument('--repeats', type=int, default=3); ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('--device', default='cpu'); ap.add_argument('--batch', type=int, default=1)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    c = get_config(a.config, num_frames=a.frames)
    model = ViCLIP(c).to(dev).eval()
    x = torch.randn(a.batch, a.frames, 3, c.input_resolution, c.input_resolution, device=dev)
    macs = analytic_vision_macs(c) * a.batch
    print(f"ViCLIP-{a.config} video tower, {a.batch}×{a.frames}×{c.input_resolution}², fp32, device={dev}, "
          f"threads={torch.get_num_threads()}, torch {torch.__version__}")
    print(f"analytic multiply-adds per clip: {analytic_vision_macs(c) / 1e9:.2f} G")
    mm = matmul_gflops(dev)
    print(f"fp32 matmul (2048²): {mm:.1f} GFLOP/s")
    with torch.inference_mode():
        t = timeit(lambda: model.encode_video(x), a.repeats, sync)
        print(f"ours (SDPA):          {t:.3f} s/batch  {a.batch / t:.3f} clips/s  {2 * macs / t / 1e9:.1f} GFLOP/s")
        for blk in model.vision_encoder.transformer.resblocks: blk.attn = OfficialAttention(blk.attn)
        t2 = timeit(lambda: model.encode_video(x), a.repeats, sync)
        print(f"official attention:   {t2:.3f} s/batch  {a.batch / t2:.3f} clips/s  {2 * macs / t2 / 1e9:.1f} GFLOP/s")
    print(f"speed-up of ours over the official attention path: {t2 / t:.2f}×")


if __name__ == '__main__':
    main()
