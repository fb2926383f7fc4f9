"""engine/train without a training loop: data/labels, config TOML, LoRA targets, events, memorisation."""

from __future__ import annotations

import json

import pytest

from engine.train.objectives import IGNORE_INDEX
from engine.train import config as train_config
from engine.train.data import CausalCollator, DiffusionCollator, build_examples, encode_pair, TrainingPair
from engine.train.events import (
    TRAIN_EVENTS,
    CanaryEvent,
    CheckpointEvent,
    DoneEvent,
    ErrorEvent,
    EvalEvent,
    LogEvent,
    MemorisationEvent,
    PhaseEvent,
    StartEvent,
    StepEvent,
    parse_event,
)
from engine.train.trainer import MemorisationWatch

PROMPT = "Write about the river."
RESPONSE = "The river keeps its own counsel."


@pytest.fixture(scope="module")
def tokenizer(tiny_llama_dir):
    from engine.models.loading import load_tokenizer

    return load_tokenizer(str(tiny_llama_dir))


def _trained_text(tokenizer, batch, row=0):
    labels = batch["labels"][row]
    return tokenizer.decode([int(t) for t in labels if int(t) != IGNORE_INDEX])


def test_chat_template_labels_cover_exactly_the_assistant_turn(tokenizer):
    ids, prompt_length = encode_pair(tokenizer, PROMPT, RESPONSE, "chat")
    prompt_text = tokenizer.decode(ids[:prompt_length])
    assert prompt_text == f"<|user|>\n{PROMPT}<|end|>\n<|assistant|>\n"
    short = encode_pair(tokenizer, "Hi.", "Yes.", "chat")
    batch = CausalCollator(tokenizer.pad_token_id)(
        [{"input_ids": ids, "prompt_length": prompt_length}, {"input_ids": short[0], "prompt_length": short[1]}]
    )
    # Response, end of turn and EOS are trained; prompt and the short row's padding are not.
    assert _trained_text(tokenizer, batch) == f"{RESPONSE}<|end|>\n<|endoftext|>"
    labels, mask = batch["labels"][1], batch["attention_mask"][1]
    assert (labels[: short[1]] == IGNORE_INDEX).all()
    assert (labels[mask == 0] == IGNORE_INDEX).all()
    assert int((mask == 0).sum()) == len(ids) - len(short[0])


def test_plain_template_is_prompt_response_eos_even_when_pad_is_eos(tokenizer):
    ids, prompt_length = encode_pair(tokenizer, PROMPT, RESPONSE, "plain")
    assert prompt_length == len(tokenizer(PROMPT)["input_ids"])
    assert ids[-1] == tokenizer.eos_token_id
    other = encode_pair(tokenizer, "Hi.", "Yes.", "plain")
    # GPT-2 style: no pad token, so EOS pads. The real EOS must still be trained.
    batch = CausalCollator(tokenizer.eos_token_id)(
        [{"input_ids": ids, "prompt_length": prompt_length}, {"input_ids": other[0], "prompt_length": other[1]}]
    )
    assert _trained_text(tokenizer, batch, 0) == f"{RESPONSE}<|endoftext|>"
    assert _trained_text(tokenizer, batch, 1) == "Yes.<|endoftext|>"


def test_examples_truncate_responses_and_skip_prompts_that_fill_max_length(tokenizer):
    long_prompt = TrainingPair("a", "river " * 80, RESPONSE, "train")
    fits = TrainingPair("b", PROMPT, RESPONSE * 10, "train")
    examples, skipped = build_examples(tokenizer, [long_prompt, fits], "plain", max_length=32)
    assert skipped == 1
    assert len(examples) == 1 and len(examples[0].input_ids) == 32


def test_diffusion_collator_pads_with_attended_eos(tokenizer):
    rows = [encode_pair(tokenizer, PROMPT, RESPONSE, "chat"), encode_pair(tokenizer, "Hi.", "Yes.", "chat")]
    batch = DiffusionCollator(tokenizer.eos_token_id)([{"input_ids": i, "prompt_length": p} for i, p in rows])
    short_ids, short_prompt = rows[1]
    assert batch["prompt_lengths"].tolist() == [rows[0][1], short_prompt]
    assert batch["attention_mask"].all()
    assert (batch["input_ids"][1, len(short_ids):] == tokenizer.eos_token_id).all()


def test_config_round_trips_through_toml_and_rejects_unknown_keys(tmp_path):
    config = train_config.TrainConfig(model="demo-ar", method="qlora", lr=3e-4, lora_targets=["q_proj", "v_proj"],
                                      early_stop=True, out="runs/x")
    path = tmp_path / "config.toml"
    train_config.save_config(config, path)
    assert train_config.load_config(path) == config
    path.write_text(path.read_text() + "learning_rate = 1\n")
    with pytest.raises(train_config.ConfigError, match=r"config.toml: unknown keys \['learning_rate'\]"):
        train_config.load_config(path)
    with pytest.raises(train_config.ConfigError, match="method = 'sgd'"):
        train_config.config_from_dict({"method": "sgd"})


def test_default_learning_rates_are_lower_for_diffusion_and_full():
    lora, full = train_config.default_lr("causal", "lora"), train_config.default_lr("causal", "full")
    assert lora == 2e-4 and full < lora
    assert train_config.default_lr("diffusion", "lora") < lora
    assert train_config.default_lr("diffusion", "diffusion") < full
    assert train_config.default_lr("causal", "lora", parameter_count=1_000_000) > lora


# LoRA targets -----------------------------------------------------------------------------------
def _model(path):
    from engine.models.loading import load_model

    return load_model(str(path)).model


def test_lora_targets_per_family(tiny_llama_dir, tiny_gpt2_dir, tiny_masked_dir):
    from engine.train.lora import resolve_targets

    llama = resolve_targets(_model(tiny_llama_dir), None, "causal")
    assert {name.rsplit(".", 1)[-1] for name in llama} == {
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert len(llama) == 2 * 7 and "lm_head" not in llama
    gpt2 = resolve_targets(_model(tiny_gpt2_dir), None, "causal")
    assert {name.rsplit(".", 1)[-1] for name in gpt2} == {"c_attn", "c_proj", "c_fc"}
    assert len(gpt2) == 2 * 4  # c_proj sits in both attention and MLP
    bert = resolve_targets(_model(tiny_masked_dir), None, "masked")
    assert {name.rsplit(".", 1)[-1] for name in bert} == {"Wqkv", "Wo", "Wi"}
    assert not any(name.startswith(("head", "decoder")) for name in bert)


def test_llada_targets_skip_the_lm_head_named_ff_out(tiny_llada_dir):
    from engine.models.loading import load_model
    from engine.train.lora import resolve_targets

    model = load_model(str(tiny_llada_dir)).model
    targets = resolve_targets(model, None, "llada")
    head = [name for name, _ in model.named_modules() if name.endswith("ff_out") and ".blocks." not in name]
    assert head, "the model must have an LM head named ff_out for this test to mean anything"
    assert not set(head) & set(targets)
    assert {name.rsplit(".", 1)[-1] for name in targets} == {
        "q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out"}


def test_lora_target_list_matching_nothing_is_an_error_naming_real_layers(tiny_llama_dir):
    from engine.train.lora import LoraTargetError, resolve_targets

    with pytest.raises(LoraTargetError) as caught:
        resolve_targets(_model(tiny_llama_dir), ["c_attn", "query"], "causal", source="tiny-llama")
    message = str(caught.value)
    assert "['c_attn', 'query']" in message and "q_proj" in message and "down_proj" in message
    assert "--lora-targets" in message


# Events -----------------------------------------------------------------------------------------
def _one_of_each():
    return [
        StartEvent(run_id="r", run_dir="/r", model="m", family="causal", objective="causal", method="lora",
                   max_steps=3, start_step=0, resumed_from=None, world_size=1, train_examples=4,
                   val_examples=1, skipped_examples=0, trainable_parameters=10, total_parameters=100,
                   lr=2e-4, lr_note="set by you"),
        StepEvent(step=1, max_steps=3, epoch=0.5, loss=2.5, lr=2e-4, grad_norm=None, tokens_per_s=10.0,
                  memory=12.5, world_size=2, elapsed_s=1.0, eta_s=2.0),
        EvalEvent(step=1, val_loss=2.0),
        CheckpointEvent(step=1, path="/r/checkpoints/checkpoint-1"),
        CanaryEvent(step=0, canary_id="river-short", prompt="p", text="t", seed=0,
                    settings={"sampler": "causal", "max_new_tokens": 4}, seconds=0.1),
        MemorisationEvent(step=2, val_loss=2.2, best_val_loss=2.0, train_loss=1.0, best_train_loss=1.5, stopping=False),
        LogEvent(level="warning", message="w"),
        ErrorEvent(error_kind="oom", message="m", advice="a", step=2, resumable=True),
        DoneEvent(status="failed", step=2, run_dir="/r", last_checkpoint=None, resumable=True, seconds=1.0),
        PhaseEvent(phase="canaries", step=20, done=3, total=5, detail="checkpoint-20", eta_s=12.5),
    ]


def test_every_event_round_trips_as_one_json_line_with_the_documented_keys():
    events = _one_of_each()
    assert {event.kind for event in events} == set(TRAIN_EVENTS)
    for event in events:
        line = event.to_json()
        assert "\n" not in line
        payload = json.loads(line)
        assert payload["event"] == event.kind
        assert parse_event(line) == event
    step = json.loads(events[1].to_json())
    assert {"step", "loss", "lr", "tokens_per_s", "memory", "world_size"} <= set(step)
    error = json.loads(events[7].to_json())
    assert error["kind"] == "oom" and {"message", "advice"} <= set(error) and "error_kind" not in error


def test_readers_ignore_unknown_kinds_and_keys():
    assert parse_event('{"event":"telemetry","x":1}') is None
    event = parse_event('{"event":"eval","step":3,"val_loss":1.5,"added_later":true}')
    assert event == EvalEvent(step=3, val_loss=1.5)


def test_memorisation_fires_when_val_rises_while_train_falls():
    watch = MemorisationWatch(patience=2)
    assert not watch.update(val_loss=3.0, train_loss=3.5)  # first eval sets the best
    assert not watch.update(val_loss=2.5, train_loss=3.0)  # both improve
    assert not watch.update(val_loss=2.7, train_loss=2.5)  # val up, train down: streak 1
    assert watch.update(val_loss=2.8, train_loss=2.0)  # streak 2 = patience
    noisy = MemorisationWatch(patience=1)
    noisy.update(val_loss=2.0, train_loss=2.0)
    assert not noisy.update(val_loss=2.1, train_loss=2.2)  # both worse: noise, not memorisation


ARGS = type("Args", (), {"device": "cpu"})()  # on_log reads args.device for memory


def _callback(**kwargs):
    from engine.train.trainer import EventCallback

    emitted = []
    settings = dict(emit=emitted.append, is_main=True, world_size=1, cancel_requested=lambda: False,
                    early_stop=False, patience=1)
    settings.update(kwargs)
    return EventCallback(**settings), emitted


def _state(step):
    from transformers import TrainerControl, TrainerState

    state = TrainerState()
    state.global_step, state.max_steps, state.epoch = step, 10, step / 10
    return state, TrainerControl()


def test_early_stop_saves_and_stops_when_memorisation_fires():
    callback, emitted = _callback(early_stop=True)
    for step, train_loss, val_loss in [(1, 3.0, 2.0), (2, 2.0, 2.5)]:
        state, control = _state(step)
        callback.on_log(ARGS, state, control, logs={"loss": train_loss, "learning_rate": 1e-3})
        callback.on_evaluate(None, state, control, metrics={"eval_loss": val_loss})
    warning = [event for event in emitted if event.kind == "memorisation"]
    assert len(warning) == 1 and warning[0].stopping and warning[0].step == 2
    assert control.should_training_stop and control.should_save and callback.stopped_early


def test_a_cancel_request_finishes_the_step_with_a_save():
    callback, emitted = _callback(cancel_requested=lambda: True)
    state, control = _state(3)
    callback.on_step_end(None, state, control)
    assert control.should_save and control.should_training_stop and callback.cancelled
    assert emitted[-1].kind == "log" and "step 3" in emitted[-1].message


def test_settings_layering_for_config_and_resume(tmp_path):
    from engine.train.run import resolve_settings
    from engine.workspace import Workspace

    (tmp_path / "voicebench.toml").write_text("[train]\nlora_rank = 4\nbatch_size = 2\n")
    workspace = Workspace.open(tmp_path)
    fresh, resume_dir, _ = resolve_settings(workspace, {"batch_size": 8}, None, None)
    assert (fresh.lora_rank, fresh.batch_size, resume_dir) == (4, 8, None)  # workspace < flags
    run = tmp_path / "runs" / "x"
    train_config.save_config(train_config.TrainConfig(lr=1e-3, max_steps=7, out=str(run)), run / "config.toml")
    again, resume_dir, _ = resolve_settings(workspace, {}, "runs/x/config.toml", None)
    assert again.max_steps == 7 and again.out is None and resume_dir is None  # same settings, new folder
    resumed, resume_dir, checkpoint = resolve_settings(workspace, {"max_steps": 9}, None, "runs/x")
    assert resume_dir == run and resumed.max_steps == 9 and resumed.lr == 1e-3 and checkpoint is None
    _, resume_dir, checkpoint = resolve_settings(workspace, {}, None, "runs/x/checkpoints/checkpoint-3")
    assert resume_dir == run and checkpoint == run / "checkpoints" / "checkpoint-3"
    with pytest.raises(train_config.ConfigError, match="not a run folder"):
        resolve_settings(workspace, {}, None, "runs/missing")


# Reading run folders back (engine/train/runs.py: the Train screen's runs list and curves) -----------
DEAD_PID = 2**22 + 12345  # above Linux's pid_max default: no such process


def test_runs_list_summarises_folders_and_marks_dead_running_runs(tmp_path):
    from engine.train.runs import STALE_STATUS, config_diff, list_runs, read_curves
    from tests.tui.train_fixtures import write_run, write_two_runs

    runs = tmp_path / "runs"
    write_two_runs(runs)
    write_run(runs, "20260103-killed", status="running", losses=[5.0, 4.5], val={}, pid=DEAD_PID,
              updated_at="2026-01-03T00:00:00+00:00", model="demo-ar", max_steps=10)
    (runs / "not-a-run").mkdir()
    (runs / "20260101-090000-demo-ar-lora" / "events.jsonl").open("a").write('{"event": "step", "step": 9, "lo')
    listed = list_runs(runs)
    assert [run.run_id for run in listed] == ["20260103-killed", "20260102-090000-demo-ar-lora",
                                             "20260101-090000-demo-ar-lora"]
    killed, second, first = listed
    assert killed.status == STALE_STATUS and killed.resumable  # has a checkpoint, process gone
    assert (second.model, second.method, second.status, second.step, second.max_steps) == ("demo-ar", "lora", "done", 6, 6)
    assert not second.resumable and second.problem == ""
    assert first.last_loss == pytest.approx(3.0)  # the torn last line is ignored
    curves = read_curves(first.path / "events.jsonl")
    assert curves.val == [(4.0, 3.6), (8.0, 3.3)] and len(curves.train) == 8
    assert {key for key, _, _ in config_diff(first.config, second.config)} == {"lr", "max_steps", "lora_rank"}
    # The Train screen's own child is alive even when this process cannot see its pid yet.
    assert list_runs(runs, live_pids={DEAD_PID})[0].status == "running"


def test_runs_list_reads_status_events_and_diffs_saved_configs(tmp_path):
    from engine.train.runs import STALE_STATUS, config_diff, list_runs, read_events

    runs = tmp_path / "runs"
    for run_id, status, pid, updated in [("a", "done", None, "2026-01-01"), ("b", "running", DEAD_PID, "2026-01-02")]:
        folder = runs / run_id
        train_config.save_config(train_config.TrainConfig(lr=1e-3 if run_id == "a" else 5e-4), folder / "config.toml")
        (folder / "status.json").write_text(json.dumps({"status": status, "step": 4, "pid": pid, "updated_at": updated}))
    lines = [event.to_json() for event in _one_of_each()[:3]]
    (runs / "b" / "events.jsonl").write_text("\n".join(lines) + '\n{"event":"step","st')  # torn last line
    (runs / "empty").mkdir()
    (runs / "no-status").mkdir()
    train_config.save_config(train_config.TrainConfig(), runs / "no-status" / "config.toml")
    listed = list_runs(runs)
    assert [s.run_id for s in listed] == ["b", "a", "no-status"]
    assert listed[0].status == STALE_STATUS and listed[0].resumable  # killed before any checkpoint: from step 0
    assert listed[1].status == "done" and not listed[1].resumable and listed[1].step == 4
    assert (listed[2].status, listed[2].problem) == ("unknown", "status.json: missing")
    events = read_events(runs / "b" / "events.jsonl")
    assert [parse_event(event).kind for event in events] == ["start", "step", "eval"]
    assert config_diff(listed[1].config, listed[0].config) == [("lr", 1e-3, 5e-4)]
    as_dicts = train_config.config_to_dict(train_config.TrainConfig(out="a")), train_config.config_to_dict(
        train_config.TrainConfig(out="b", max_steps=3))
    assert config_diff(*as_dicts) == [("max_steps", train_config.TrainConfig().max_steps, 3)]  # "out" ignored


def test_resumed_run_drops_the_steps_it_redoes(tmp_path):
    from engine.train.runs import read_curves

    events = tmp_path / "events.jsonl"
    lines = [{"event": "start", "max_steps": 4, "start_step": 0}]
    lines += [{"event": "step", "step": step, "loss": 5.0 - step} for step in (1, 2, 3)]
    lines += [{"event": "start", "max_steps": 4, "start_step": 2}, {"event": "step", "step": 3, "loss": 1.5}]
    events.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert read_curves(events).train == [(1.0, 4.0), (2.0, 3.0), (3.0, 1.5)]


def test_loss_mask_preview_marks_exactly_the_response_tokens(tokenizer):
    from engine.train.data import loss_mask_preview

    preview = loss_mask_preview(tokenizer, PROMPT, RESPONSE, "chat", max_length=512)
    trained = "".join(text for text, is_trained in preview.tokens if is_trained)
    untrained = "".join(text for text, is_trained in preview.tokens if not is_trained)
    assert trained == f"{RESPONSE}<|end|>\n<|endoftext|>"
    assert untrained == f"<|user|>\n{PROMPT}<|end|>\n<|assistant|>\n"
    assert [is_trained for _, is_trained in preview.tokens] == sorted(is_trained for _, is_trained in preview.tokens)
    assert (preview.template, preview.cut_tokens) == ("chat", 0)
    marks = [is_trained for _, is_trained in preview.tokens]
    assert (preview.prompt_tokens, preview.response_tokens) == (marks.count(False), marks.count(True))
    short = loss_mask_preview(tokenizer, PROMPT, RESPONSE, "chat", max_length=20)
    assert len(short.tokens) == 20 and short.cut_tokens == len(preview.tokens) - 20
    assert [trained for _, trained in short.tokens].count(False) == short.prompt_tokens == preview.prompt_tokens
    assert short.response_tokens == 20 - short.prompt_tokens


def test_every_train_flag_has_help_and_maps_to_a_config_field():
    import argparse
    import dataclasses

    from engine.train.__main__ import build_parser
    from engine.train.options import RUN_ONLY_KEYS

    fields = {field.name for field in dataclasses.fields(train_config.TrainConfig)}
    actions = [a for a in build_parser()._actions if not isinstance(a, argparse._HelpAction)]
    assert all(action.help for action in actions)
    assert {a.dest for a in actions} - set(RUN_ONLY_KEYS) <= fields
    args = build_parser().parse_args(["--model", "demo-ar", "--lora-targets", "q_proj, v_proj", "--no-early-stop"])
    from engine.train.options import config_overrides

    assert config_overrides(args) == {"model": "demo-ar", "lora_targets": ["q_proj", "v_proj"], "early_stop": False}
