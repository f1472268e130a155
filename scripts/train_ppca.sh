#!/usr/bin/env bash
# Rebuild the data sets and refit the shipped PPCA checkpoints (seconds, deterministic on the CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
studio data build mnist-5k --out data/mnist-5k
studio data build emoji-32 --out data/emoji-32
studio train ppca --data data/mnist-5k/train --out models/ppca-mnist --seed 0 \
    --set name=ppca-mnist --set size=28 --set color=gray --set components=32 --set holdout=data/mnist-5k/test
studio train ppca --data data/emoji-32/train --out models/ppca-emoji --seed 0 \
    --set name=ppca-emoji --set size=32 --set color=rgb --set components=64 --set holdout=data/emoji-32/test
