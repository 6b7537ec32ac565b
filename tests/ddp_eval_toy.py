"""Worker for test_ddp.py: evaluate a dataset of `n` one-view videos in every process (run by torchrun)."""
import json, sys
import torch
from msta_core.distributed import setup_distributed, teardown_distributed
from msta_core.evaluate import evaluate_dataset


class Videos(torch.utils.data.Dataset):
    def __init__(self, n): self.n = n
    def __len__(self): return self.n
    def __getitem__(self, key):
        i, _ = key
        v = torch.zeros(1, 1, 3, 1, 1); v[0, 0, i % 3] = 1
        return {'video': v, 'label': torch.tensor(i % 3), 'skipped': ''}


if __name__ == '__main__':
    d = setup_distributed('cpu')
    r = evaluate_dataset(lambda v: v.flatten(1)[:, :3], Videos(int(sys.argv[1])), batch_size=1, num_workers=0, d=d, progress=False,
                         max_videos=int(sys.argv[2]) if len(sys.argv) > 2 else None)
    print(json.dumps({'rank': d.rank, 'n': r['n'], 'top1': r['top1']}), flush=True)
    teardown_distributed(d)
