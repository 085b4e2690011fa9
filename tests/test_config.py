import pytest

from serkit.config import RunConfig, apply_overrides, load_config


def test_defaults_live_in_the_config():
    cfg = RunConfig()
    assert cfg.protocol.kind == "group_kfold" and not cfg.protocol.speaker_dependent
    assert cfg.audio.sample_rate == 16000 and cfg.seed == 42


def test_yaml_and_dotted_overrides(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("name: x\nmodel: {name: svm, params: {C: 1}}\n")
    cfg = load_config(p, ["protocol.kind=loso", "model.params.C=10", "audio.duration_s=4",
                          "data.corpora=[{name: tess, root: /t}]", "features.metadata=[gender]"])
    assert cfg.protocol.kind == "loso" and cfg.model.params["C"] == 10
    assert cfg.audio.duration_s == 4.0 and cfg.data.corpora[0].name == "tess"
    assert cfg.features.metadata == ["gender"]


def test_unknown_keys_and_bad_values_are_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"protocol\.knd: unknown setting"):
        load_config(None, ["protocol.knd=loso"])
    with pytest.raises(ValueError, match=r"protocol\.kind: Input should be .* \(got 'whatever'\)"):
        load_config(None, ["protocol.kind=whatever"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["nonsense"])


def test_random_protocol_must_be_declared_speaker_dependent():
    with pytest.raises(ValueError, match="speaker_dependent") as info:
        load_config(None, ["protocol.kind=random"])
    assert "errors.pydantic.dev" not in str(info.value) and "input_value" not in str(info.value)
    assert load_config(None, ["protocol.kind=random", "protocol.speaker_dependent=true"])


def test_relative_corpus_roots_resolve_against_data_dir():
    cfg = load_config(None, ["data.data_dir=/data", "data.corpora=[{name: emodb, root: emodb}]"])
    assert str(cfg.data.corpus_roots()[0][1]) == "/data/emodb"


YAML_CORPORA = """
data:
  data_dir: {data_dir}
  corpora:
    - name: csv                      # adapter
      root: study/labels.csv         # relative to data_dir
      corpus: study_a                # its own name (manifest `corpus` column, key prefix)
      speaker_regex: "(spk\\\\d+)"
      base_dir: audio                # relative CSV paths start here (relative to data_dir)
    - name: emodb
      root: emodb
"""


def test_corpus_options_from_yaml_become_adapter_kwargs(tmp_path):
    from pathlib import Path

    p = tmp_path / "exp.yaml"
    p.write_text(YAML_CORPORA.format(data_dir="/data"))
    cfg = load_config(p)
    assert cfg.data.corpus_specs() == [
        ("csv", Path("/data/study/labels.csv"),
         {"corpus": "study_a", "speaker_regex": r"(spk\d+)", "base_dir": Path("/data/audio")}),
        ("emodb", Path("/data/emodb"), {})]
    assert cfg.data.corpus_roots() == [("csv", Path("/data/study/labels.csv")),
                                       ("emodb", Path("/data/emodb"))]
    with pytest.raises(ValueError, match=r"data\.corpora\.0\.speaker_regx: unknown setting"):
        load_config(None, ["data.corpora=[{name: csv, root: x.csv, speaker_regx: a}]"])


def test_options_an_adapter_does_not_take_are_refused_by_name(tmp_path):
    from serkit.corpora import load_corpora

    cfg = load_config(None, [f"data.data_dir={tmp_path}",
                             "data.corpora=[{name: ravdess, root: ravdess, speaker_regex: x}]"])
    with pytest.raises(ValueError, match="'ravdess' does not take the option.*speaker_regex"):
        load_corpora(cfg.data.corpus_specs())


def test_corpus_options_reach_the_run_manifest(tmp_path):
    import numpy as np
    import soundfile as sf

    from serkit.evaluation.protocol import load_manifest

    rows = ["path,label"]
    for s, spk in enumerate(("spk1", "spk2")):
        for i, lab in enumerate(("positive", "negative")):
            f = tmp_path / "audio" / spk / f"{lab}_{i}.wav"
            f.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(f), 0.1 * np.sin(np.arange(1600) * (0.1 + i / 10 + s / 100)).astype("float32"), 16000)
            rows.append(f"{spk}/{f.name},{lab}")
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "labels.csv").write_text("\n".join(rows) + "\n")
    p = tmp_path / "exp.yaml"
    p.write_text(YAML_CORPORA.format(data_dir=tmp_path).split("    - name: emodb")[0])
    manifest, problems, _ = load_manifest(load_config(p))
    assert set(manifest["corpus"]) == {"study_a"} and not problems
    assert sorted(manifest["speaker"].unique()) == ["study_a_spk1", "study_a_spk2"]
    assert sorted(manifest["label"]) == ["negative", "negative", "positive", "positive"]
    assert manifest["key"].str.startswith("study_a/spk").all()
