"""Typed experiment configuration: every default lives here.

A run is described by one YAML file validated into :class:`RunConfig`; any field can be overridden
from the command line with dotted keys (``-o protocol.kind=loso -o model.params.C=10``). Constructors
downstream take plain arguments; nothing below this module reads the config on its own.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_DATA_DIR = "../shared/datasets"
#: the sample rate every model in serkit sees (io/audio.py resamples everything to it)
SAMPLE_RATE = 16000
#: printed wherever a result used test-time speaker normalisation
TRANSDUCTIVE_NOTE = ("transductive: uses the test speakers' unlabelled utterances "
                     "(per-speaker feature normalisation)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class CorpusSpec(_Strict):
    """One corpus of the experiment, with the options of its adapter (only those it takes)."""

    name: str = Field(description="adapter name: ravdess, cremad, tess, savee, emodb, iemocap, csv, folder")
    root: str = Field(description="corpus folder or CSV file (relative paths are resolved against "
                                  "data.data_dir)")
    corpus: str | None = Field(
        None, description="csv / folder: the corpus's own name, recorded in the manifest `corpus` "
                          "column and key prefix (default: the CSV file's stem or the folder's name)")
    speaker_regex: str | None = Field(
        None, description="csv / folder: regular expression finding the speaker in a file name "
                          "(named group `speaker` or group 1; searched in the stem, then the path) "
                          "when no speaker column / folder level gives one")
    key_column: str | None = Field(
        None, description="csv: column holding a unique id per file (default: `key` when present; "
                          "else keys are paths relative to base_dir)")
    base_dir: str | None = Field(
        None, description="csv: folder that relative paths in the CSV are relative to (default: the "
                          "CSV's folder; a relative base_dir is resolved against data.data_dir)")
    demographics: str | None = Field(
        None, description="cremad: explicit VideoDemographics.csv (default: found near the root; "
                          "relative paths are resolved against data.data_dir)")

    def adapter_options(self, data_dir: Path | None = None) -> dict[str, Any]:
        """Keyword arguments for the corpus adapter: the options that are set, paths resolved
        against ``data_dir``."""
        opts: dict[str, Any] = {}
        for opt in _ADAPTER_OPTIONS:
            value = getattr(self, opt)
            if value is None:
                continue
            if opt in _PATH_OPTIONS:
                value = _resolve(value, data_dir)
            opts[opt] = value
        return opts


_ADAPTER_OPTIONS = ("corpus", "speaker_regex", "key_column", "base_dir", "demographics")
_PATH_OPTIONS = frozenset({"base_dir", "demographics"})


def _resolve(path: str, base: Path | None) -> Path:
    p = Path(os.path.expandvars(os.path.expanduser(path)))
    return p if p.is_absolute() or base is None else base / p


class DataConfig(_Strict):
    corpora: list[CorpusSpec] = Field(default_factory=lambda: [CorpusSpec(name="emodb", root="emodb")])
    data_dir: str = Field(
        default_factory=lambda: os.environ.get("SERKIT_DATA", DEFAULT_DATA_DIR),
        description="base folder for relative corpus roots (env SERKIT_DATA)")
    label_set: Literal["native", "ekman7", "four"] = "native"
    calm: Literal["drop", "neutral"] = "drop"
    boredom: Literal["drop", "neutral"] = "drop"
    excited: Literal["happy", "drop"] = "happy"
    max_per_label: int | None = Field(None, description="subsample (seeded) for quick runs")

    def _base(self) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(self.data_dir)))

    def corpus_roots(self) -> list[tuple[str, Path]]:
        """``(adapter name, root)`` per corpus, relative roots resolved against ``data_dir``."""
        return [(c.name, _resolve(c.root, self._base())) for c in self.corpora]

    def corpus_specs(self) -> list[tuple[str, Path, dict[str, Any]]]:
        """``(adapter name, root, adapter options)`` per corpus, as
        :func:`serkit.corpora.load_corpora` takes them (only the options that are set)."""
        base = self._base()
        return [(c.name, _resolve(c.root, base), c.adapter_options(base)) for c in self.corpora]


class AudioConfig(_Strict):
    """How every file is decoded before feature extraction (io/audio.py)."""

    sample_rate: int = SAMPLE_RATE
    offset_s: float = Field(0.0, ge=0, description="drop this many leading seconds (study 003: 0.5)")
    trim_silence: bool = False
    top_db: float = 30.0
    normalize: Literal["none", "zscore", "peak"] = "none"
    duration_s: float | None = Field(None, gt=0, description="crop/pad to this length; None keeps it")
    crop: Literal["start", "center"] = "start"
    min_duration_s: float = Field(
        0.25, ge=0, description="clips shorter than this (after offset and trimming, before padding) "
                                "are skipped with the reason 'too short'")
    silence_dbfs: float | None = Field(
        -60.0, description="clips whose peak level is below this many dBFS are skipped as silent "
                           "(None: no check)")


class SecondaryFeatures(_Strict):
    """A second feature stream for two-branch networks (study 001's CNN + MLP hybrid)."""

    kind: str = "handcrafted"
    params: dict[str, Any] = Field(default_factory=dict)


class FeatureConfig(_Strict):
    kind: str = "egemaps"
    params: dict[str, Any] = Field(default_factory=dict)
    secondary: SecondaryFeatures | None = Field(
        None, description="when set, models receive {'spec': primary, 'scalars': secondary (+metadata)}")
    metadata: list[str] = Field(default_factory=list,
                                description="manifest columns appended as (label-encoded) features")
    test_time_speaker_norm: bool = Field(
        False, description="TRANSDUCTIVE: z-normalise features per speaker with the statistics of all "
                           "that speaker's utterances, test utterances included (test-time adaptation; "
                           "needs many unlabelled clips of each test speaker and assumes each speaker "
                           "covers the emotions evenly). Results are labelled transductive; a model "
                           "trained with it cannot be exported as a recogniser.")
    speaker_label_warning: float = Field(
        0.5, gt=0, le=1, description="with test_time_speaker_norm: warn about speakers whose label "
                                     "distribution is at least this far (total variation distance) "
                                     "from the corpus's")
    cache_dir: str | None = Field(None, description="default: $SERKIT_CACHE or ~/.cache/serkit/features")
    n_jobs: int = 2

    @model_validator(mode="before")
    @classmethod
    def _renamed_speaker_norm(cls, data: Any) -> Any:
        if isinstance(data, dict) and "speaker_norm" in data:
            raise ValueError(
                "features.speaker_norm was renamed features.test_time_speaker_norm: it normalises each "
                "test speaker with the statistics of that speaker's own test utterances, which is "
                "transductive (test-time adaptation) and is never on by default")
        return data


class ModelConfig(_Strict):
    name: str = "svm"
    params: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] | None = Field(None, description="GridSearchCV grid (inner CV)")
    inner_folds: int = 5
    scoring: str = "balanced_accuracy"
    save: bool = True


class CalibrationConfig(_Strict):
    """Probability calibration (serkit.models.calibration): temperature scaling fitted on inner
    validation data of the training part only, never on the test fold."""

    method: Literal["none", "temperature"] = Field(
        "none", description="temperature: divide the model's log-probabilities by one scalar T fitted "
                            "by minimising the NLL on held-out training speakers (the predicted label "
                            "never changes, only the confidence); saved with the model")
    split: Literal["holdout", "model_validation"] = Field(
        "holdout", description="where T is fitted: holdout = a speaker-grouped share (val_fraction) of "
                               "the training part is kept out of model fitting; model_validation = "
                               "the speakers the model itself held out for early stopping (torch "
                               "networks with val_fraction > 0; the weights are the same as without "
                               "calibration)")
    val_fraction: float = Field(
        0.1, gt=0, lt=1, description="split=holdout: share of the training data (speaker-grouped when "
                                     "there are speakers) held out to fit T")


#: names of the waveform augmentations (serkit.training.augmentation.WAVEFORM_AUGMENTATIONS; a test
#: keeps the two in step — the config layer cannot import the registry)
WAVEFORM_AUGMENTATION_NAMES = ("babble", "gain", "gaussian_noise", "pink_noise", "pitch_shift",
                               "telephone", "time_stretch", "white_noise")


class AugmentConfig(_Strict):
    """Train-time waveform augmentation (serkit.evaluation.augment): each training clip gets
    ``copies`` augmented copies, their features extracted once (cached) with the run's extractor and
    appended to the training part of every fold in which the clip trains (same label, same speaker
    group); test rows are never augmented. Off by default (``copies: 0``)."""

    copies: int = Field(
        0, ge=0, description="augmented copies per training clip (0: augmentation off)")
    transforms: dict[str, dict[str, Any] | bool | None] = Field(
        default_factory=dict,
        description="{name: parameters} applied in this order to each copy, each with its own "
                    "probability p (audiomentations semantics). Names: white_noise (AddGaussianSNR: "
                    "min_snr_db, max_snr_db), pink_noise (AddColorNoise with -3 dB/octave: min_snr_db, "
                    "max_snr_db), telephone (300-3400 Hz band: low_hz, high_hz), gain (min_gain_db, "
                    "max_gain_db), babble (talkers other training speakers mixed at min_snr_db.."
                    "max_snr_db; talkers are never test speakers of a fold in which the clip trains), "
                    "gaussian_noise, pitch_shift, time_stretch (study 003); every one takes p. `true` "
                    "= the transform's defaults")

    @field_validator("transforms")
    @classmethod
    def _known(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(WAVEFORM_AUGMENTATION_NAMES))
        if unknown:
            raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}; choose from "
                             f"{', '.join(WAVEFORM_AUGMENTATION_NAMES)}")
        for name, params in v.items():
            p = params.get("p") if isinstance(params, dict) else None
            if p is not None and not (isinstance(p, (int, float)) and 0 <= p <= 1):
                raise ValueError(f"{name}: p must be a probability in [0, 1], got {p!r}")
        return v

    @property
    def active(self) -> dict[str, Any]:
        """The transforms that are switched on (``false`` / ``null`` entries dropped)."""
        return {k: v for k, v in self.transforms.items() if v is not False and v is not None}

    @model_validator(mode="after")
    def _consistent(self) -> "AugmentConfig":
        if self.copies > 0 and not self.active:
            raise ValueError("augment.copies > 0 needs at least one entry in augment.transforms "
                             "(the copies would be identical to the clean clips)")
        return self


ProtocolKind = Literal["group_kfold", "loso", "speaker_holdout", "emobox", "leave_corpus_out", "random"]


class ProtocolConfig(_Strict):
    kind: ProtocolKind = "group_kfold"
    n_folds: int | None = Field(
        None, ge=1, description="None: the protocol's default (group_kfold 5, speaker_holdout 10, "
                                "random 1 = a single test_size split)")
    test_size: float = Field(0.3, gt=0, lt=1, description="random protocol: held-out fraction")
    folds_csv: str = "../shared/benchmarks/emobox_folds.csv"
    emobox_corpus: str | None = Field(None, description="default: the single corpus of the run")
    classes: Literal["common", "shared"] = Field(
        "common", description="leave_corpus_out only: `common` = train and test on the classes every "
                              "corpus of the run has (rows with other labels are left out); `shared` "
                              "= per fold, train on every class of the training corpora and test on "
                              "the held-out corpus's classes that occur in training (its other rows "
                              "are left out of that fold and counted in the fold's `excluded_test`; "
                              "UA is over the shared classes)")
    max_folds: int | None = Field(None, ge=1, description="run only the first N folds (quick checks)")
    speaker_dependent: bool = Field(
        False, description="must be true to allow train/test speaker overlap (random protocol)")

    @model_validator(mode="after")
    def _random_is_declared(self) -> "ProtocolConfig":
        if self.kind == "random" and not self.speaker_dependent:
            raise ValueError("protocol.kind=random mixes speakers between train and test: set "
                             "protocol.speaker_dependent=true to declare it (results are then "
                             "labelled speaker-dependent)")
        return self


class SegmentConfig(_Strict):
    """Long recordings: speech detection, windowing, smoothing, merging and subtitle cues.

    Used by ``serkit.inference.segments`` and ``serkit.inference.subtitles``. Durations are seconds.
    """

    vad: Literal["silero", "energy"] = Field(
        "silero", description="speech detector: silero v6 (ONNX, shipped with faster-whisper) or a "
                              "frame-energy threshold (no model; for synthetic audio and tests)")
    vad_threshold: float = Field(
        0.5, gt=0, lt=1, description="silero: speech probability at or above which a frame is speech")
    vad_neg_threshold: float | None = Field(
        None, gt=0, lt=1, description="silero: probability below which a frame is silence (hysteresis; "
                                      "None = vad_threshold - 0.15, as in silero)")
    energy_threshold_db: float = Field(
        -40.0, description="energy VAD: frame RMS level (dBFS) at or above which a frame is speech")
    min_speech_s: float = Field(0.25, ge=0, description="speech regions this short or shorter are dropped")
    min_silence_s: float = Field(
        0.5, ge=0, description="a pause must last this long to end a speech region (shorter pauses "
                               "stay inside it)")
    speech_pad_s: float = Field(
        0.1, ge=0, description="pad each speech region by this much on both sides (half the pause "
                               "when two regions are closer than twice this)")
    window_s: float = Field(3.0, gt=0, description="length of the windows that are scored")
    hop_s: float = Field(1.5, gt=0, description="step between window starts (window_s - hop_s = overlap)")
    min_window_s: float = Field(
        1.0, gt=0, description="a speech region shorter than window_s is scored as one window when at "
                               "least this long; shorter ones are reported as too short (label null)")
    smoothing: Literal["none", "moving_average"] = Field(
        "moving_average", description="temporal smoothing of window scores within one speech region")
    smoothing_k: int = Field(
        3, ge=1, description="moving average over this many neighbouring windows (centred; fewer at "
                             "the edges of a region)")
    merge: Literal["same_label", "none"] = Field(
        "same_label", description="same_label: adjacent windows/segments with the same label become "
                                  "one segment; none: one segment per window")
    block_s: float = Field(
        30.0, gt=0, description="decode and run the VAD on blocks this long (bounds memory on long files)")
    batch_size: int = Field(16, ge=1, description="windows per score_batch call")
    clip_max_s: float = Field(
        10.0, gt=0, description="predict: a file longer than this is scored as a timeline of windows "
                                "and its label is the timeline's overall label (models are trained on "
                                "clips of a few seconds; Whisper encoders take at most 30 s)")
    clip_speech_check: bool = Field(
        True, description="predict: run the VAD on a clip and answer 'no speech' when it finds none "
                          "(instead of giving noise or silence an emotion)")
    cue_max_s: float = Field(7.0, gt=0, description="subtitles: longest cue; longer ones are split "
                                                   "at word boundaries")
    cue_max_chars: int = Field(84, ge=10, description="subtitles: most characters in one cue")
    cue_line_chars: int = Field(42, ge=10, description="subtitles: wrap cue text at this many characters")
    cue_max_gap_s: float = Field(
        1.0, gt=0, description="subtitles: a pause between two words longer than this starts a new cue")
    cue_min_speech_s: float = Field(
        1.0, gt=0, description="subtitles: a cue shorter than this gets no emotion tag")
    whisper_model: str = Field(
        "whisper-base", description="subtitles: offline faster-whisper checkpoint (serkit.backbones."
                                    "offline) or a path to a CTranslate2 Whisper folder")
    whisper_device: str = Field("auto", description="subtitles: faster-whisper device (cpu, cuda, auto)")
    whisper_compute_type: str = Field(
        "auto", description="subtitles: CTranslate2 compute type (auto = fastest the device supports; "
                            "default, int8, float16, ...)")
    beam_size: int = Field(5, ge=1, description="subtitles: beam width of the transcriber")

    @model_validator(mode="after")
    def _consistent(self) -> "SegmentConfig":
        if self.hop_s > self.window_s:
            raise ValueError("segments.hop_s must not exceed segments.window_s (windows would leave gaps)")
        if self.min_window_s > self.window_s:
            raise ValueError("segments.min_window_s must not exceed segments.window_s")
        if self.vad_neg_threshold is not None and self.vad_neg_threshold > self.vad_threshold:
            raise ValueError("segments.vad_neg_threshold must not exceed segments.vad_threshold")
        return self


class InferenceConfig(_Strict):
    """How a loaded model computes (``Predictor.load(..., inference=...)``, ``serkit predict
    --runtime/--precision/--threads/--batch-size``): speed settings that never change what the model is.
    """

    runtime: Literal["auto", "torch", "onnx"] = Field(
        "auto", description="torch (any model), onnx (ONNX Runtime: an exported directory, or a trained "
                            "one exported once into $SERKIT_CACHE/onnx and checked against torch), or "
                            "auto (onnx when the model can be exported and onnxruntime + onnx are "
                            "installed, else torch); serkit.inference.runtime")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="encoder arithmetic: bf16 autocast (CPUs with native bfloat16: AVX512-BF16 "
                            "or AMX; the log-mel front end and the pooling stay float32), fp32, or auto "
                            "(bf16 where the CPU has it natively, else fp32); torch runtime only "
                            "(ONNX Runtime computes in float32). bench/results/speed.md gives its speed "
                            "and its agreement with fp32")
    threads: int = Field(0, ge=0, description="CPU threads for the encoder (0: the runtime's default, "
                                              "all cores)")
    batch_size: int = Field(16, ge=1, description="clips per forward pass in predict_files (clips are "
                                                  "sorted by length first, so padding stays small)")


class RayConfig(_Strict):
    """``serkit predict --engine ray``: batch prediction on a Ray cluster (serkit.inference.distributed).

    Each actor loads the model once and is sent the files a batch at a time; the driver writes the
    results as they come back.
    """

    address: str | None = Field(
        None, description="Ray cluster to join: 'auto' (the cluster this node belongs to) or "
                          "'HEAD_IP:6379'; None: $RAY_ADDRESS when it is set, else start a local "
                          "Ray instance on this machine")
    num_cpus: int | None = Field(
        None, ge=1, description="a local instance started by serkit: CPUs it may use (None: all)")
    actors: int | None = Field(
        None, ge=1, description="predictor actors (each holds one model); None: one per "
                                "cpus_per_actor CPUs of the cluster, no more than there are batches")
    cpus_per_actor: float = Field(
        1.0, gt=0, description="CPUs each actor reserves; its torch threads are set to this many")
    files_per_batch: int = Field(
        32, ge=1, description="files sent to an actor at a time (map_batches batch_size)")
    preserve_order: bool = Field(
        True, description="results come back (and are written) in input order")


class ServeConfig(_Strict):
    """``serkit serve``: where it listens and every limit of the HTTP API (serkit.serve).

    The defaults are safe for a server on loopback: nothing in a request can raise a limit, choose a
    path on the server or load a model.
    """

    host: str = Field("127.0.0.1", description="address to bind (loopback only unless told otherwise)")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0: any free port)")
    max_upload_bytes: int = Field(
        50_000_000, gt=0, description="largest request body (413 beyond it; checked from "
                                      "Content-Length first, then while reading)")
    max_audio_s: float = Field(
        600.0, gt=0, description="longest audio accepted (413 beyond it), checked from the file header "
                                 "before decoding")
    max_decoded_samples: int = Field(
        28_800_000, gt=0, description="most samples (per channel) ever decoded from one upload "
                                      "(10 min at 48 kHz); stops decompression bombs whose header "
                                      "hides their length")
    min_sample_rate: int = Field(1000, gt=0, description="lowest sample rate accepted (400 below)")
    max_sample_rate: int = Field(384_000, gt=0, description="highest sample rate accepted (400 above)")
    timeout_s: float = Field(
        60.0, gt=0, description="longest a request may wait for and spend in decoding + inference "
                                "(503 'timeout' beyond it)")
    subtitles_timeout_s: float = Field(
        300.0, gt=0, description="the same for /v1/subtitles (transcription is slower)")
    upload_timeout_s: float = Field(
        30.0, gt=0, description="longest time to receive a request body (408 beyond it: slow clients "
                                "cannot hold a slot)")
    max_concurrent: int = Field(2, ge=1, description="inferences running at once (threads)")
    max_queue: int = Field(
        16, ge=0, description="requests waiting for an inference slot; beyond max_concurrent + "
                              "max_queue a request is answered 503 at once (bounded memory)")
    retry_after_s: int = Field(2, ge=0, description="Retry-After header (seconds) of a 503")
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS (empty: CORS off, the default)")
    token_env: str = Field(
        "SERKIT_SERVE_TOKEN", description="environment variable holding a bearer token; when it is "
                                          "set, every endpoint but /healthz and /readyz needs "
                                          "'Authorization: Bearer <token>'")
    warmup: bool = Field(True, description="run one inference at start-up before /readyz says ready")

    @model_validator(mode="after")
    def _consistent(self) -> "ServeConfig":
        if self.min_sample_rate > self.max_sample_rate:
            raise ValueError("serve.min_sample_rate must not exceed serve.max_sample_rate")
        if not self.token_env or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.token_env):
            raise ValueError(f"serve.token_env must be an environment variable name, got {self.token_env!r}")
        return self


class PublishedResult(_Strict):
    metric: str = "accuracy"
    value: float
    protocol: str
    source: str


class CardEvaluation(_Strict):
    """A further evaluation ``serkit train`` runs and reports in the model card (the same config with
    dotted overrides, e.g. leave-one-corpus-out on the four shared classes)."""

    name: str
    description: str = ""
    overrides: list[str] = Field(default_factory=list)


class RunConfig(_Strict):
    name: str = "experiment"
    seed: int = 42
    out_dir: str = "runs"
    data: DataConfig = Field(default_factory=DataConfig)
    audio: AudioConfig = Field(default_factory=AudioConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    protocol: ProtocolConfig = Field(default_factory=ProtocolConfig)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    published: PublishedResult | None = None
    report: bool = True
    description: str = ""
    card_evaluations: list[CardEvaluation] = Field(
        default_factory=list, description="serkit train: further evaluations (config + overrides) "
                                          "reported in the model card")

    @model_validator(mode="after")
    def _enough_corpora(self) -> "RunConfig":
        if self.protocol.kind == "leave_corpus_out" and len(self.data.corpora) < 2:
            raise ValueError(f"protocol.kind=leave_corpus_out needs at least 2 corpora in data.corpora "
                             f"(it holds out one corpus at a time), got {len(self.data.corpora)}")
        return self

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or any(ch in v for ch in "/\\"):
            raise ValueError("name must be non-empty and contain no path separators")
        return v


def parse_override(item: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value``; the value is parsed as YAML (numbers, lists, booleans, null)."""
    if "=" not in item:
        raise ValueError(f"override {item!r} is not of the form key=value")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ValueError(f"override {item!r} has an empty key")
    if not raw.strip():
        return key.split("."), ""
    try:
        return key.split("."), yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValueError(f"override {item!r}: the value {raw!r} is not valid YAML ({where}); quote "
                         "strings and close brackets, e.g. -o 'model.grid={clf__C: [1, 10]}'") from None


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply dotted overrides to a nested dict (in place) and return it."""
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Load a YAML experiment file (or defaults when ``path`` is None) and apply overrides."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ValueError(f"{p}: not valid YAML ({exc})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{p}: expected a mapping at the top level")
        data = loaded
    apply_overrides(data, overrides or [])
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        where = f"{path}" if path is not None else "the configuration"
        raise ValueError(f"{where}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """A pydantic validation error in plain words: ``field.path: what is wrong`` per problem."""
    out = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()))
        msg = str(e.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if e.get("type") == "extra_forbidden":
            msg = "unknown setting (check its spelling and section)"
        elif e.get("type") in ("literal_error", "enum") or "Input should be" in msg:
            msg = f"{msg} (got {e.get('input')!r})"
        out.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(out)


def dump_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
