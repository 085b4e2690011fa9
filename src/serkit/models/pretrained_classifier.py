"""Study 001's pretrained-SER path: a ``Wav2Vec2ForSequenceClassification`` checkpoint, backbone
frozen, classifier retrained on the corpus.

The checkpoint (hub id such as ``ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition`` or a
local folder) is loaded with ``AutoModelForAudioClassification``. Its ``id2label`` names are mapped
to serkit's canonical emotions (``fearful`` → ``fear``, ``surprised`` → ``surprise``, ``ang`` →
``angry``...); the corpus classes that the checkpoint knows start from the checkpoint's own output
rows, the others from a fresh initialisation. Only the classification head (``projector`` +
``classifier``) is trained: Adam 1e-4, label smoothing .1, 5 epochs (the paper's recipe).

Because the backbone is frozen and Hugging Face's head is ``classifier(mean_t(projector(h_t)))``
with a linear ``projector``, ``mean_t(projector(h_t)) == projector(mean_t(h_t))``: the frozen
backbone runs once per file (pooled last hidden state cached in memory) and the head trains on
those vectors, which gives exactly the gradients of end-to-end training with a frozen encoder.

Caution (reported in the study's own text): that checkpoint was trained on RAVDESS, so RAVDESS
test speakers were seen in pre-training whatever the split; serkit labels such runs as leaky.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from serkit.config import SAMPLE_RATE
from serkit.corpora.manifest import EMOTION_SPELLINGS, canonical_emotion
from serkit.models.nn.finetune_net import as_waveforms

__all__ = ["PretrainedSERClassifier", "canonical_emotion", "map_checkpoint_labels", "pretrained_classifier"]

#: re-exported from :mod:`serkit.corpora.manifest`, which holds serkit's one emotion vocabulary:
#: canonical emotion -> names / abbreviations used by checkpoints and corpora
SYNONYMS = EMOTION_SPELLINGS


def map_checkpoint_labels(id2label: dict, classes) -> dict[str, int | None]:
    """Corpus class → checkpoint output index (None when the checkpoint has no such emotion)."""
    by_canon: dict[str, int] = {}
    for i, name in sorted(((int(k), v) for k, v in id2label.items())):
        c = canonical_emotion(name)
        if c is not None and c not in by_canon:
            by_canon[c] = i
    return {str(c): by_canon.get(canonical_emotion(c) or str(c)) for c in classes}


class PretrainedSERClassifier(ClassifierMixin, BaseEstimator):
    """Frozen ``Wav2Vec2ForSequenceClassification`` backbone + retrained head (raw waveforms in).

    Parameters
    ----------
    checkpoint : str
        Hub id or folder of an audio-classification checkpoint.
    lr, label_smoothing, max_epochs, batch_size, weight_decay : head training (Adam).
    keep_checkpoint_rows : bool
        Start the output rows of known emotions from the checkpoint's rows.
    max_seconds : float or None
        Crop longer waveforms.
    device : "auto", "cpu" or "cuda".
    """

    accepts_groups = True

    def __init__(self, checkpoint: str = "ehcalabres/wav2vec2-lg-xlsr-en-speech-emotion-recognition",
                 lr: float = 1e-4, label_smoothing: float = 0.1, max_epochs: int = 5, batch_size: int = 16,
                 weight_decay: float = 0.0, keep_checkpoint_rows: bool = True,
                 max_seconds: float | None = None, device: str = "auto", seed: int = 42):
        self.checkpoint = checkpoint
        self.lr = lr
        self.label_smoothing = label_smoothing
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.keep_checkpoint_rows = keep_checkpoint_rows
        self.max_seconds = max_seconds
        self.device = device
        self.seed = seed

    # ------------------------------------------------------------------ model parts
    def _dev(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _load(self):
        from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

        model = AutoModelForAudioClassification.from_pretrained(self.checkpoint)
        try:
            fe = AutoFeatureExtractor.from_pretrained(self.checkpoint)
        except (OSError, ValueError):
            from transformers import Wav2Vec2FeatureExtractor

            fe = Wav2Vec2FeatureExtractor(do_normalize=True)
        if not hasattr(model, "projector") or not hasattr(model, "classifier"):
            raise ValueError(f"{self.checkpoint}: expected a *ForSequenceClassification model with "
                             f"projector + classifier, got {type(model).__name__}")
        return model.eval(), fe

    def _encoder(self, model) -> nn.Module:
        return getattr(model, model.base_model_prefix)

    @torch.inference_mode()
    def _pooled(self, X) -> np.ndarray:
        """Mean over time of the (optionally layer-weighted) hidden states, one file at a time."""
        model, fe = self.model_, self.feature_extractor_
        dev = self._dev()
        model.to(dev)
        enc = self._encoder(model)
        out = []
        for w in as_waveforms(X):
            if self.max_seconds:
                w = w[: int(self.max_seconds * SAMPLE_RATE)]
            inp = fe(w, sampling_rate=SAMPLE_RATE, return_tensors="pt")
            x = inp["input_values"].to(dev)
            weighted = getattr(model.config, "use_weighted_layer_sum", False)
            o = enc(x, output_hidden_states=weighted, return_dict=True)
            if weighted:
                hs = torch.stack(o.hidden_states, dim=1)
                norm = torch.softmax(model.layer_weights, dim=-1)
                h = (hs * norm.view(-1, 1, 1)).sum(dim=1)
            else:
                h = o.last_hidden_state
            out.append(h.mean(dim=1)[0].float().cpu())
        model.cpu()
        return torch.stack(out).numpy() if out else np.zeros((0, model.config.hidden_size), np.float32)

    def preflight(self, sample, n_classes: int) -> None:
        """Nothing to check without loading the checkpoint (done at fit time)."""
        if int(self.max_epochs) < 1 or int(self.batch_size) < 1:
            raise ValueError("max_epochs and batch_size must be at least 1")

    # ------------------------------------------------------------------ fit / predict
    def fit(self, X, y, groups=None) -> PretrainedSERClassifier:
        torch.manual_seed(self.seed)
        y = np.asarray(y).astype(str)
        self.classes_ = np.unique(y)
        self.model_, self.feature_extractor_ = self._load()
        self.model_.requires_grad_(False)
        id2label = dict(self.model_.config.id2label)
        self.label_map_ = map_checkpoint_labels(id2label, self.classes_)
        self.checkpoint_labels_ = {int(k): v for k, v in id2label.items()}

        old = self.model_.classifier
        new = nn.Linear(old.in_features, len(self.classes_))
        if self.keep_checkpoint_rows:
            with torch.no_grad():
                for j, c in enumerate(self.classes_):
                    i = self.label_map_[str(c)]
                    if i is not None and i < old.out_features:
                        new.weight[j] = old.weight[i]
                        new.bias[j] = old.bias[i]
        self.head_ = nn.Sequential(copy.deepcopy(self.model_.projector), new)
        self.head_.requires_grad_(True)
        self.model_.projector, self.model_.classifier = self.head_[0], self.head_[1]
        self.model_.config.num_labels = len(self.classes_)
        self.model_.config.id2label = {j: str(c) for j, c in enumerate(self.classes_)}
        self.model_.config.label2id = {str(c): j for j, c in enumerate(self.classes_)}

        Z = torch.from_numpy(self._pooled(X))
        t = torch.from_numpy(np.searchsorted(self.classes_, y)).long()
        opt = torch.optim.Adam(self.head_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = nn.CrossEntropyLoss(label_smoothing=self.label_smoothing)
        gen = torch.Generator().manual_seed(self.seed)
        self.history_ = []
        self.head_.train()
        for epoch in range(int(self.max_epochs)):
            perm = torch.randperm(len(Z), generator=gen)
            tot, correct = 0.0, 0
            for i in range(0, len(Z), self.batch_size):
                b = perm[i:i + self.batch_size]
                logits = self.head_(Z[b])
                loss = loss_fn(logits, t[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += float(loss.detach()) * len(b)
                correct += int((logits.argmax(1) == t[b]).sum())
            self.history_.append({"epoch": epoch + 1, "train_loss": tot / len(Z),
                                  "val_loss": float("nan"), "train_acc": correct / len(Z),
                                  "val_acc": float("nan"), "lr": self.lr})
        self.head_.eval()
        return self

    @torch.inference_mode()
    def decision_function(self, X) -> np.ndarray:
        Z = torch.from_numpy(self._pooled(X))
        return self.head_.eval()(Z).numpy()

    def predict_proba(self, X) -> np.ndarray:
        return torch.softmax(torch.from_numpy(self.decision_function(X)), dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]

    @torch.inference_mode()
    def embed(self, X) -> np.ndarray:
        """The projector output (the classifier's input), ``(n, classifier_proj_size)``."""
        return self.head_[0](torch.from_numpy(self._pooled(X))).numpy()

    # ------------------------------------------------------------------ persistence
    # (weight-norm parametrised convolutions cannot be pickled: config + weights instead)
    def export_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        fe = self.feature_extractor_
        spec = {"config": self.model_.config.to_dict(), "fe_class": type(fe).__name__, "fe": fe.to_dict(),
                "classes": [str(c) for c in self.classes_], "max_seconds": self.max_seconds,
                "checkpoint": self.checkpoint}
        return spec, {k: v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}

    @classmethod
    def from_export_state(cls, spec: dict, arrays: dict[str, np.ndarray]) -> "PretrainedSERClassifier":
        import transformers
        from transformers import AutoConfig, AutoModelForAudioClassification

        self = cls(checkpoint=spec.get("checkpoint", ""), max_seconds=spec.get("max_seconds"), device="cpu")
        cfg = dict(spec["config"])
        config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
        model = AutoModelForAudioClassification.from_config(config)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self.model_ = model.eval().requires_grad_(False)
        fe_cls = getattr(transformers, spec["fe_class"])
        if not spec["fe_class"].endswith("FeatureExtractor"):
            raise ValueError(f"unexpected feature extractor class {spec['fe_class']!r}")
        self.feature_extractor_ = fe_cls.from_dict(dict(spec["fe"]))
        self.head_ = nn.Sequential(self.model_.projector, self.model_.classifier).eval()
        self.classes_ = np.asarray(spec["classes"])
        return self

    def save_pretrained(self, path: str) -> None:
        """Write the adapted checkpoint (frozen backbone + retrained head, corpus labels)."""
        self.model_.save_pretrained(path)
        self.feature_extractor_.save_pretrained(path)


def pretrained_classifier(params: dict, seed: int) -> PretrainedSERClassifier:
    """The ``pretrained_ser`` model of :data:`serkit.models.registry.MODELS`."""
    return PretrainedSERClassifier(seed=seed, **params)
