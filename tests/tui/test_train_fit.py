"""Will it fit? The Train screen's memory estimate before launch, its breakdown (F10), the
measured peak beside it while a run trains, and the app process never importing torch for it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap

import pytest

from engine.models.memory import GIB, ModelShape, TrainPlan, estimate_for_config, estimate_training
from engine.train.config import TrainConfig
from engine.workspace import Workspace
from tests.tui.test_train import fake_child, open_train, wait_until
from tests.tui.train_fixtures import write_workspace
from tests.tui.waiting import workers_done
from tui.app import make_app
from tui.widgets.train_fit import fit_line, fit_report

pytestmark = pytest.mark.anyio

# LLaDA-8B-like sizes: 8.0 B parameters, 126k vocabulary (the logits are large).
LLADA_8B = ModelShape(model_type="llada", block="llama-block", parameters=8_015_581_184,
                      block_linear=6_979_321_856, lora_width=32 * (2 * 4096 * 2 + 2 * 8192 + 3 * 16384),
                      vocab=126_464, hidden=4096, kv_width=4096, intermediate=12_288, layers=32, diffusion=True)


@pytest.fixture
def anyio_backend():
    return "asyncio"


def line(screen) -> str:
    return str(screen.query_one("#train-fit").render())


def report(screen) -> str:
    return str(screen.query_one("#train-fit-report").render())


def test_fit_line_says_need_verdict_and_cheapest_change_and_fits_80_columns():
    estimate = estimate_training(LLADA_8B, TrainPlan(method="lora", max_length=1024, batch_size=4))
    assert estimate.advice, "a plan that needs a big card has a cheaper change"
    wide = fit_line(estimate, width=118).plain
    assert wide.startswith(f"GPU needs ~{estimate.total_bytes / GIB:.1f} GB: fits {estimate.smallest_card} GB")
    assert estimate.advice[0].text() in wide and wide.endswith("F10 details")
    # At 80 columns the right pane is ~44 cells wide: the need and verdict stay, whole.
    narrow = fit_line(estimate, width=44).plain
    assert len(narrow) <= 44 and narrow.startswith("GPU needs ~") and f"fits {estimate.smallest_card} GB" in narrow
    measured = fit_line(estimate, width=118, measured_mib=20_000).plain
    assert "measured 19.5 GB" in measured
    full = fit_report(estimate, measured_mib=20_000, measured_label="run #1").plain
    for term in ("weights", "optimizer states", "activations", "logits", "CUDA overhead", "predicted peak",
                 "cards: 16 GB", "cheapest change", "Measured by run #1: 19.5 GB"):
        assert term in full


def test_quick_estimates_never_import_torch_and_say_when_they_would(tiny_llama_dir, tiny_gpt2_dir, tiny_masked_dir,
                                                                   tmp_path):
    root = write_workspace(tmp_path / "ws", {"tiny-llama": tiny_llama_dir, "tiny-gpt2": tiny_gpt2_dir,
                                             "tiny-bert": tiny_masked_dir})
    script = textwrap.dedent(f"""
        import sys
        from engine.workspace import Workspace
        from engine.train.config import TrainConfig
        from engine.models.memory import ShapeError, estimate_for_config
        import tui.screens.train  # the screen's own imports too
        workspace = Workspace.open({str(root)!r})
        for name in ("tiny-llama", "tiny-gpt2"):
            print(name, estimate_for_config(workspace, TrainConfig(model=name), quick=True, torch_free=True).total_bytes)
        try:
            estimate_for_config(workspace, TrainConfig(model="tiny-bert", method="diffusion"), quick=True, torch_free=True)
        except ShapeError as error:
            print("bert:", error)
        print("torch loaded:", "torch" in sys.modules, "transformers" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "torch loaded: False False" in out
    assert "bert: modernbert models are sized on the meta device" in out and "--estimate --model tiny-bert" in out
    # The torch-free sizes agree with the full (meta-device) path for the families it covers.
    workspace = Workspace.open(root)
    for name in ("tiny-llama", "tiny-gpt2"):
        quick = int(next(part.split()[1] for part in out.splitlines() if part.startswith(name)))
        full = estimate_for_config(workspace, TrainConfig(model=name)).total_bytes
        assert abs(quick - full) <= 0.05 * full


async def test_estimate_follows_the_form_and_f10_shows_the_breakdown(tiny_llama_dir, tiny_masked_dir, tmp_path,
                                                                     monkeypatch):
    fake_child(monkeypatch, "steps")
    root = write_workspace(tmp_path / "ws", {"tiny-llama": tiny_llama_dir, "tiny-bert": tiny_masked_dir})
    workspace = Workspace.open(root)
    app = make_app(workspace)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        assert "memory estimate needs demo-ar's config.json, which is not on this machine" in line(screen)
        form = screen.query_one("TrainForm")
        from textual.widgets import Select

        form.query_one("#train-model", Select).value = "tiny-llama"
        await pilot.pause()
        await workers_done(app)
        await pilot.pause()
        launched = dataclasses.replace(TrainConfig(), **form.settings())
        expected = estimate_for_config(workspace, launched, quick=True)
        assert line(screen).startswith(f"GPU needs ~{expected.total_bytes / GIB:.1f} GB: fits 16 GB")
        before = screen.estimate[0].total_bytes
        assert before == expected.total_bytes

        form.input("batch_size").value = "64"  # typing: one estimate after the pause, for the last value
        form.input("max_length").value = "4096"
        await pilot.pause()
        await workers_done(app)
        await pilot.pause()
        after = screen.estimate[0]
        assert (after.plan.batch_size, after.plan.max_length) == (64, 4096) and after.total_bytes > before

        form.input("batch_size").value = "x"
        await pilot.pause()
        await workers_done(app)
        assert "estimate waits for the form: batch size: 'x' is not a whole number" in line(screen)
        form.input("batch_size").value = "4"

        await pilot.press("f10")
        await workers_done(app)
        await pilot.pause()
        assert screen.query_one("#train-tabs").active == "memory"
        breakdown = report(screen)
        assert "predicted peak" in breakdown and "logits" in breakdown and "cards: 16 GB fits" in breakdown

        form.query_one("#train-model", Select).value = "tiny-bert"  # ModernBERT: sized only with torch
        await pilot.pause()
        await workers_done(app)
        await pilot.pause()
        assert "memory estimate unavailable: modernbert models are sized on the meta device" in line(screen)
        assert "voicebench train --estimate --model tiny-bert" in report(screen)


async def test_a_running_run_shows_its_measured_peak_beside_the_prediction(tiny_llama_dir, tmp_path, monkeypatch):
    control = tmp_path / "control"
    fake_child(monkeypatch, "steps", gates=("eval-2",), control=control)
    root = write_workspace(tmp_path / "ws", {"tiny-llama": tiny_llama_dir})
    app = make_app(Workspace.open(root))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_train(pilot)
        from textual.widgets import Select

        screen.query_one("TrainForm").query_one("#train-model", Select).value = "tiny-llama"
        await pilot.pause()
        await workers_done(app)
        predicted = screen.estimate[0]
        assert predicted is not None
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "measured" in line(screen))  # the fake reports 800 MiB a step
        assert f"GPU needs ~{predicted.total_bytes / GIB:.1f} GB · measured 0.8 GB" in line(screen)
        assert "0.8 GB peak against" in report(screen)
        (control / "eval-2").write_text("")
        await wait_until(pilot, lambda: screen.live.exit_code is not None)
        await workers_done(app)
        await pilot.pause()
        assert "measured" not in line(screen)  # back to the form's estimate…
        assert "measured 0.8 GB peak against" in report(screen)  # …the breakdown keeps the last run's
