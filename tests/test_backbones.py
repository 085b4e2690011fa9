"""Backbone wrapper on tiny randomly initialised models (no downloads)."""

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from serkit.backbones import Backbone, load_backbone  # noqa: E402

SR = 16000


def _wavs(*lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def _ssl_common(stable: bool):
    return dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48,
        conv_dim=(16, 16, 16), conv_stride=(5, 4, 2), conv_kernel=(10, 4, 2),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer" if stable else "group", do_stable_layer_norm=stable,
        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, feat_proj_dropout=0.0,
        layerdrop=0.0, vocab_size=10,
    )


def _save_ssl(tmp_path, config_cls, model_cls, stable=True, **extra):
    from transformers import Wav2Vec2FeatureExtractor

    torch.manual_seed(0)
    cfg = config_cls(**{**_ssl_common(stable), **extra})
    model_cls(cfg).save_pretrained(tmp_path)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True,
                             return_attention_mask=stable).save_pretrained(tmp_path)
    return str(tmp_path)


def _ssl_archs():
    from transformers import (
        Data2VecAudioConfig, Data2VecAudioModel, HubertConfig, HubertModel, Wav2Vec2Config,
        Wav2Vec2Model, WavLMConfig, WavLMModel,
    )

    return {
        "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model, {}),
        "hubert": (HubertConfig, HubertModel, {}),
        "wavlm": (WavLMConfig, WavLMModel, {"num_buckets": 16, "max_bucket_distance": 32}),
        "data2vec-audio": (Data2VecAudioConfig, Data2VecAudioModel,
                           {"conv_pos_kernel_size": 5, "num_conv_pos_embeddings": 2}),
    }


def _save_whisper(tmp_path):
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    cfg = WhisperConfig(
        vocab_size=64, num_mel_bins=80, d_model=16, encoder_layers=2, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_source_positions=1500, max_target_positions=32,
        pad_token_id=1, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2,
    )
    WhisperModel(cfg).save_pretrained(tmp_path)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(tmp_path)
    return str(tmp_path)


def _check_padding_invariance(bb: Backbone, wavs, atol):
    with torch.no_grad():
        hidden, mask = bb.forward_layers(wavs)
        for i, w in enumerate(wavs):
            alone, alone_mask = bb.forward_layers([w])
            n = alone.shape[2]
            assert alone_mask.all()
            assert int(mask[i].sum()) == n
            torch.testing.assert_close(hidden[:, i, :n], alone[:, 0], rtol=1e-4, atol=atol)


def _check_shapes(bb: Backbone, wavs, num_layers, hidden_size):
    with torch.no_grad():
        hidden, mask = bb.forward_layers(wavs)
    lengths = bb.output_lengths(torch.tensor([len(w) for w in wavs]))
    assert bb.num_layers == num_layers and bb.hidden_size == hidden_size
    assert hidden.shape == (num_layers, len(wavs), int(lengths.max()), hidden_size)
    assert mask.dtype == torch.bool and mask.shape == hidden.shape[1:3]
    assert mask.sum(1).tolist() == lengths.tolist()
    assert torch.isfinite(hidden).all()
    return hidden, mask


@pytest.mark.parametrize("arch", ["wav2vec2", "hubert", "wavlm", "data2vec-audio"])
def test_ssl_layer_norm_models(tmp_path, arch):
    config_cls, model_cls, extra = _ssl_archs()[arch]
    bb = load_backbone(_save_ssl(tmp_path, config_cls, model_cls, stable=True, **extra))
    assert bb.kind == "ssl" and bb.sample_rate == SR and not bb.training
    assert bb.pass_attention_mask and bb.do_normalize
    wavs = _wavs(3200, 2000, 1234)
    _check_shapes(bb, wavs, num_layers=3, hidden_size=32)
    _check_padding_invariance(bb, wavs, atol=1e-4)


def test_ssl_group_norm_model_shapes_only(tmp_path):
    """wav2vec2-base style (feat_extract_norm="group"): no attention mask is passed, as in
    Hugging Face; GroupNorm over time sees the padding, so padded outputs differ slightly from
    per-clip outputs. Only shapes and masks are checked here."""
    config_cls, model_cls, _ = _ssl_archs()["wav2vec2"]
    bb = load_backbone(_save_ssl(tmp_path, config_cls, model_cls, stable=False))
    assert not bb.pass_attention_mask
    _check_shapes(bb, _wavs(3200, 2000), num_layers=3, hidden_size=32)


def test_ssl_without_feature_extractor_config(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    Wav2Vec2Model(Wav2Vec2Config(**_ssl_common(True))).save_pretrained(tmp_path)
    bb = load_backbone(str(tmp_path))
    assert bb.pass_attention_mask and bb.do_normalize
    _check_shapes(bb, _wavs(1600), num_layers=3, hidden_size=32)


def test_whisper_shapes_and_padding(tmp_path):
    bb = load_backbone(_save_whisper(tmp_path))
    assert bb.kind == "whisper" and bb.num_layers == 3 and bb.hidden_size == 16
    wavs = _wavs(SR, 8000, 4321)  # 1 s, 0.5 s, odd length
    hidden, mask = _check_shapes(bb, wavs, num_layers=3, hidden_size=16)
    assert hidden.shape[2] == 50  # 50 frames per second, no 30 s padding
    assert mask.sum(1).tolist() == [50, 25, 14]  # 4321 samples -> 27 mel frames -> 14
    _check_padding_invariance(bb, wavs, atol=1e-5)


def test_whisper_matches_hf_encoder_on_30s(tmp_path):
    from transformers import WhisperFeatureExtractor, WhisperModel

    path = _save_whisper(tmp_path)
    bb = load_backbone(path)
    wav = _wavs(30 * SR)[0]
    feats = WhisperFeatureExtractor.from_pretrained(path)(wav, sampling_rate=SR, return_tensors="pt")
    enc = WhisperModel.from_pretrained(path).get_encoder().eval()
    with torch.no_grad():
        ref = enc(feats.input_features, output_hidden_states=True)
        hidden, mask = bb.forward_layers([wav])
    assert mask.all() and hidden.shape[2] == 1500
    torch.testing.assert_close(hidden[-1, 0], ref.last_hidden_state[0], rtol=1e-4, atol=1e-4)
    if ref.hidden_states is not None and len(ref.hidden_states) == bb.num_layers:
        for i, h in enumerate(ref.hidden_states):
            torch.testing.assert_close(hidden[i, 0], h[0], rtol=1e-4, atol=1e-4)


def test_whisper_rejects_long_clips_and_accepts_tensors(tmp_path):
    bb = load_backbone(_save_whisper(tmp_path))
    with pytest.raises(ValueError, match="30 s"):
        bb.forward_layers(_wavs(31 * SR))
    with torch.no_grad():
        hidden, mask = bb.forward_layers([torch.zeros(100)])  # shorter than one hop
    assert hidden.shape[2] == 1 and mask.all()
    with pytest.raises(ValueError):
        bb.forward_layers([np.zeros((2, 100), np.float32)])


def test_finetuning_helpers(tmp_path):
    config_cls, model_cls, _ = _ssl_archs()["wav2vec2"]
    bb = load_backbone(_save_ssl(tmp_path / "w2v", config_cls, model_cls))
    bb.freeze_feature_encoder()
    assert len(bb.transformer_layers()) == 2
    bb.train()
    hidden, _ = bb.forward_layers(_wavs(1600))
    hidden[-1].sum().backward()
    assert bb.transformer_layers()[0].feed_forward.output_dense.weight.grad is not None

    wb = load_backbone(_save_whisper(tmp_path / "whisper"))
    wb.freeze_feature_encoder()
    assert not wb.model.conv1.weight.requires_grad
    assert len(wb.transformer_layers()) == 2


def test_dtype_argument(tmp_path):
    bb = load_backbone(_save_whisper(tmp_path), dtype=torch.float64)
    assert bb.dtype == torch.float64
    with torch.no_grad():
        hidden, _ = bb.forward_layers(_wavs(1600))
    assert hidden.dtype == torch.float64


def test_whisper_log_mel_batch_matches_the_feature_extractor_clip_by_clip(tmp_path):
    """The batched log-mel front end gives, for every clip, the numbers WhisperFeatureExtractor
    gives for that clip alone (no 30 s padding), sliced to len // 160 frames; frames past a
    clip's end are 0, and the per-clip floor (max - 8) ignores the other clips."""
    from transformers import WhisperFeatureExtractor

    from serkit.backbones.hf import whisper_log_mel

    fe = WhisperFeatureExtractor(feature_size=80)
    wavs = _wavs(16000, 4321, 250, 48000, seed=3)
    wavs[1] *= 100.0  # a loud clip next to quiet ones: each clip keeps its own maximum
    mel, lengths = whisper_log_mel(wavs, torch.from_numpy(fe.mel_filters.astype(np.float32)))
    assert mel.shape == (4, 80, 300) and lengths.tolist() == [100, 27, 2, 300]
    for i, w in enumerate(wavs):
        w = w if len(w) >= 320 else np.pad(w, (0, 320 - len(w)))
        ref = fe(w, sampling_rate=SR, padding="longest", truncation=False,
                 return_tensors="np").input_features[0][:, : len(w) // 160]
        n = int(lengths[i])
        np.testing.assert_allclose(mel[i, :, :n].numpy(), ref, atol=1e-5)
        assert (mel[i, :, n:] == 0).all()


def test_whisper_max_layer_runs_fewer_layers_with_the_same_states(tmp_path):
    bb = load_backbone(_save_whisper(tmp_path))
    wavs = _wavs(8000, 5000)
    with torch.no_grad():
        full, mask = bb.forward_layers(wavs)
        part, part_mask = bb.forward_layers(wavs, max_layer=1)
        zero, _ = bb.forward_layers(wavs, max_layer=0)
    assert part.shape[0] == 2 and zero.shape[0] == 1
    torch.testing.assert_close(part, full[:2])
    torch.testing.assert_close(zero, full[:1])
    assert torch.equal(mask, part_mask)


def test_precision_resolution(monkeypatch):
    from serkit.backbones import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.resolve_precision("auto") == "bf16"
    assert precision.resolve_precision("auto", "cuda:0") == "fp32"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.resolve_precision("auto") == "fp32"
    assert precision.resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="precision must be"):
        precision.resolve_precision("int4")


def test_bf16_encoder_keeps_pooled_features_close_to_fp32(tmp_path):
    """bf16 autocast touches the encoder only: the pooled statistics stay within bf16 rounding
    of fp32, and the extractor's identity (its params, hence caches and cards) does not change."""
    from serkit.features.ssl import SSLFeatures

    path = _save_whisper(tmp_path)
    ext = SSLFeatures(backbone=path, pooling="meanstd", layers="all", num_threads=1)
    wavs = _wavs(16000, 9000, seed=5)
    ref = ext.extract_batch(wavs, SR)
    params = ext.params()
    ext.configure("bf16")
    assert ext.precision == "bf16" and ext.params() == params
    got = ext.extract_batch(wavs, SR)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert not np.array_equal(got, ref)
    np.testing.assert_allclose(got, ref, atol=0.05 * float(np.abs(ref).max()))
