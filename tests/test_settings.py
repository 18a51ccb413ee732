"""Settings declared once: the CLI options, the validation and the GUI form all come from the declarations."""
import argparse

import pytest

from engine.settings import SettingError, add_options, from_options, settings
from engine.training.config import TrainConfig


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_options(parser, TrainConfig, defaults={"max_minutes": 4.5})
    return parser.parse_args([str(a) for a in argv])


def test_every_declared_setting_is_an_option_with_its_default():
    args = parse()
    config = from_options(TrainConfig, args)
    d = TrainConfig()
    for s in settings(TrainConfig):
        if s.name != "max_minutes":
            assert s.get(config) == s.get(d), s.name
    assert config.max_minutes == 4.5  # the command's own default


def test_options_reach_the_config_including_words_and_term_weights():
    config = from_options(TrainConfig, parse("--pce", "mean", "--sigma-xy", 50, "--box-weight", 0.5,
                                             "--regularizer", "grid", "--no-allow-download"))
    assert not config.balanced_pce and config.sigma_xy == 50 and config.regularizer == "grid"
    assert config.weights == {"box": 0.5, "tags": 1.0} and config.allow_download is False


@pytest.mark.parametrize("kwargs, message", [
    ({"max_minutes": -1}, "max_minutes must be a positive number, got -1"),
    ({"max_minutes": float("nan")}, "max_minutes must be a positive number"),
    ({"colour_weight": -0.5}, "colour_weight must be at least 0, got -0.5"),
    ({"steps": 0}, "steps must be at least 1, got 0"),
    ({"steps": 2.5}, "steps must be a whole number"),
    ({"regularizer": "crf"}, "regularizer must be one of none, grid, dense, ncut, colour; got 'crf'"),
    ({"working_size": 10_000}, "working_size must be at most 4096"),
    ({"weights": {"box": -1.0}}, "box_weight must be at least 0"),
    ({"weights": {"boxes": 1.0}}, "no weighted training term is called boxes"),
])
def test_bad_values_are_refused_naming_the_setting(kwargs, message):
    with pytest.raises(SettingError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        TrainConfig(**kwargs)
    assert isinstance(info.value, ValueError)


def test_the_cli_refuses_a_bad_value_in_one_line(capsys, tmp_path):
    from engine.cli.main import main

    code = main(["train", str(tmp_path), "--out", str(tmp_path / "run"), "--max-minutes", "-1"])
    err = capsys.readouterr().err
    assert code == 1 and err.strip() == "wsv train: error: max_minutes must be a positive number, got -1"
