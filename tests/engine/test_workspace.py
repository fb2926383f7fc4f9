from __future__ import annotations

import pytest

from engine.workspace import Workspace, WorkspaceError, init_workspace


def test_repo_root_is_the_demo_workspace(repo_root):
    workspace = Workspace.open(repo_root)
    assert workspace.pairs_path == repo_root / "data" / "pairs.jsonl"
    assert workspace.model("demo-ar").path == str(repo_root / "data" / "models" / "demo-ar")


def test_init_makes_an_openable_workspace(tmp_path):
    workspace = init_workspace(tmp_path / "new")
    assert workspace.sources_dir.is_dir()
    assert workspace.pairs_path.read_text() == ""
    assert Workspace.open(tmp_path / "new").root == workspace.root


def test_model_table_without_path_names_file_and_table(tmp_path):
    (tmp_path / "voicebench.toml").write_text('[models.mine]\nfamily = "causal"\n')
    with pytest.raises(WorkspaceError, match=r"voicebench.toml: \[models.mine\] needs a `path`"):
        Workspace.open(tmp_path)


def test_bad_toml_names_the_file(tmp_path):
    (tmp_path / "voicebench.toml").write_text("[models\n")
    with pytest.raises(WorkspaceError, match="voicebench.toml"):
        Workspace.open(tmp_path)


def test_configured_model_overrides_default(tmp_path):
    (tmp_path / "voicebench.toml").write_text(
        '[models.llada-8b-instruct]\npath = "/models/llada"\nfamily = "llada"\ntrust_remote_code = true\n'
    )
    entry = Workspace.open(tmp_path).model("llada-8b-instruct")
    assert entry.path == "/models/llada" and entry.trust_remote_code
