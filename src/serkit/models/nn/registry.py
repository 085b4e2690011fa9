"""Registry of the networks: ``NETWORKS[name](n_classes=..., input_shape=..., **kwargs)``.

A plain table: each :class:`NetworkEntry` names its factory as ``"module:function"`` (imported on
first use, so listing networks imports no torch), the input kind ("image" ``[C, H, W]``,
"sequence" ``[C, T]``, "vector" ``[F]``, "hybrid" ``{"spec", "scalars"}``) and the nominal
per-sample input shape the published system used. The ``head_*`` entries are the pooled-embedding
heads of :mod:`serkit.models.nn.heads` (trained by ``TorchClassifier`` on ``ssl`` features).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from serkit._lazy import resolve

__all__ = ["NETWORKS", "NetworkEntry", "build_network"]


@dataclass(frozen=True)
class NetworkEntry:
    factory: str
    kind: str
    nominal_shape: Any
    description: str
    #: keyword arguments the factory always gets (e.g. which head a ``head_*`` entry builds)
    fixed: dict[str, Any] = field(default_factory=dict)

    def __call__(self, n_classes: int, input_shape: Any = None, **kwargs: Any):
        fn = resolve(self.factory)
        return fn(n_classes, self.nominal_shape if input_shape is None else input_shape,
                  **self.fixed, **kwargs)


_CNN, _HEAD = "serkit.models.nn.cnn", "serkit.models.nn.heads:head_network"

NETWORKS: dict[str, NetworkEntry] = {
    "mlp_001": NetworkEntry("serkit.models.nn.mlp:mlp_001", "vector", (180,),
                            "study 001 MLP 256-128-64 on handcrafted features"),
    "cnn3": NetworkEntry(f"{_CNN}:cnn3", "image", (1, 128, 128), "study 001 CNN-3 on 128x128 mel"),
    "cnn4": NetworkEntry(f"{_CNN}:cnn4", "image", (1, 128, 128), "study 001 CNN-4 on 128x128 mel"),
    "cnn5": NetworkEntry(f"{_CNN}:cnn5", "image", (1, 128, 128), "study 001 CNN-5 on 128x128 mel"),
    "cnn_mlp": NetworkEntry("serkit.models.nn.hybrid:cnn_mlp", "hybrid",
                            {"spec": (1, 40, 128), "scalars": (32,)},
                            "study 001 CNN + MLP hybrid (spectrogram + scalar features)"),
    "alexnet": NetworkEntry("serkit.models.nn.alexnet:alexnet", "image", (1, 128, 376),
                            "study 002 M1 AlexNet on mel (STFT 256 / hop 128)"),
    "mfcc_cnn_003": NetworkEntry(f"{_CNN}:mfcc_cnn_003", "image", (1, 41, 216),
                                 "study 003 MFCC1 deep CNN on 40 MFCC + RMS"),
    "mfcc_crnn_003": NetworkEntry("serkit.models.nn.crnn:mfcc_crnn_003", "image", (1, 41, 216),
                                  "study 003 MFCC2 CNN + BiLSTM + attention"),
    "logmel_cnn_003": NetworkEntry(f"{_CNN}:logmel_cnn_003", "image", (1, 128, 126),
                                   "study 003 MS CNN on 128x126 log-mel"),
    "cnn1d_mfcc": NetworkEntry(f"{_CNN}:cnn1d_mfcc", "sequence", (1, 216),
                               "study 003 baseline 1-D CNN on an MFCC sequence"),
    "mfcc_cnn_000": NetworkEntry(f"{_CNN}:mfcc_cnn_000", "image", (1, 40, 157),
                                 "study 000 MFCC CNN baseline (serkit sizes)"),
    # heads on pooled self-supervised embeddings
    "head_mlp_000": NetworkEntry(_HEAD, "vector", (768,), "study 000 MLP head on pooled wav2vec2 "
                                 "embeddings", {"head": "mlp_000"}),
    "head_mlp_001": NetworkEntry(_HEAD, "vector", (768,), "study 001 768-256-C head on pooled "
                                 "wav2vec2 embeddings", {"head": "mlp_001"}),
    "head_hubert_003": NetworkEntry(_HEAD, "vector", (1536,), "study 003 HuBERT mean+std head "
                                    "(residual + self-attention)", {"head": "hubert_003"}),
    "head_w2v2_003": NetworkEntry(_HEAD, "vector", (768,), "study 003 wav2vec2 128-64-C head",
                                  {"head": "w2v2_003"}),
    "head_linear": NetworkEntry(_HEAD, "vector", (768,), "linear probe", {"head": "linear"}),
    "head_layers": NetworkEntry(_HEAD, "vector", (5 * 768,), "softmax-weighted sum of every encoder "
                                "layer's pooled statistics + MLP (ssl features, layers: all; set "
                                "network_params.n_layers)", {"head": "layer_weighted"}),
}


def build_network(name: str, n_classes: int, input_shape: Any = None, **kwargs: Any):
    """Instantiate registered network ``name``; unknown names raise ``KeyError`` listing the choices."""
    try:
        entry = NETWORKS[name]
    except KeyError:
        raise KeyError(f"unknown network {name!r}; choose from {sorted(NETWORKS)}") from None
    return entry(n_classes, input_shape, **kwargs)
