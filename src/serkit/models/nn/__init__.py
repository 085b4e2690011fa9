"""Torch networks for SER (spectrogram / MFCC CNNs, CRNN, MLP, hybrid) and their registry."""
from serkit.models.nn.cnn import SERNetwork, SpectrogramCNN
from serkit.models.nn.registry import NETWORKS, NetworkEntry, build_network

__all__ = ["NETWORKS", "NetworkEntry", "SERNetwork", "SpectrogramCNN", "build_network"]
