"""Torch networks for SER (spectrogram / MFCC CNNs, CRNN, MLP, hybrid, embedding heads) and their
registry. Importing this package does not import torch; the network modules do."""
from serkit.models.nn.registry import NETWORKS, NetworkEntry, build_network

__all__ = ["NETWORKS", "NetworkEntry", "SERNetwork", "SpectrogramCNN", "build_network"]


def __getattr__(name: str):
    if name in ("SERNetwork", "SpectrogramCNN"):
        from serkit.models.nn import cnn

        return getattr(cnn, name)
    raise AttributeError(name)
