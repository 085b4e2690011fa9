"""Self-supervised / ASR speech backbones from Hugging Face ``transformers``.

One wrapper, :class:`Backbone`, gives every supported architecture the same interface: raw
16 kHz waveforms in, *all* hidden states and a frame-level validity mask out.

Supported
---------
* wav2vec2, HuBERT, WavLM, data2vec-audio (and other ``AutoModel`` audio encoders that define
  ``_get_feat_extract_output_lengths``): any hub id or local folder.
* Whisper (encoder only): any hub id or local folder, plus the offline names of
  :mod:`serkit.backbones.offline` (``whisper-base``, ``whisper-tiny.en``).

Whisper is run on each batch's own length instead of the 30 s window it was trained with: the
log-mel spectrogram is computed per clip without 30 s padding, padded only to the longest clip
of the batch, and the encoder sub-modules are called directly with sliced positional embeddings
and a key-padding attention mask. Padded frames therefore do not change the valid frames' hidden
states. wav2vec2-family models are padded with zeros; the attention mask is passed when the
feature extractor asks for it (``return_attention_mask``, i.e. ``feat_extract_norm="layer"``
checkpoints), and for data2vec-audio the frame mask is re-applied between its stacked
positional convolutions. For ``feat_extract_norm="group"`` checkpoints (wav2vec2-base, HuBERT-base) Hugging
Face deliberately passes no mask, so padding *does* change their outputs slightly; batch clips of
similar length, or use batch size 1, when exact per-clip features matter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from serkit.config import SAMPLE_RATE

__all__ = ["Backbone", "load_backbone"]

log = logging.getLogger(__name__)

_HOP = 160  # Whisper mel hop (100 frames per second at 16 kHz)


def _as_numpy(wav) -> np.ndarray:
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono 1-D waveforms, got shape {wav.shape}")
    return wav


def _lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def whisper_log_mel(arrays: Sequence[np.ndarray], mel_filters: torch.Tensor | np.ndarray, n_fft: int = 400,
                    hop: int = _HOP) -> tuple[torch.Tensor, torch.Tensor]:
    """Whisper's log-mel of a batch of clips, each on its own length (no 30 s padding), as tensors:
    ``(mel [B, n_mels, T] float32, lengths [B] int64)``; frames past a clip's end are 0.

    The numbers are :func:`serkit.backbones.logmel.log_mel_batch`'s (the same front end the exported
    ONNX models use): ``WhisperFeatureExtractor``'s per clip, each clip floored at its own maximum
    minus 8, so batching changes nothing."""
    from .logmel import log_mel_batch

    mel, lengths = log_mel_batch(list(arrays), np.asarray(mel_filters, dtype=np.float32), n_fft=n_fft, hop=hop)
    return torch.from_numpy(mel), torch.from_numpy(lengths)


class Backbone(nn.Module):
    """A speech encoder that returns every hidden state with a frame mask.

    Use :func:`load_backbone` to build one. The wrapped ``transformers`` module is ``self.model``
    (a ``WhisperEncoder`` for Whisper); it is an ``nn.Module`` child, so a ``Backbone`` can be
    fine-tuned (call ``.train()``, optimise ``.parameters()``) or frozen (``torch.no_grad``).

    Attributes
    ----------
    name : str
        The name or path it was loaded from.
    kind : str
        ``"whisper"`` or ``"ssl"`` (wav2vec2 family).
    sample_rate : int
        Always 16000.
    num_layers : int
        Number of hidden states returned (transformer layers + the embedding output).
    hidden_size : int
        Width ``D`` of each hidden state.
    frame_rate : float
        Output frames per second (50 for all supported models).
    """

    sample_rate = SAMPLE_RATE

    def __init__(self, model: nn.Module, feature_extractor, kind: str, name: str):
        super().__init__()
        self.model = model
        self.feature_extractor = feature_extractor
        self.kind = kind
        self.name = name
        cfg = model.config
        layers = cfg.encoder_layers if kind == "whisper" else cfg.num_hidden_layers
        self.num_layers = int(layers) + 1
        self.hidden_size = int(cfg.d_model if kind == "whisper" else cfg.hidden_size)
        self.frame_rate = 50.0
        self.do_normalize = bool(getattr(feature_extractor, "do_normalize", False))
        self.pass_attention_mask = bool(getattr(feature_extractor, "return_attention_mask", False))
        self._frame_mask: torch.Tensor | None = None
        if kind == "ssl":
            self._mask_stacked_pos_convs()

    def _mask_stacked_pos_convs(self) -> None:
        """Zero padded frames between stacked positional conv layers (data2vec-audio).

        data2vec-audio stacks several positional convolutions; Hugging Face zeroes padded frames
        only before the first one, so the padding's non-zero activations leak into the last
        valid frames of shorter clips. Hooks re-apply the frame mask after each layer, which
        makes a padded batch match per-clip encoding.
        """
        pos = getattr(getattr(self.model, "encoder", None), "pos_conv_embed", None)
        layers = getattr(pos, "layers", None)
        if not isinstance(layers, nn.ModuleList) or len(layers) < 2:
            return

        def hook(_module, _inputs, output):  # output: [B, D, T]
            m = self._frame_mask
            if m is None or m.shape[1] != output.shape[-1]:
                return output
            return output * m[:, None, :].to(output.dtype)

        for layer in layers[:-1]:
            layer.register_forward_hook(hook)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    # ------------------------------------------------------------------ lengths
    def output_lengths(self, num_samples: torch.Tensor) -> torch.Tensor:
        """Number of valid output frames for waveforms of ``num_samples`` samples."""
        num_samples = torch.as_tensor(num_samples, dtype=torch.long)
        if self.kind == "whisper":
            mel = num_samples // _HOP
            return (mel + 1) // 2  # conv2: kernel 3, stride 2, padding 1 -> ceil(T / 2)
        return self.model._get_feat_extract_output_lengths(num_samples).long()

    # ------------------------------------------------------------------ forward
    def forward_layers(self, wavs: Sequence[np.ndarray],
                       max_layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a batch of waveforms.

        Parameters
        ----------
        wavs : sequence of 1-D float32 arrays (or tensors)
            Mono audio at 16 kHz, any lengths (Whisper: at most 30 s each).
        max_layer : int, optional
            Whisper: stop after this hidden state (0 = embedding output); the layers above it are
            not computed, and the states returned are the same as in a full pass.

        Returns
        -------
        hidden : Tensor, shape (L, B, T, D)
            All hidden states (``L = num_layers``; index 0 is the embedding output, -1 the last
            layer), on the model's device and dtype.
        mask : BoolTensor, shape (B, T)
            True for valid frames, False for padding.
        """
        arrays = [_as_numpy(w) for w in wavs]
        if not arrays:
            raise ValueError("empty batch")
        if self.kind == "whisper":
            return self._forward_whisper(arrays, max_layer)
        return self._forward_ssl(arrays)

    def forward(self, wavs: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Alias of :meth:`forward_layers`."""
        return self.forward_layers(wavs)

    def _forward_ssl(self, arrays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = torch.tensor([len(a) for a in arrays], dtype=torch.long)
        batch = np.zeros((len(arrays), int(lengths.max())), dtype=np.float32)
        for i, a in enumerate(arrays):
            if self.do_normalize:  # wav2vec2-style per-utterance zero mean / unit variance
                a = (a - a.mean()) / np.sqrt(a.var() + 1e-7)
            batch[i, : len(a)] = a
        x = torch.from_numpy(batch).to(self.device, self.dtype)
        sample_mask = _lengths_to_mask(lengths).to(self.device)
        kwargs = {"attention_mask": sample_mask.long()} if self.pass_attention_mask else {}
        frames = self.output_lengths(lengths).to(self.device)
        self._frame_mask = _lengths_to_mask(frames) if self.pass_attention_mask else None
        try:
            out = self.model(x, output_hidden_states=True, return_dict=True, **kwargs)
        finally:
            self._frame_mask = None
        hidden = torch.stack(out.hidden_states)
        frames = frames.clamp(max=hidden.shape[2])
        return hidden, _lengths_to_mask(frames, hidden.shape[2])

    def _forward_whisper(self, arrays: list[np.ndarray],
                         max_layer: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.model
        max_frames = enc.config.max_source_positions
        for a in arrays:
            if len(a) > 2 * max_frames * _HOP:
                raise ValueError(
                    f"Whisper encodes at most {2 * max_frames * _HOP / SAMPLE_RATE:.0f} s per clip; "
                    f"got {len(a) / SAMPLE_RATE:.1f} s (crop or chunk it first)"
                )
        with torch.autocast(device_type=self.device.type, enabled=False):  # the front end stays fp32
            batch, mel_len = whisper_log_mel(arrays, self._mel_filters())
        x = batch.to(self.device, self.dtype)
        mel_mask = _lengths_to_mask(mel_len).to(self.device)

        h = nn.functional.gelu(enc.conv1(x)) * mel_mask[:, None, :].to(x.dtype)
        h = nn.functional.gelu(enc.conv2(h)).permute(0, 2, 1)
        frames = ((mel_len + 1) // 2).to(self.device)  # conv2: kernel 3, stride 2, padding 1
        mask = _lengths_to_mask(frames, h.shape[1])
        h = h + enc.embed_positions.weight[: h.shape[1]].to(h.dtype)
        h = nn.functional.dropout(h, p=enc.dropout, training=self.training)
        bias = torch.zeros(mask.shape, dtype=h.dtype, device=h.device)
        bias = bias.masked_fill(~mask, torch.finfo(h.dtype).min)[:, None, None, :]
        n_run = len(enc.layers) if max_layer is None else min(max(int(max_layer), 0), len(enc.layers))
        states = [h]
        for layer in enc.layers[:n_run]:
            h = layer(h, bias)
            if isinstance(h, tuple):  # older transformers return (hidden, attn)
                h = h[0]
            states.append(h)
        if n_run == len(enc.layers):
            states[-1] = enc.layer_norm(h)  # HF convention: the last hidden state is normalised
        return torch.stack(states), mask

    def _mel_filters(self) -> torch.Tensor:
        """The feature extractor's mel filter bank ``[n_freqs, n_mels]`` as a float32 tensor."""
        if getattr(self, "_mel_fb", None) is None:
            self._mel_fb = torch.from_numpy(np.asarray(self.feature_extractor.mel_filters, np.float32))
        return self._mel_fb

    # ------------------------------------------------------------------ training helpers
    def weights_checksum(self) -> str:
        """SHA-256 over the encoder's parameters and buffers (names, dtypes, shapes, values in name
        order): identifies the weights whatever file format they came from."""
        import hashlib

        h = hashlib.sha256()
        for name, t in sorted(self.model.state_dict().items()):
            t = t.detach().cpu().contiguous()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()

    def freeze_feature_encoder(self) -> None:
        """Freeze the convolutional front end (wav2vec2 CNN / Whisper conv stem)."""
        if self.kind == "whisper":
            for mod in (self.model.conv1, self.model.conv2):
                mod.requires_grad_(False)
        else:
            self.model.freeze_feature_encoder()

    def transformer_layers(self) -> nn.ModuleList:
        """The transformer blocks (to unfreeze only the top ``k`` layers, for example)."""
        return self.model.layers if self.kind == "whisper" else self.model.encoder.layers


def _ssl_feature_extractor(path: str, config):
    from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor

    try:
        return AutoFeatureExtractor.from_pretrained(path)
    except (OSError, ValueError) as exc:
        layer_norm = getattr(config, "feat_extract_norm", "group") == "layer"
        log.warning("no feature extractor config for %s (%s); using wav2vec2 defaults", path, exc)
        return Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=layer_norm)


def load_backbone(name_or_path: str, *, device: str | torch.device = "cpu",
                  dtype: torch.dtype | None = None) -> Backbone:
    """Load a speech backbone in eval mode.

    Parameters
    ----------
    name_or_path : str
        A Hugging Face hub id or local folder (wav2vec2, HuBERT, WavLM, data2vec-audio or
        Whisper), or an offline name from :data:`serkit.backbones.offline.OFFLINE_MODELS`
        (``"whisper-base"``, ``"whisper-tiny.en"``; converted from pip-installed CTranslate2
        weights on first use).
    device : str or torch.device
        Where to put the model.
    dtype : torch.dtype, optional
        Parameter dtype (default float32).

    Returns
    -------
    Backbone
    """
    from transformers import AutoConfig, AutoModel, WhisperFeatureExtractor, WhisperModel
    from transformers.utils import logging as hf_logging

    from . import offline

    hf_logging.disable_progress_bar()  # no "Loading weights" bars in serkit's own output
    path = str(name_or_path)
    if path in offline.OFFLINE_MODELS and not Path(path).exists():
        path = str(offline.resolve(path))
    config = AutoConfig.from_pretrained(path)
    kwargs = {"dtype": dtype} if dtype is not None else {}
    if config.model_type == "whisper":
        model = WhisperModel.from_pretrained(path, **kwargs).get_encoder()
        try:
            fe = WhisperFeatureExtractor.from_pretrained(path)
        except OSError:
            fe = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
        backbone = Backbone(model, fe, "whisper", str(name_or_path))
    else:
        model = AutoModel.from_pretrained(path, **kwargs)
        if not hasattr(model, "_get_feat_extract_output_lengths"):
            raise ValueError(f"{name_or_path}: {type(model).__name__} is not a supported speech encoder")
        backbone = Backbone(model, _ssl_feature_extractor(path, config), "ssl", str(name_or_path))
    return backbone.to(device).eval()
