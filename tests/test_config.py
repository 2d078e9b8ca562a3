from pathlib import Path

import pytest

from vaultd import config
from vaultd.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "vaultd.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_file() -> None:
    cfg = config.load(None)
    assert cfg.ingest.deadline_hours == 24.0
    assert cfg.time.station_tz == "Asia/Shanghai"


def test_reference_config_is_valid_and_matches_defaults() -> None:
    ref = Path(__file__).parents[1] / "config" / "vaultd.toml"
    cfg = config.load(ref)
    default = config.Config()
    assert cfg.ingest == default.ingest
    assert cfg.time == default.time
    assert cfg.catalog == default.catalog


@pytest.mark.parametrize("text, words", [
    ("[ingest]\nsettle = 1\n", ["ingest.settle", "allowed keys"]),
    ("[ingset]\n", ["unknown section [ingset]"]),
    ("[ingest]\ndeadline_hours = 'soon'\n", ["ingest.deadline_hours", "float"]),
    ("[ingest]\nmax_files = 0\n", ["ingest.max_files", "greater than 0"]),
    ("[ingest]\nmax_files = true\n", ["ingest.max_files", "int"]),
    ("[time]\nstation_tz = 'Mars/Olympus'\n", ["time.station_tz", "Mars/Olympus"]),
    ("[time]\nearliest_plausible = '2010-13-01'\n", ["time.earliest_plausible"]),
    ("[ingest]\nname_patterns = [{regex = '('}]\n", ["name_patterns[0].regex", "not a valid regex"]),
    ("[ingest]\nname_patterns = [{regex = '(?P<who>x)'}]\n", ["unknown groups", "who"]),
    ("not toml = = =\n", ["not valid TOML"]),
])
def test_bad_config_names_file_and_key(tmp_path: Path, text: str, words: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message


def test_missing_config_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


def test_custom_name_pattern(tmp_path: Path) -> None:
    cfg = config.load(write(tmp_path, "[ingest]\nname_patterns = [{regex = '^DCAM_(?P<serial>\\\\w+)_', model = 'DC*'}]\n"))
    assert cfg.ingest.name_patterns[0].model == "DC*"


def test_the_catalogs_head_revision_is_alembics() -> None:
    """``db.is_current`` reads the head from the file names; alembic must agree."""
    from alembic.config import Config as AlembicConfig
    from alembic.script import ScriptDirectory

    from vaultd.catalog import db

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(db.MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == db.head_revision()
