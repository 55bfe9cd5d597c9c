"""Tests for aelab.spec: defaults, file loading, --set overrides, one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from aelab.errors import AelabError, ConfigError
from aelab.spec import (Config, DataSpec, EvalSpec, LayerSpec, ModelSpec, TrainSpec, apply_overrides,
                        dump_config, format_validation_error, load_config, parse_override)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))

DICT_LAYERS = {
    "model": {
        "encoder": [
            {"type": "dense", "units": 32},
            {"type": "dense", "units": 10, "activation": "tanh"},
        ],
        "latent_dim": 2,
    }
}


def config_error(source, overrides=None) -> str:
    """The message of the ConfigError that loading ``source`` must raise."""
    with pytest.raises(ConfigError) as info:
        load_config(source, overrides)
    message = str(info.value)
    assert message, "ConfigError without a message"
    assert "\n" not in message and "\n" not in str(info.value.args[0]), message
    return message


# ------------------------------------------------------------- defaults


def test_defaults_validate():
    cfg = load_config({})
    assert cfg == Config()
    assert cfg.data.name == "mnist-5k" and cfg.data.normalize == "unit"
    assert cfg.model.kind == "ae" and cfg.model.decoder == "mirror" and cfg.model.encoder == []
    assert cfg.model.latent_dim == 2
    assert cfg.train.optimizer == "adam" and cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.epochs == 20 and cfg.train.batch_size == 128
    assert cfg.eval.figures is True


@pytest.mark.parametrize("cls", [DataSpec, ModelSpec, TrainSpec, EvalSpec, Config])
def test_every_section_has_valid_defaults(cls):
    obj = cls()
    assert cls.model_validate(obj.model_dump(mode="json")) == obj


def test_config_instance_is_accepted_and_overridden():
    base = load_config({"train": {"epochs": 3}})
    cfg = load_config(base, ["train.lr=0.5"])
    assert cfg.train.epochs == 3 and cfg.train.lr == 0.5
    assert base.train.lr == pytest.approx(1e-3)  # the source is not modified


# ------------------------------------------------------------- files


def test_yaml_file_loads(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("name: exp\ntrain:\n  epochs: 7\n  optimizer: sgd\nmodel:\n  encoder: [32, 10]\n")
    cfg = load_config(p)
    assert cfg.name == "exp" and cfg.train.epochs == 7 and cfg.train.optimizer == "sgd"
    assert [layer.units for layer in cfg.model.encoder] == [32, 10]
    assert load_config(str(p)) == cfg  # str paths too


def test_json_file_loads(tmp_path):
    p = tmp_path / "exp.json"
    p.write_text(json.dumps({"data": {"name": "digits", "range": [-1, 1]},
                             "model": {"kind": "vae", "latent_dim": 4}}))
    cfg = load_config(p)
    assert cfg.data.name == "digits" and cfg.data.range == (-1.0, 1.0)
    assert cfg.model.kind == "vae" and cfg.model.latent_dim == 4


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)


def test_missing_file():
    msg = config_error("/nonexistent/dir/exp.yaml")
    assert "/nonexistent/dir/exp.yaml" in msg and "no such config file" in msg


def test_directory_is_not_a_config_file(tmp_path):
    assert "no such config file" in config_error(tmp_path)


@pytest.mark.parametrize("text, kind", [("- 1\n- 2\n", "list"), ("just a string\n", "str"), ("42\n", "int")])
def test_file_that_is_not_a_mapping(tmp_path, text, kind):
    p = tmp_path / "exp.yaml"
    p.write_text(text)
    msg = config_error(p)
    assert str(p) in msg and "mapping" in msg and kind in msg


def test_invalid_yaml(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("train:\n  epochs: [1,\n  lr: 0.1\n")
    msg = config_error(p)
    assert str(p) in msg and "not valid YAML" in msg


def test_invalid_json(tmp_path):
    p = tmp_path / "exp.json"
    p.write_text('{"train": {"epochs": 3}')
    msg = config_error(p)
    assert str(p) in msg and "not valid YAML/JSON" in msg


def test_file_errors_name_the_key_and_the_file(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("train:\n  epochs: 0\n")
    msg = config_error(p)
    assert msg.startswith(f"{p}: train.epochs:") and "greater than or equal to 1" in msg


# ------------------------------------------------------------- overrides


@pytest.mark.parametrize("item, get, expected", [
    ("train.epochs=5", lambda c: c.train.epochs, 5),
    ("train.optimizer=rmsprop", lambda c: c.train.optimizer, "rmsprop"),
    ("train.lr=0.01", lambda c: c.train.lr, 0.01),
    ("train.lr=1e-3", lambda c: c.train.lr, 1e-3),  # YAML 1.1 reads this as a string
    ("model.latent_dim=8", lambda c: c.model.latent_dim, 8),
    ("train.batch_size=32", lambda c: c.train.batch_size, 32),
    ("train.seed=123", lambda c: c.train.seed, 123),
    ("data.name=digits", lambda c: c.data.name, "digits"),
    ("data.samples=500", lambda c: c.data.samples, 500),
    ("data.resize=14", lambda c: c.data.resize, (14, 14)),
    ("data.range=[0.1, 0.9]", lambda c: c.data.range, (0.1, 0.9)),
    ("eval.figures=false", lambda c: c.eval.figures, False),
    ("model.kind=vae", lambda c: c.model.kind, "vae"),
    ("name=my-run", lambda c: c.name, "my-run"),
    (" train.epochs =5", lambda c: c.train.epochs, 5),  # key whitespace is trimmed
])
def test_set_overrides_scalar_values(item, get, expected):
    assert get(load_config({}, [item])) == expected


def test_set_data_path():
    cfg = load_config({}, ["data.name=npz", "data.path=/tmp/some dir/x.npz"])
    assert cfg.data.name == "npz" and cfg.data.path == "/tmp/some dir/x.npz"


def test_set_value_may_contain_equals_sign():
    assert load_config({}, ["name=a=b"]).name == "a=b"


def test_set_list_value():
    cfg = load_config({}, ["model.encoder=[64,32]"])
    assert [(layer.type, layer.units) for layer in cfg.model.encoder] == [("dense", 64), ("dense", 32)]


def test_set_list_index_on_dict_layers():
    cfg = load_config(DICT_LAYERS, ["model.encoder.0.units=64"])
    assert cfg.model.encoder[0].units == 64
    assert cfg.model.encoder[1].units == 10 and cfg.model.encoder[1].activation == "tanh"
    assert DICT_LAYERS["model"]["encoder"][0]["units"] == 32  # the input dict is not modified


def test_set_list_index_adds_a_field_and_replaces_an_item():
    cfg = load_config(DICT_LAYERS, ["model.encoder.1.activation=sigmoid", "model.encoder.0=16"])
    assert cfg.model.encoder[1].activation == "sigmoid"
    assert (cfg.model.encoder[0].type, cfg.model.encoder[0].units) == ("dense", 16)


def test_set_negative_list_index():
    cfg = load_config(DICT_LAYERS, ["model.encoder.-1.units=3"])
    assert [layer.units for layer in cfg.model.encoder] == [32, 3]


def test_set_applies_in_order_and_later_wins():
    cfg = load_config({}, ["train.epochs=5", "train.epochs=9"])
    assert cfg.train.epochs == 9


def test_set_on_a_file(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(DICT_LAYERS))
    cfg = load_config(p, ["model.encoder.1.units=4", "train.optimizer=sgd", "train.momentum=0.9",
                          "train.nesterov=true"])
    assert cfg.model.encoder[1].units == 4 and cfg.train.nesterov is True


def test_apply_overrides_returns_a_copy():
    raw = {"train": {"epochs": 3}}
    out = apply_overrides(raw, ["train.epochs=4", "model.latent_dim=5"])
    assert out == {"train": {"epochs": 4}, "model": {"latent_dim": 5}}
    assert raw == {"train": {"epochs": 3}}
    assert apply_overrides(raw, None) == raw


def test_parse_override():
    assert parse_override("a.b=3") == (["a", "b"], 3)
    assert parse_override("a=[1, 2]") == (["a"], [1, 2])
    assert parse_override("a=") == (["a"], "")
    assert parse_override("a=on") == (["a"], True)


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize("overrides, needles", [
    (["train.epochz=3"], ["train.epochz", "unknown key"]),
    (["trian.epochs=3"], ["trian", "unknown key"]),
    (["model.encoder=[{type: dense, units: 4, unit: 3}]"], ["model.encoder[0].unit", "unknown key"]),
    (["train.epochs=abc"], ["train.epochs", "integer", "'abc'"]),
    (["train.epochs=1.5"], ["train.epochs", "integer"]),
    (["train.epochs=0"], ["train.epochs", "greater than or equal to 1"]),
    (["train.lr=-1"], ["train.lr", "greater than 0", "-1"]),
    (["train.lr=0"], ["train.lr", "greater than 0"]),
    (["data.test_size=1.0"], ["data.test_size", "less than 1"]),
    (["train.optimizer=sdg"], ["train.optimizer", "'sdg'", "adam"]),
    (["data.name=cifar"], ["data.name", "'cifar'", "mnist-5k"]),
    (["model.kind=transformer"], ["model.kind", "'transformer'"]),
    (["model.output_activation=swish"], ["model.output_activation", "'swish'"]),
    (["model.encoder=[10, {type: conv3d, filters: 2}]"], ["model.encoder[1]", "type", "'conv3d'"]),
    (["model.encoder=[{type: dense}]"], ["model.encoder[0]", "dense", "units"]),
    (["model.encoder=[8, {type: conv2d}]"], ["model.encoder[1]", "conv2d", "filters"]),
    (["model.encoder=[{type: reshape}]"], ["model.encoder[0]", "reshape", "shape"]),
    (["model.encoder=[{type: reshape, shape: [0, 4]}]"], ["model.encoder[0]", "reshape", "positive"]),
    (["model.encoder=[{type: dense, units: 0}]"], ["model.encoder[0].units", "greater than or equal to 1"]),
    (["data.name=npz"], ["data", "npz", "data.path"]),
    (["data.name=idx"], ["data", "idx", "data.path"]),
    (["data.range=[1, 0]"], ["data", "range", "low < high"]),
    (["data.range=[0.5, 0.5]"], ["data", "range", "low < high"]),
    (["data.resize=0"], ["data", "resize", "positive"]),
    (["train.nesterov=true"], ["train", "nesterov", "sgd", "momentum"]),
    (["train.nesterov=true", "train.optimizer=sgd"], ["train", "nesterov", "momentum"]),
    (["train.nesterov=true", "train.momentum=0.9"], ["train", "nesterov", "sgd"]),
    (["train.epochs.x=3"], ["train.epochs"]),
    (["model.num_classes=1"], ["model.num_classes"]),
])
def test_bad_values_give_one_line_naming_the_key(overrides, needles):
    msg = config_error({}, overrides)
    assert msg.startswith("config: ")
    for needle in needles:
        assert needle in msg, (needle, msg)


@pytest.mark.parametrize("item, needles", [
    ("train.epochs", ["train.epochs", "key=value"]),
    ("=3", ["dotted key"]),
    ("train..epochs=3", ["dotted key"]),
    ("model.encoder.5.units=3", ["model.encoder.5", "no such list item", "indexes 0..1"]),
    ("model.encoder.first.units=3", ["model.encoder.first", "no such list item", "indexes 0..1"]),
    ("model.encoder.-3.units=3", ["model.encoder.-3", "no such list item"]),
    ("model.encoder.0.units.x=3", ["model.encoder.0.units", "not a mapping"]),
    ("model.latent_dim.x.y=3", ["model.latent_dim", "not a mapping"]),
])
def test_bad_set_items(item, needles):
    msg = config_error(DICT_LAYERS, [item])
    assert msg.startswith("--set ")
    for needle in needles:
        assert needle in msg, (needle, msg)


def test_config_errors_are_aelab_errors():
    with pytest.raises(AelabError) as info:
        load_config({}, ["train.epochz=3"])
    assert info.value.exit_code == 2


def test_error_message_collapses_newlines():
    assert str(ConfigError("first line\n  second   line")) == "first line second line"


def test_format_validation_error_directly():
    with pytest.raises(ValidationError) as info:
        Config.model_validate({"train": {"batch_size": -2}})
    msg = format_validation_error(info.value, "exp.yaml")
    assert msg.startswith("exp.yaml: train.batch_size: ") and "(got -2)" in msg and "\n" not in msg


@pytest.mark.parametrize("overrides, needle", [
    (["model.decoder=[8, {type: conv3d}]"], "model.decoder[1]"),
    (["model.decoder=[{type: dense}]"], "units"),
])
def test_bad_explicit_decoder_layer_names_the_layer(overrides, needle):
    assert needle in config_error({}, overrides)


def test_bad_padding_names_the_key_path_only():
    msg = config_error({}, ["model.encoder=[{type: conv2d, filters: 2, padding: valid}]"])
    assert "model.encoder[0].padding:" in msg and "'same'" in msg and "'valid'" in msg


# ------------------------------------------------------------- shorthands and round trip


def test_int_shorthand_is_a_dense_layer():
    cfg = load_config({"model": {"encoder": [32, 10]}})
    assert [(layer.type, layer.units) for layer in cfg.model.encoder] == [("dense", 32), ("dense", 10)]
    assert all(layer.activation is None for layer in cfg.model.encoder)
    assert LayerSpec.model_validate(7) == LayerSpec(type="dense", units=7)


def test_int_shorthand_in_explicit_decoder():
    cfg = load_config({"model": {"decoder": [10, 784]}})
    assert [(layer.type, layer.units) for layer in cfg.model.decoder] == [("dense", 10), ("dense", 784)]


def test_bool_is_not_a_layer_shorthand():
    with pytest.raises(ConfigError):
        load_config({"model": {"encoder": [True]}})


def test_resize_int_becomes_square():
    assert load_config({"data": {"resize": 14}}).data.resize == (14, 14)
    assert load_config({"data": {"resize": [14, 12]}}).data.resize == (14, 12)
    assert DataSpec(resize=7).resize == (7, 7)


def test_validate_assignment():
    cfg = Config()
    with pytest.raises(ValidationError):
        cfg.train.epochs = 0


@pytest.mark.parametrize("source", [
    {},
    DICT_LAYERS,
    {"data": {"name": "digits", "resize": 6, "range": [-1, 1], "samples": 100},
     "model": {"kind": "vae", "encoder": [{"type": "conv2d", "filters": 4, "padding": "same"},
                                          {"type": "maxpool"}, 16],
               "beta": 0.5, "kl_warmup": 3},
     "train": {"optimizer": "sgd", "momentum": 0.9, "nesterov": True,
               "optimizer_args": {"dampening": 0.0}, "schedule": "step", "schedule_args": {"step_size": 5}}},
    {"model": {"decoder": [10, {"type": "dense", "units": 784, "activation": "sigmoid"}]}},
])
def test_dump_load_round_trip(tmp_path, source):
    cfg = load_config(source)
    text = dump_config(cfg)
    p = tmp_path / "dumped.yaml"
    p.write_text(text)
    again = load_config(p)
    assert again == cfg
    assert dump_config(again) == text


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_round_trip(tmp_path, path):
    cfg = load_config(path)
    p = tmp_path / "dumped.yaml"
    p.write_text(dump_config(cfg))
    assert load_config(p) == cfg


def test_dump_writes_every_default():
    dumped = yaml.safe_load(dump_config(Config()))
    assert set(dumped) == {"name", "data", "model", "train", "eval", "track"}
    assert dumped["train"]["epochs"] == 20 and dumped["model"]["decoder"] == "mirror"


@pytest.mark.parametrize("method, theirs, foreign", [
    ("gradient", {"optimizer", "epochs", "batch_size"}, {"population", "generations", "es", "mutated_weights"}),
    ("ga", {"population", "mutated_weights", "elitism"}, {"optimizer", "epochs", "lr", "es"}),
    ("es", {"population", "es", "lr", "sigma"}, {"optimizer", "epochs", "mutated_weights", "elitism"}),
])
def test_config_yaml_writes_only_the_methods_own_fields(method, theirs, foreign):
    train = yaml.safe_load(dump_config(load_config({"train": {"method": method}})))["train"]
    assert theirs <= set(train) and not foreign & set(train) and "track" not in train


def test_a_field_of_another_method_is_one_line_naming_the_methods_that_have_it():
    with pytest.raises(ConfigError, match=r"^config: train.population: method gradient has no population "
                                          r"\(methods that have it: es, ga\)$"):
        load_config({"train": {"population": 50}})
    with pytest.raises(ConfigError, match=r"train.method: 'adam' is not a training method; expected one of"):
        load_config({"train": {"method": "adam"}})
    with pytest.raises(ConfigError, match=r"^config: train.ga.population|^config: train.population: Input"):
        load_config({"train": {"method": "ga", "population": 1}})


def test_switching_the_method_with_set_drops_the_files_fields_for_the_old_one(tmp_path):
    """``configs/ga-conv-ae.yaml --set train.method=ga``: the file's
    optimizer and epochs are not a GA's; a --set GA field is kept, a --set
    field the GA does not have is still an error."""
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"train": {"optimizer": "sgd", "lr": 0.5, "epochs": 7, "loss": "mae"}}))
    cfg = load_config(p, ["train.method=ga", "train.population=6"])
    assert (cfg.train.method, cfg.train.population, cfg.train.loss) == ("ga", 6, "mae")
    with pytest.raises(ConfigError, match="train.epochs: method ga has no epochs"):
        load_config(p, ["train.method=ga", "train.epochs=3"])


def test_a_run_directory_of_the_flat_train_era_still_loads():
    """Earlier config.yaml files wrote every method's fields: the ones the
    run's method lacks are dropped whatever their value (the run never read
    them)."""
    old = {"train": {"method": "ga", "optimizer": "adam", "lr": 0.01, "epochs": 300, "population": 8,
                     "es": "openai", "track": None, "track_uri": None}}
    cfg = load_config(old, recorded=True)
    assert cfg.train.method == "ga" and cfg.train.population == 8 and not hasattr(cfg.train, "lr")


@pytest.mark.parametrize("name, digest", [("mnist-vae", "9aa8286267b6d4ff"), ("mnist-hidden3", "c3fc5edf9ab8cf88"),
                                          ("ga-conv-es", "da2903cdbd5dd057")])
def test_a_configs_cache_hash_is_the_one_earlier_versions_gave(name, digest):
    """Studies find the runs they cached before ``model`` and ``train``
    became unions (hashes computed with aelab at commit e9ac540)."""
    from aelab.cache import config_hash
    assert config_hash(load_config(name)) == digest


def test_the_cache_hash_leaves_out_how_a_run_is_executed_or_logged():
    from aelab.cache import config_hash
    a = load_config({"train": {"threads": 1, "checkpoint_every": 3}, "track": {"backend": "tensorboard"}})
    assert config_hash(a) == config_hash(load_config({})) != config_hash(load_config({"train": {"seed": 1}}))


def test_switching_the_kind_with_set_drops_the_files_fields_for_the_old_one():
    cfg = load_config("mnist-vae", ["model.kind=ae"])
    assert cfg.model.kind == "ae" and not hasattr(cfg.model, "kl_warmup")
    with pytest.raises(ConfigError, match=r"model.beta: kind ae has no beta \(kinds that have it: cvae, tcvae, vae, vamp\)"):
        load_config("mnist-vae", ["model.kind=ae", "model.beta=2"])
