"""Grad-CAM (Selvaraju et al.) on the last convolutional layer of any serkit CNN.

For the target class score ``y_c`` and the layer's activations ``A`` ``[B, K, h, w]``, the weights are
the spatially averaged gradients ``α_k = mean(∂y_c / ∂A_k)`` and the map is ``ReLU(Σ_k α_k A_k)``,
bilinearly upsampled to the input's ``(H, W)`` and min-max normalised to [0, 1] per example (an
all-zero map stays zero). 1-D CNNs give ``[B, 1, T]``. Study 003 applies it to its MFCC and log-mel
CNNs; serkit's CLI (``serkit explain gradcam RUN_DIR``) calls :func:`gradcam_for_estimator`.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class GradCAM:
    """Grad-CAM with a forward hook (and a gradient hook on its output) on ``layer_name`` (default ``network.gradcam_layer``)."""

    def __init__(self, network: nn.Module, layer_name: str | None = None) -> None:
        self.network = network
        self.layer_name = layer_name or getattr(network, "gradcam_layer", None)
        if not self.layer_name:
            raise ValueError(f"{type(network).__name__} has no convolutional layer for Grad-CAM")
        modules = dict(network.named_modules())
        if self.layer_name not in modules:
            raise KeyError(f"layer {self.layer_name!r} not found in {type(network).__name__}")
        self.layer = modules[self.layer_name]

    def __call__(self, x: torch.Tensor | Mapping[str, torch.Tensor],
                 class_index: int | np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """Maps for a batch ``x``; ``class_index`` None → the predicted class of each example."""
        store: dict[str, torch.Tensor] = {}

        def fwd_hook(_m, _inp, out):
            # forward hook stores the activation; a hook on it captures its gradient on backward
            store["act"] = out
            if out.requires_grad:
                out.register_hook(lambda g: store.__setitem__("grad", g))

        h1 = self.layer.register_forward_hook(fwd_hook)
        was_training = self.network.training
        self.network.eval()
        try:
            with torch.enable_grad():
                if isinstance(x, Mapping):
                    ref = x["spec"]
                else:
                    ref = x
                logits = self.network(x)
                if class_index is None:
                    idx = logits.argmax(1)
                else:
                    idx = torch.as_tensor(class_index, device=logits.device).long().reshape(-1)
                    if idx.numel() == 1:
                        idx = idx.expand(logits.shape[0])
                score = logits.gather(1, idx[:, None]).sum()
                self.network.zero_grad(set_to_none=True)
                score.backward()
        finally:
            h1.remove()
            self.network.train(was_training)
        act, grad = store["act"].detach(), store["grad"].detach()
        spatial = tuple(range(2, act.dim()))
        weights = grad.mean(dim=spatial, keepdim=True)
        cam = F.relu((weights * act).sum(dim=1, keepdim=True))     # [B, 1, h, w] or [B, 1, t]
        if cam.dim() == 3:
            cam = F.interpolate(cam, size=ref.shape[-1], mode="linear", align_corners=False)
        else:
            cam = F.interpolate(cam, size=tuple(ref.shape[-2:]), mode="bilinear", align_corners=False)
            cam = cam[:, 0]
        flat = cam.reshape(cam.shape[0], -1)
        lo = flat.min(1, keepdim=True).values
        hi = flat.max(1, keepdim=True).values
        flat = torch.where(hi - lo > 1e-12, (flat - lo) / (hi - lo).clamp_min(1e-12),
                           torch.zeros_like(flat))
        return flat.reshape(cam.shape).clamp(0, 1).cpu().numpy().astype(np.float32)


def gradcam_for_estimator(estimator: Any, X: Any, class_index: int | str | np.ndarray | None = None,
                          *, batch_size: int = 32, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM maps of a fitted :class:`~serkit.models.torch_estimator.TorchClassifier`.

    Parameters
    ----------
    X : raw inputs as given to ``predict`` (standardised here like the estimator does).
    class_index : None (predicted class), an int / label string for all examples, or one per example.

    Returns
    -------
    ndarray ``[n, H, W]`` (``[n, 1, T]`` for 1-D CNNs) with values in [0, 1].
    """
    net = estimator.network_
    cam = GradCAM(net, layer_name or getattr(estimator, "gradcam_target_", None))
    Xp = estimator._prepare(X)
    n = len(next(iter(Xp.values()))) if isinstance(Xp, Mapping) else len(Xp)
    if class_index is not None:
        arr = np.atleast_1d(np.asarray(class_index))
        if arr.dtype.kind in "USO":
            arr = np.searchsorted(estimator.classes_, arr.astype(str))
        targets = np.broadcast_to(arr.astype(np.int64), (n,)).copy()
    net.cpu()
    out = []
    for i in range(0, n, batch_size):
        sl = slice(i, i + batch_size)
        xb = ({k: torch.as_tensor(v[sl]) for k, v in Xp.items()} if isinstance(Xp, Mapping)
              else torch.as_tensor(Xp[sl]))
        out.append(cam(xb, None if class_index is None else targets[sl]))
    return np.concatenate(out) if out else np.zeros((0,), dtype=np.float32)


def save_gradcam_png(cam_map: np.ndarray, spec: np.ndarray, path: str | Path,
                     title: str | None = None) -> Path:
    """Save the input spectrogram and its Grad-CAM overlay side by side (matplotlib, Agg canvas).

    ``cam_map`` and ``spec`` are 2-D ``[H, W]`` (a leading singleton axis is squeezed); frequency
    runs upwards.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cam_map = np.squeeze(np.asarray(cam_map, dtype=np.float32))
    spec = np.squeeze(np.asarray(spec, dtype=np.float32))
    if spec.ndim == 1:
        spec = spec[None]
    if cam_map.ndim == 1:
        cam_map = cam_map[None]
    fig = Figure(figsize=(10, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    ax1.imshow(spec, origin="lower", aspect="auto", cmap="magma")
    ax1.set_title("input")
    ax1.set_xlabel("frame")
    ax1.set_ylabel("bin")
    ax2.imshow(spec, origin="lower", aspect="auto", cmap="gray")
    im = ax2.imshow(cam_map, origin="lower", aspect="auto", cmap="jet", alpha=0.5, vmin=0, vmax=1,
                    extent=(-0.5, spec.shape[1] - 0.5, -0.5, spec.shape[0] - 0.5))
    ax2.set_title("Grad-CAM")
    ax2.set_xlabel("frame")
    fig.colorbar(im, ax=ax2, fraction=0.046, pad=0.02)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
