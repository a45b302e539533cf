"""The `farmhand` command's settings, in process: flags over FARMHAND_* over the config file
over the default, and clear errors for a config file that cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest

from farmhand.cli.settings import Settings, SettingsError, config_path, resolve

pytestmark = pytest.mark.fast


def write(home: Path, text: str) -> Path:
    path = home / ".config" / "farmhand" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_flags_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    write(tmp_path, 'master = "file:1"\nkey = "file-key"\nca = "~/ca.pem"\n')
    env = {"HOME": str(tmp_path)}
    assert resolve({}, env) == Settings("file:1", "file-key", str(tmp_path / "ca.pem"))
    env["FARMHAND_MASTER"] = "env:2"
    assert resolve({}, env).master == "env:2" and resolve({}, env).key == "file-key"
    assert resolve({"master": "flag:3", "key": "k"}, env) == Settings(
        "flag:3", "k", str(tmp_path / "ca.pem")
    )


def test_no_file_gives_the_default_and_xdg_config_home_moves_it(tmp_path: Path) -> None:
    assert resolve({}, {"HOME": str(tmp_path)}) == Settings()
    env = {"HOME": "/nowhere", "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert config_path(env) == tmp_path / "xdg" / "farmhand" / "config.toml"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('master = "a:1"\nport = 6000\n', "unknown setting 'port'"),
        ("master = 6000\n", "master must be a string"),
        ('master = "a:1', "config.toml"),
    ],
)
def test_a_bad_config_file_is_one_clear_error(tmp_path: Path, text: str, words: str) -> None:
    write(tmp_path, text)
    with pytest.raises(SettingsError) as refused:
        resolve({}, {"HOME": str(tmp_path)})
    assert words in str(refused.value)


def test_a_config_file_named_explicitly_must_exist(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="does not exist"):
        resolve({"config": str(tmp_path / "none.toml")}, {})
    with pytest.raises(SettingsError, match="does not exist"):
        resolve({}, {"FARMHAND_CONFIG": str(tmp_path / "none.toml")})
