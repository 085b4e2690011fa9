import numpy as np
import pytest
import soundfile as sf

from serkit.io.audio import AudioError, fix_length, load_audio, normalize
from audio_utils import tone, write


@pytest.mark.parametrize("fmt,subtype,ext", [
    ("WAV", "PCM_16", "wav"), ("WAV", "FLOAT", "wav"), ("WAV", "PCM_24", "wav"),
    ("FLAC", "PCM_16", "flac"), ("OGG", "OPUS", "opus"), ("OGG", "VORBIS", "ogg"),
    ("AIFF", "PCM_16", "wav"),  # AIFF content under a .wav name, as in some TESS files
])
def test_reads_every_format_resampled_to_16k(tmp_path, fmt, subtype, ext):
    sr = 48000 if fmt == "OGG" else 44100
    x = tone(440, 0.5, sr=sr)
    path = write(tmp_path / f"a.{ext}", x, sr, format=fmt, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - 8000) <= 400  # opus may add pre-skip/padding
    assert np.isfinite(y).all() and 0.1 < np.abs(y).max() < 1.0


def test_stereo_is_averaged_to_mono(tmp_path):
    left, right = tone(300, 0.25), np.zeros(4000, np.float32)
    path = write(tmp_path / "st.wav", np.stack([left, right], axis=1))
    y = load_audio(path)
    np.testing.assert_allclose(y, left / 2, atol=1e-4)


def test_offset_trim_normalise_and_fixed_length(tmp_path):
    sr = 16000
    x = np.concatenate([np.zeros(sr // 2), tone(200, 1.0), np.zeros(sr // 2)]).astype(np.float32)
    path = write(tmp_path / "p.wav", x, subtype="FLOAT")
    assert len(load_audio(path, offset_s=0.5)) == len(x) - sr // 2
    trimmed = load_audio(path, trim_silence=True, top_db=30)
    assert sr <= len(trimmed) < 1.15 * sr  # frame granularity (2048/512) keeps a little silence
    z = load_audio(path, normalize="zscore")
    assert abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-3
    assert np.isclose(np.abs(load_audio(path, normalize="peak")).max(), 1.0)
    assert len(load_audio(path, duration_s=4.0)) == 64000
    assert len(load_audio(path, duration_s=0.25, crop="center")) == 4000


def test_fix_length_pads_with_zeros_and_crops():
    np.testing.assert_array_equal(fix_length(np.ones(3), 5), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(fix_length(np.arange(6), 2, "center"), [2, 3])
    with pytest.raises(ValueError):
        normalize(np.ones(3), "bogus")


def test_bad_files_raise_clear_errors_naming_the_file(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    zero = write(tmp_path / "zero.wav", np.zeros(0, np.float32))
    nan = write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), subtype="FLOAT")
    for path, words in [(empty, "empty"), (text, "not a readable audio file"),
                        (zero, "zero samples"), (nan, "NaN"), (tmp_path / "missing.wav", "does not exist")]:
        with pytest.raises(AudioError) as exc:
            load_audio(path)
        assert str(path) in str(exc.value) and words in str(exc.value)
