"""Worker for test_ddp.py: train a seeded toy model with msta_core.engine.fit (run by torchrun or directly)."""
import sys
from pathlib import Path
import torch
from torch import nn
from msta_core.distributed import setup_distributed, teardown_distributed
from msta_core.engine import TrainConfig, fit


class ToyData(torch.utils.data.Dataset):
    def __init__(self, n=48):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 8, generator=g); self.y = (self.x[:, 0] + self.x[:, 1] > 0).long()
    def __len__(self): return len(self.x)
    def __getitem__(self, key):
        i, seed = key
        return self.x[i] + 0.1 * torch.randn(8, generator=torch.Generator().manual_seed(seed)), self.y[i]


class ToyModel(nn.Module):
    def __init__(self):
        super().__init__(); self.fc1 = nn.Linear(8, 16); self.fc2 = nn.Linear(16, 2)
    def forward(self, batch):
        x, y = batch
        return {'loss': nn.functional.cross_entropy(self.fc2(torch.relu(self.fc1(x))), y)}


if __name__ == '__main__':
    out = Path(sys.argv[1])
    d = setup_distributed('cpu')
    torch.manual_seed(0); model = ToyModel()
    cfg = TrainConfig(epochs=2, lr=0.05, warmup_epochs=0.5, batch_size=8, micro_batch=4, num_workers=0, save_every=0)
    hist = fit(model, ToyData(), cfg, out, d=d, progress=False)
    if d.is_main:
        torch.save({'state': model.state_dict(), 'history': hist}, out / 'final.pt')
    teardown_distributed(d)
