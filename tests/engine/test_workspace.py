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
    with pytest.raises(WorkspaceError, match=r"voicebench.toml:1: \[models.mine\]: missing `path`"):
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


def test_relative_model_paths_belong_to_the_workspace_not_the_current_folder(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    (root / "models").mkdir(parents=True)
    (root / "voicebench.toml").write_text('[models.mine]\npath = "models/mine"\n[models.bare]\npath = "bare"\n')
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data" / "models" / "demo-ar").mkdir(parents=True)  # a decoy in the current folder
    monkeypatch.chdir(elsewhere)
    workspace = Workspace.open(root)
    # Not built yet, and still absolute under the root: errors name the workspace's folder.
    assert workspace.model("demo-ar").path == str(root / "data" / "models" / "demo-ar")
    assert workspace.model("mine").path == str(root / "models" / "mine")  # "models/x" with a models/ folder
    assert workspace.model("bare").path == str(root / "bare")
    (root / "typed").mkdir()
    assert workspace.model("typed").path == str(root / "typed")  # a typed path: the workspace's first…
    assert workspace.model("data/models/demo-ar").path == "data/models/demo-ar"  # …else as typed (ad hoc)


def test_hub_ids_and_absolute_paths_stay_as_configured(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "voicebench.toml").write_text('[models.llama-local]\npath = "~/models/llama"\n')
    workspace = Workspace.open(tmp_path)
    assert workspace.model("llada-8b-instruct").path == "GSAI-ML/LLaDA-8B-Instruct"
    assert workspace.model("gpt2-xl").path == "openai-community/gpt2-xl"
    assert workspace.model("meta-llama/Llama-3.1-8B-Instruct").path == "meta-llama/Llama-3.1-8B-Instruct"
    assert workspace.model("llama-local").path == "~/models/llama"  # expanded by the model loader
    assert workspace.model(str(tmp_path / "abs")).path == str(tmp_path / "abs")


def test_remote_code_only_on_a_real_yes(tmp_path):
    from engine.workspace import DEFAULT_MODELS, WorkspaceSettingsError

    assert not any(entry.trust_remote_code for entry in DEFAULT_MODELS)  # no built-in entry turns it on
    for value in ('"false"', '"yes"', "1", "0", '""'):
        (tmp_path / "voicebench.toml").write_text(f'[models.mine]\npath = "x"\ntrust_remote_code = {value}\n')
        with pytest.raises(WorkspaceSettingsError, match=r"voicebench.toml:3: \[models.mine\] trust_remote_code: "
                                                         r"must be true or false") as caught:
            Workspace.open(tmp_path)
        assert (caught.value.line, caught.value.key) == (3, "[models.mine] trust_remote_code")
    (tmp_path / "voicebench.toml").write_text('[models.mine]\npath = "x"\ntrust_remote_code = false\n')
    assert Workspace.open(tmp_path).model("mine").trust_remote_code is False
