"""A fitted torch network as a predictor: input shaping, the fitted scaler, batched inference.

:class:`TorchNetworkPredictor` is the inference half of
:class:`~serkit.models.torch_estimator.TorchClassifier` (which adds training with the Lightning
engine). It imports no training code, so a saved network (:mod:`serkit.models.persist`) loads in
:mod:`serkit.inference` from its spec and safetensors weights alone.

Inputs by network kind (see :data:`serkit.models.nn.registry.NETWORKS`):

* ``"image"``: ``(n, H, W)`` or ``(n, C, H, W)`` (H = frequency bins, W = frames);
* ``"sequence"``: ``(n, T)`` or ``(n, C, T)``;
* ``"vector"``: ``(n, F)`` (a DataFrame works);
* ``"hybrid"``: ``{"spec": (n, [C,] H, W), "scalars": (n, S)}``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from serkit.models.nn.registry import NETWORKS, build_network

__all__ = ["TorchNetworkPredictor", "predict_batches"]


def _take(X, idx):
    return {k: v[idx] for k, v in X.items()} if isinstance(X, Mapping) else X[idx]


def _n_samples(X) -> int:
    return len(next(iter(X.values()))) if isinstance(X, Mapping) else len(X)


def _tensor(x, device) -> torch.Tensor | dict[str, torch.Tensor]:
    if isinstance(x, Mapping):
        return {k: torch.as_tensor(np.asarray(v), dtype=torch.float32).to(device) for k, v in x.items()}
    return torch.as_tensor(np.asarray(x), dtype=torch.float32).to(device)


@torch.inference_mode()
def predict_batches(network: nn.Module, X: np.ndarray | Mapping[str, np.ndarray], *,
                    batch_size: int = 256, fn: str = "forward", device: str | torch.device = "cpu",
                    ) -> np.ndarray:
    """Run ``network.<fn>`` (``forward`` → logits, ``embed``) over ``X`` in eval mode, batch by batch."""
    network.eval().to(device)
    method = network if fn == "forward" else getattr(network, fn)
    out = []
    for i in range(0, _n_samples(X), batch_size):
        out.append(method(_tensor(_take(X, slice(i, i + batch_size)), device)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


class TorchNetworkPredictor:
    """Fitted network ``network_`` (registry name ``network``), scaler ``scaler_``, ``classes_``.

    Attributes read here: ``network``, ``network_``, ``scaler_`` (``{"x" | "spec" | "scalars":
    (mean, std)}``), ``classes_``, ``eval_batch_size``, ``accelerator``, ``gradcam_target_``.
    """

    network: str
    eval_batch_size: int = 256
    accelerator: str = "auto"

    # ------------------------------------------------------------------------------ input handling
    def _kind(self) -> str:
        if self.network not in NETWORKS:
            raise KeyError(f"unknown network {self.network!r}; choose from {sorted(NETWORKS)}")
        return NETWORKS[self.network].kind

    def _shape_input(self, X):
        kind = self._kind()
        if kind == "hybrid":
            if not isinstance(X, Mapping):
                spec, scalars = X
                X = {"spec": spec, "scalars": scalars}
            spec = np.asarray(X["spec"], dtype=np.float32)
            if spec.ndim == 3:
                spec = spec[:, None]
            scalars = np.asarray(X["scalars"], dtype=np.float32).reshape(len(spec), -1)
            return {"spec": spec, "scalars": scalars}
        X = np.asarray(X, dtype=np.float32)
        if kind == "vector":
            return X.reshape(len(X), -1)
        want = 4 if kind == "image" else 3
        if X.ndim == want - 1:
            X = X[:, None]
        if X.ndim != want:
            raise ValueError(f"network {self.network!r} expects {want - 1}-D or {want}-D per-batch "
                             f"input, got shape {X.shape}")
        return X

    def _transform(self, X):
        def norm(a, key):
            if key in self.scaler_:
                mean, std = self.scaler_[key]
                a = (a - mean) / std
            return np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32, copy=False)

        if isinstance(X, Mapping):
            return {k: norm(v, k) for k, v in X.items()}
        return norm(X, "x")

    def _prepare(self, X):
        """Shape and standardise ``X`` as the fitted network expects (public for Grad-CAM)."""
        return self._transform(self._shape_input(X))

    # ---------------------------------------------------------------------------------- inference
    def _device(self) -> torch.device:
        use_gpu = self.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
        return torch.device("cuda" if use_gpu else "cpu")

    def _run(self, X, fn: str) -> np.ndarray:
        if not hasattr(self, "network_"):
            raise AttributeError(f"{type(self).__name__} is not fitted yet")
        out = predict_batches(self.network_, self._prepare(X), batch_size=self.eval_batch_size,
                              fn=fn, device=self._device())
        self.network_.cpu()
        return out

    def decision_function(self, X) -> np.ndarray:
        """Logits ``(n, n_classes)``."""
        return self._run(X, "forward")

    def predict_proba(self, X) -> np.ndarray:
        logits = self.decision_function(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.decision_function(X).argmax(axis=1)]

    def embed(self, X) -> np.ndarray:
        """Penultimate-layer representation ``(n, d)``."""
        return self._run(X, "embed")

    def attention(self, X) -> np.ndarray | None:
        """Attention weights over time ``(n, T')`` of networks with attention pooling, else None."""
        if not hasattr(self.network_, "last_attention"):
            return None
        Xp = self._prepare(X)
        out = []
        self.network_.eval()
        with torch.inference_mode():
            for i in range(0, _n_samples(Xp), self.eval_batch_size):
                self.network_(_tensor(_take(Xp, slice(i, i + self.eval_batch_size)), "cpu"))
                out.append(self.network_.last_attention.cpu().numpy())
        return np.concatenate(out)

    # ---------------------------------------------------------------------------------- persistence
    def export_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Spec (network name, its parameters, input shape, classes) and arrays (weights, scaler)."""
        shape = self.input_shape_
        spec = {"network": self.network, "network_params": dict(getattr(self, "network_params", None) or {}),
                "input_shape": {k: list(v) for k, v in shape.items()} if isinstance(shape, Mapping)
                else list(shape),
                "classes": [str(c) for c in self.classes_], "eval_batch_size": int(self.eval_batch_size),
                "scaler_keys": sorted(self.scaler_), "gradcam_target": self.gradcam_target_}
        arrays = {f"network.{k}": v.detach().cpu().numpy() for k, v in self.network_.state_dict().items()}
        for key, (mean, std) in self.scaler_.items():
            arrays[f"scaler.{key}.mean"] = np.asarray(mean, np.float32)
            arrays[f"scaler.{key}.std"] = np.asarray(std, np.float32)
        return spec, arrays

    @classmethod
    def from_export_state(cls, spec: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
                          ) -> "TorchNetworkPredictor":
        self = cls.__new__(cls)
        self.network = spec["network"]
        self.network_params = dict(spec.get("network_params") or {})
        self.classes_ = np.asarray(spec["classes"])
        self.eval_batch_size = int(spec.get("eval_batch_size", 256))
        self.accelerator = "cpu"
        shape = spec["input_shape"]
        self.input_shape_ = {k: tuple(v) for k, v in shape.items()} if isinstance(shape, Mapping) \
            else tuple(shape)
        net = build_network(self.network, len(self.classes_), self.input_shape_, **self.network_params)
        state = {k[len("network."):]: torch.from_numpy(np.array(v)) for k, v in arrays.items()
                 if k.startswith("network.")}
        net.load_state_dict(state)
        self.network_ = net.eval()
        self.scaler_ = {k: (np.asarray(arrays[f"scaler.{k}.mean"]), np.asarray(arrays[f"scaler.{k}.std"]))
                        for k in spec.get("scaler_keys", [])}
        self.gradcam_target_ = spec.get("gradcam_target")
        return self
