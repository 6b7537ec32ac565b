#!/usr/bin/env python
"""OpenAI's CLIP release (`ViT-B-16.pt`, `ViT-L-14.pt`) is a TorchScript archive: opening it runs the code it
holds, and msta loads tensors only (`load_clip` refuses such a file). Convert it once, here, where you decide to
trust the file: its weights go to a `.safetensors` file, which the runs then load as plain tensors. The new file
is checked by loading it strictly as a frame-level CLIP; run again, it finds the file it wrote and leaves it; a
different file at that path is never overwritten.

    python data_prep/convert_clip.py ViT-B-16.pt                      # -> ViT-B-16.safetensors beside it
    python data_prep/convert_clip.py ViT-B-16.pt --out /weights/clip-b16.safetensors
"""
import argparse, sys
from pathlib import Path

import torch
from safetensors.torch import load, load_file, save

from msta_core.core import atomic_write_bytes, is_torchscript
from msta_core.clip import load_clip


def convert(src, out=None) -> Path:
    "Write the weights of OpenAI's TorchScript archive `src` to `out` (default: beside it, `.safetensors`); returns `out`."
    src = Path(src)
    out = Path(out) if out else src.with_suffix('.safetensors')
    if not src.is_file(): raise FileNotFoundError(f"{src}: no such file (OpenAI's ViT-B-16.pt / ViT-L-14.pt)")
    if not is_torchscript(src):
        raise ValueError(f"{src} is not a TorchScript archive: msta loads it as it is (a state dict or .safetensors file)")
    sd = {k: v.detach().contiguous() for k, v in torch.jit.load(str(src), map_location='cpu').state_dict().items()}   # trusted here
    if out.exists():                                                           # done before: the same weights, or refused
        have = load_file(str(out))
        if have.keys() == sd.keys() and all(torch.equal(have[k], v) for k, v in sd.items()): return out
        raise FileExistsError(f"{out} exists and holds other weights; remove it or give --out another path (nothing was written)")
    data = save(sd)
    load_clip(load(data))                                                      # the weights of a CLIP ViT, strictly
    return atomic_write_bytes(out, data)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('archive', help="OpenAI's released CLIP file, e.g. ViT-B-16.pt")
    p.add_argument('--out', help='where to write the weights (default: the archive with the suffix .safetensors)')
    a = p.parse_args(argv)
    try: out = convert(a.archive, a.out)
    except (FileNotFoundError, FileExistsError, ValueError) as e: sys.exit(f"convert_clip: {e}")
    print(out)
    return out


if __name__ == '__main__':
    main()
