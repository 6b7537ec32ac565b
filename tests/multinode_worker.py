"""Worker for test_multinode.py: `once_per_node` under torchrun, each node agent with its own "local disk" ($NODE_DISK)."""
import json, os, sys
from pathlib import Path
from msta_core.core import atomic_write_text
from msta_core.distributed import setup_distributed
from msta_core.experiment import once_per_node

if __name__ == '__main__':
    out, disk = Path(sys.argv[1]), Path(os.environ['NODE_DISK'])
    d = setup_distributed('cpu')
    def make():
        f = disk / 'built_by.txt'
        if not f.exists(): atomic_write_text(f, str(d.rank))             # "build" only what is missing
        return f.read_text()
    got = once_per_node(d, make)
    atomic_write_text(out / f'rank{d.rank}.json', json.dumps({'rank': d.rank, 'local_rank': d.local_rank, 'disk': str(disk),
                                                               'got': got, 'world_size': d.world_size}))
