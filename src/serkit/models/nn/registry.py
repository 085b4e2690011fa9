"""Registry of the networks: ``NETWORKS[name](n_classes=..., input_shape=..., **kwargs)``.

Each entry is a :class:`NetworkEntry`, a callable factory that also records the input kind
("image" ``[C, H, W]``, "sequence" ``[C, T]``, "vector" ``[F]``, "hybrid" ``{"spec", "scalars"}``) and
the nominal per-sample input shape the published system used.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from serkit.models.nn import alexnet as _alexnet
from serkit.models.nn import cnn as _cnn
from serkit.models.nn import crnn as _crnn
from serkit.models.nn import hybrid as _hybrid
from serkit.models.nn import mlp as _mlp
from serkit.models.nn.cnn import SERNetwork


@dataclass(frozen=True)
class NetworkEntry:
    factory: Callable[..., SERNetwork]
    kind: str
    nominal_shape: Any
    description: str

    def __call__(self, n_classes: int, input_shape: Any = None, **kwargs: Any) -> SERNetwork:
        return self.factory(n_classes, self.nominal_shape if input_shape is None else input_shape,
                            **kwargs)


NETWORKS: dict[str, NetworkEntry] = {
    "mlp_001": NetworkEntry(_mlp.mlp_001, "vector", (180,),
                            "study 001 MLP 256-128-64 on handcrafted features"),
    "cnn3": NetworkEntry(_cnn.cnn3, "image", (1, 128, 128), "study 001 CNN-3 on 128x128 mel"),
    "cnn4": NetworkEntry(_cnn.cnn4, "image", (1, 128, 128), "study 001 CNN-4 on 128x128 mel"),
    "cnn5": NetworkEntry(_cnn.cnn5, "image", (1, 128, 128), "study 001 CNN-5 on 128x128 mel"),
    "cnn_mlp": NetworkEntry(_hybrid.cnn_mlp, "hybrid", {"spec": (1, 40, 128), "scalars": (32,)},
                            "study 001 CNN + MLP hybrid (spectrogram + scalar features)"),
    "alexnet": NetworkEntry(_alexnet.alexnet, "image", (1, 128, 376),
                            "study 002 M1 AlexNet on mel (STFT 256 / hop 128)"),
    "mfcc_cnn_003": NetworkEntry(_cnn.mfcc_cnn_003, "image", (1, 41, 216),
                                 "study 003 MFCC1 deep CNN on 40 MFCC + RMS"),
    "mfcc_crnn_003": NetworkEntry(_crnn.mfcc_crnn_003, "image", (1, 41, 216),
                                  "study 003 MFCC2 CNN + BiLSTM + attention"),
    "logmel_cnn_003": NetworkEntry(_cnn.logmel_cnn_003, "image", (1, 128, 126),
                                   "study 003 MS CNN on 128x126 log-mel"),
    "cnn1d_mfcc": NetworkEntry(_cnn.cnn1d_mfcc, "sequence", (1, 216),
                               "study 003 baseline 1-D CNN on an MFCC sequence"),
    "mfcc_cnn_000": NetworkEntry(_cnn.mfcc_cnn_000, "image", (1, 40, 157),
                                 "study 000 MFCC CNN baseline (serkit sizes)"),
}


def build_network(name: str, n_classes: int, input_shape: Any = None, **kwargs: Any) -> SERNetwork:
    """Instantiate registered network ``name``; unknown names raise ``KeyError`` listing the choices."""
    try:
        entry = NETWORKS[name]
    except KeyError:
        raise KeyError(f"unknown network {name!r}; choose from {sorted(NETWORKS)}") from None
    return entry(n_classes, input_shape, **kwargs)
