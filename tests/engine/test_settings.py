"""The one settings reader: line numbers, kinds, ranges, unknown names with a suggestion."""

from __future__ import annotations

import pytest

from engine.settings import (Key, NamedTables, SettingsError, Table, TableArray, describe_key, key_lines,
                             read_settings)
from engine.workspace import settings_schema

SCHEMA = {
    "models": NamedTables(Table({"path": Key("str", required=True), "trust_remote_code": Key("bool")})),
    "sampler": Table({"steps": Key("int", minimum=1), "temperature": Key("float", minimum=0),
                      "remasking": Key("str", choices=("low_confidence", "random"))}),
    "criterion": TableArray(Table({"name": Key("str", required=True), "scale": Key("int list")})),
}


def read(tmp_path, text: str | bytes):
    path = tmp_path / "settings.toml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return read_settings(path, SCHEMA)


def error_of(tmp_path, text: str | bytes) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        read(tmp_path, text)
    return caught.value


def test_key_lines_skip_multiline_values_and_count_array_entries():
    text = '''# header
[sampler]
steps = 4
notes = """
[fake]
steps = 9
"""
list = [
  "a", # ]
  "b",
]
[[criterion]]
name = "voice"
[[criterion]]
"quoted.key" = 1
name = 'craft' # comment
[models."my.model"]
path = "x"
'''
    lines = key_lines(text)
    assert lines[("sampler", "steps")] == 3
    assert ("fake",) not in lines and lines[("sampler", "list")] == 8
    assert lines[("criterion", 0, "name")] == 13
    assert lines[("criterion", 1)] == 14 and lines[("criterion", 1, "name")] == 16
    assert lines[("criterion", 1, "quoted.key")] == 15
    assert lines[("models", "my.model", "path")] == 18


@pytest.mark.parametrize(("text", "line", "key", "fragment"), [
    ('[sampler]\nsteps = "4"\n', 2, "[sampler] steps", 'must be a whole number, got "4" (a string). Write a whole number, '
                                                      "without quotes."),
    ("[sampler]\nsteps = true\n", 2, "[sampler] steps", "must be a whole number, got true (a boolean)"),
    ("[sampler]\nsteps = 0\n", 2, "[sampler] steps", "must be at least 1, got 0"),
    ("[sampler]\ntemperature = -inf\n", 2, "[sampler] temperature", "must be a finite number, got -inf"),
    ('[sampler]\nremasking = "randm"\n', 2, "[sampler] remasking", "Did you mean `random`?"),
    ("[sampler]\nstepz = 3\n", 2, "[sampler] stepz", "unknown key. Did you mean `steps`?"),
    ("[samplr]\nsteps = 3\n", 1, "[samplr]", "unknown table. Did you mean `sampler`?"),
    ('[models.mine]\ntrust_remote_code = "false"\npath = "x"\n', 2, "[models.mine] trust_remote_code",
     "must be true or false"),
    ("[models.mine]\ntrust_remote_code = false\n", 1, "[models.mine]", "missing `path`"),
    ('[[criterion]]\nname = "voice"\nscale = [1, "5"]\n', 3, "criterion 'voice': scale", "must be a list of whole numbers"),
    ("[[criterion]]\nscale = [1, 5]\n", 1, "criterion #1", "missing `name`"),
])
def test_errors_carry_file_line_and_key(tmp_path, text, line, key, fragment):
    error = error_of(tmp_path, text)
    assert (error.line, error.key) == (line, key)
    assert str(error).startswith(f"{tmp_path / 'settings.toml'}:{line}: {key}: ")
    assert fragment in str(error)


def test_syntax_and_encoding_errors_name_the_line(tmp_path):
    assert error_of(tmp_path, "[sampler]\nsteps = = 4\n").line == 2
    error = error_of(tmp_path, b"[sampler]\n\nsteps = 4 # \xff\n")
    assert error.line == 3 and "not UTF-8" in str(error)
    with pytest.raises(SettingsError, match="absent.toml: file not found"):
        read_settings(tmp_path / "absent.toml", SCHEMA)


def test_a_good_file_reads_as_data(tmp_path):
    settings = read(tmp_path, '\ufeff[sampler]\nsteps = 8\ntemperature = 1\n[models.mine]\npath = "x"\n')
    assert settings.data["sampler"] == {"steps": 8, "temperature": 1}
    assert settings.line("models", "mine", "path") == 5


def test_the_readme_documents_every_voicebench_toml_key(repo_root):
    readme = (repo_root / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### voicebench.toml reference"):readme.index("### When model code runs")]
    for table, part in settings_schema().items():
        assert f"[{table}" in section
        spec = getattr(part, "entry", part)
        for key, key_spec in spec.keys.items():  # name, kind and limits as the reader checks them
            assert f"`{key}` ({describe_key(key_spec)};" in section, (table, key)


@pytest.mark.parametrize("text", ["a = " + "[" * 100_000, "a = " + "{b=" * 5_000, "x = 1" + "0" * 5_000],
                         ids=["deep arrays", "deep tables", "5000 digits"])
def test_deep_nesting_and_huge_numbers_are_settings_errors(tmp_path, text):
    assert "not usable TOML" in str(error_of(tmp_path, text))
