#!/usr/bin/env python
"""Write label lists (`id,name` CSV) and split files (`relative/path label`) for a video dataset,
from its official annotations or its folder layout, and derive K-shot and base-to-novel splits
(see nbs/04_datasets.ipynb for the formats and ViFi-CLIP's conventions).

    python data_prep/make_splits.py folders  /data/mydataset/videos --out splits/mydataset
    python data_prep/make_splits.py ucf101   --lists /data/ucfTrainTestlist --split 1 --out splits/ucf --flat
    python data_prep/make_splits.py hmdb51   --split-dir /data/testTrainMulti_7030_splits --split 1 --out splits/hmdb
    python data_prep/make_splits.py kinetics --csv /data/k400/annotations/val.csv --out splits/k400
    python data_prep/make_splits.py ssv2     --json /data/ssv2/something-something-v2-validation.json \\
                                             --labels-json /data/ssv2/labels.json --out splits/ssv2
    python data_prep/make_splits.py few-shot --split splits/ucf/train1.txt --labels splits/ucf/ucf_101_labels.csv \\
                                             --k 2 4 8 16 --out splits/ucf
    python data_prep/make_splits.py base-novel --train splits/ucf/train1.txt --test splits/ucf/val1.txt \\
                                             --labels splits/ucf/ucf_101_labels.csv --name ucf_101 --out splits/ucf/b2n
"""
import argparse
from pathlib import Path

from msta_core.datasets import (read_labels, read_split, write_labels, write_split, split_from_folders, ucf101_split,
                                hmdb51_split, kinetics_split, ssv2_split, few_shot_split, base_novel_files)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='cmd', required=True)
    s = sub.add_parser('folders', help='root/<class>/<video> layout -> labels.csv + all.txt')
    s.add_argument('root'); s.add_argument('--out', required=True)
    s = sub.add_parser('ucf101', help='classInd.txt + trainlistNN/testlistNN -> ucf_101_labels.csv, trainN.txt, valN.txt')
    s.add_argument('--lists', required=True, help='folder with classInd.txt, trainlist0N.txt, testlist0N.txt')
    s.add_argument('--split', type=int, default=1); s.add_argument('--flat', action='store_true', help='bare file names (ViFi-CLIP)')
    s.add_argument('--out', required=True)
    s = sub.add_parser('hmdb51', help='<class>_test_splitN.txt files -> hmdb_51_labels.csv, trainN.txt, valN.txt')
    s.add_argument('--split-dir', required=True); s.add_argument('--split', type=int, default=1)
    s.add_argument('--labels', help="an existing label list fixing the class order (e.g. ViFi-CLIP's hmdb_51_labels.csv)")
    s.add_argument('--flat', action='store_true', help='bare file names (ViFi-CLIP)'); s.add_argument('--out', required=True)
    s = sub.add_parser('kinetics', help='official CSV -> <csv stem>.txt (+ labels.csv unless --labels)')
    s.add_argument('--csv', required=True); s.add_argument('--labels', help='existing label list (e.g. kinetics_400_labels.csv)')
    s.add_argument('--subdir', default=None, help="folder of the videos (default: the CSV's split column)")
    s.add_argument('--out', required=True)
    s = sub.add_parser('ssv2', help='SSv2 JSON + labels.json -> ssv2_labels.csv + <train|validation>.txt')
    s.add_argument('--json', required=True); s.add_argument('--labels-json', required=True); s.add_argument('--out', required=True)
    s = sub.add_parser('few-shot', help='K videos per class from a training split -> <prefix>_few_shot_K.txt')
    s.add_argument('--split', required=True); s.add_argument('--labels', required=True)
    s.add_argument('--k', type=int, nargs='+', default=[2, 4, 8, 16]); s.add_argument('--seed', type=int, default=0)
    s.add_argument('--prefix', default='train1'); s.add_argument('--out', required=True)
    s = sub.add_parser('base-novel', help="ViFi-CLIP's base-to-novel files from a train and a test split")
    s.add_argument('--train', required=True); s.add_argument('--test', required=True); s.add_argument('--labels', required=True)
    s.add_argument('--rule', choices=['frequency', 'random'], default='frequency'); s.add_argument('--seed', type=int, default=0)
    s.add_argument('--shots', type=int, default=16); s.add_argument('--name', required=True, help='label list prefix, e.g. ucf_101')
    s.add_argument('--out', required=True)
    a = p.parse_args(argv)
    out = Path(a.out)
    written = []

    def split(name, samples): written.append(write_split(out / name, samples))
    def labels(name, names): written.append(write_labels(out / name, names))

    if a.cmd == 'folders':
        samples, names = split_from_folders(a.root)
        labels('labels.csv', names); split('all.txt', samples)
    elif a.cmd == 'ucf101':
        lists = Path(a.lists)
        train, test, names = ucf101_split(lists / f'trainlist{a.split:02d}.txt', lists / f'testlist{a.split:02d}.txt',
                                          lists / 'classInd.txt', flat=a.flat)
        labels('ucf_101_labels.csv', names); split(f'train{a.split}.txt', train); split(f'val{a.split}.txt', test)
    elif a.cmd == 'hmdb51':
        train, test, names = hmdb51_split(a.split_dir, a.split, read_labels(a.labels) if a.labels else None, a.flat)
        labels('hmdb_51_labels.csv', names); split(f'train{a.split}.txt', train); split(f'val{a.split}.txt', test)
    elif a.cmd == 'kinetics':
        samples, names = kinetics_split(a.csv, read_labels(a.labels) if a.labels else None, a.subdir)
        if not a.labels: labels('labels.csv', names)
        split(f'{Path(a.csv).stem}.txt', samples)
    elif a.cmd == 'ssv2':
        samples, names = ssv2_split(a.json, a.labels_json)
        stem = Path(a.json).stem.removeprefix('something-something-v2-')
        labels('ssv2_labels.csv', names); split(f'{stem}.txt', samples)
    elif a.cmd == 'few-shot':
        names, samples = read_labels(a.labels), read_split(a.split)
        for k in a.k: split(f'{a.prefix}_few_shot_{k}.txt', few_shot_split(samples, k, a.seed, class_names=names))
    elif a.cmd == 'base-novel':
        f = base_novel_files(read_split(a.train), read_split(a.test), read_labels(a.labels), a.rule, a.seed, a.shots)
        labels(f'{a.name}_base_labels.csv', f.pop('base_labels')); labels(f'{a.name}_novel_labels.csv', f.pop('novel_labels'))
        for name, samples in f.items(): split(f'{name}.txt', samples)
    for w in written: print(w)
    return written


if __name__ == '__main__':
    main()
