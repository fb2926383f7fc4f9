"""Token counting: a model's tokenizer.json without transformers, cached counts, tiktoken
only from the local cache (never the network), budgets, sentence-boundary truncation."""

from __future__ import annotations

import functools
import hashlib
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.curate import tokens
from engine.curate.tokens import (
    DEFAULT_BUDGETS,
    TokenCounter,
    TokenizerUnavailable,
    budgets_for,
    counter_for_model,
    split_sentences,
    tiktoken_available,
    token_counter,
    truncate_at_sentence,
    word_counter,
)
from engine.workspace import Workspace

VOCAB_TEXT = "the river keeps its own counsel and town mill lane bread flour water salt"


def make_tokenizer_folder(folder: Path) -> Path:
    """A word-level tokenizer.json: one token per known word, [UNK] otherwise."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, **{word: i + 1 for i, word in enumerate(dict.fromkeys(VOCAB_TEXT.split()))}, ".": 99}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    return folder


@pytest.fixture(autouse=True)
def fresh_counters(monkeypatch):
    monkeypatch.setattr(tokens, "_COUNTERS", {})


def test_counts_with_the_models_own_tokenizer_json(tmp_path):
    counter = token_counter(make_tokenizer_folder(tmp_path / "model"))
    assert counter.count("the river keeps") == 3
    assert counter.count("") == 0
    assert counter.count_many(["the river", "bread flour water salt", "zebra"]) == [2, 4, 1]
    assert token_counter(tmp_path / "model") is counter  # one counter (and cache) per tokenizer


def test_counts_are_cached_by_text(tmp_path):
    calls: list[list[str]] = []

    def encode_many(texts):
        calls.append(list(texts))
        return [len(text.split()) for text in texts]

    counter = TokenCounter("spy", encode_many)
    assert counter.count_many(["a b", "c", "a b"]) == [2, 1, 2]
    assert calls == [["a b", "c"]]  # duplicates tokenised once, in one batch
    assert counter.count("a b") == 2 and counter("c") == 1
    assert len(calls) == 1  # served from the cache
    counter.count("new text")
    assert calls[-1] == ["new text"]


def test_tokenizer_json_path_does_not_import_transformers(tmp_path):
    folder = make_tokenizer_folder(tmp_path / "model")
    code = (
        "import sys\nfrom engine.curate.tokens import token_counter\n"
        f"assert token_counter({str(folder)!r}).count('the river') == 2\n"
        "print('transformers' in sys.modules, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


def test_folder_without_tokenizer_json_falls_back_to_transformers(tmp_path, monkeypatch):
    routed: list[str] = []
    monkeypatch.setattr(tokens, "_transformers_counter", lambda name, path, template: routed.append(path) or "fallback")
    (tmp_path / "gpt2-like").mkdir()
    assert token_counter(tmp_path / "gpt2-like") == "fallback"
    assert routed == [str(tmp_path / "gpt2-like")]


def test_missing_models_say_what_to_do(tmp_path):
    with pytest.raises(TokenizerUnavailable, match="no such model folder"):
        token_counter(tmp_path / "nowhere" / "demo-ar")
    with pytest.raises(TokenizerUnavailable, match="unknown encoding"):
        token_counter("tiktoken:not-an-encoding")


@pytest.fixture
def no_network(monkeypatch):
    """Record (and refuse) every attempt to open a connection."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_tiktoken_is_never_downloaded_when_not_cached(tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert not tiktoken_available("gpt2")
    with pytest.raises(TokenizerUnavailable, match="not in the local cache"):
        token_counter("tiktoken:gpt2")
    with pytest.raises(TokenizerUnavailable):
        token_counter("tiktoken:cl100k_base")
    assert no_network == []


def test_tiktoken_with_a_corrupt_cache_refuses_rather_than_refetching(tmp_path, monkeypatch, no_network):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    url = tokens.TIKTOKEN_FILES["r50k_base"][0]
    (cache / hashlib.sha1(url.encode()).hexdigest()).write_bytes(b"not an encoding")
    assert tiktoken_available("r50k_base")  # the file is there…
    with pytest.raises(TokenizerUnavailable, match="refused"):  # …but tiktoken would re-download it
        token_counter("tiktoken:r50k_base")
    assert no_network == []
    import tiktoken.load

    assert tiktoken.load.read_file.__name__ == "read_file"  # the guard was removed again


def test_budgets_defaults_model_context_and_config(tmp_path):
    (tmp_path / "voicebench.toml").write_text(
        '[budgets]\ndemo-ar = 256\nmy-model = 2048\n', encoding="utf-8"
    )
    budgets = budgets_for(Workspace.open(tmp_path))
    assert budgets["demo-ar"] == 256 and budgets["my-model"] == 2048
    assert budgets["gpt2-xl"] == 1024 and budgets["llada-8b-instruct"] == 4096
    assert budgets["demo-diffusion"] == DEFAULT_BUDGETS["demo-diffusion"] == 512
    (tmp_path / "voicebench.toml").write_text('[budgets]\ndemo-ar = "big"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"\[budgets\] demo-ar"):
        budgets_for(Workspace.open(tmp_path))


def test_counter_for_a_workspace_model(tmp_path):
    workspace = Workspace.open(tmp_path)
    with pytest.raises(TokenizerUnavailable):
        counter_for_model(workspace, "demo-ar")
    make_tokenizer_folder(tmp_path / "data" / "models" / "demo-ar")
    assert counter_for_model(Workspace.open(tmp_path), "demo-ar").count("bread and water") == 3


def test_split_sentences_keeps_all_text_and_closing_quotes():
    text = "He said “Stop.” Then he left! Did he? Yes…  Fine\n\nNew paragraph"
    sentences = split_sentences(text)
    assert "".join(sentences) == text
    assert [sentence.strip() for sentence in sentences] == [
        "He said “Stop.”", "Then he left!", "Did he?", "Yes…", "Fine", "New paragraph",
    ]


def test_truncate_at_sentence_boundary():
    text = "One two three. Four five six seven. Eight nine."
    assert truncate_at_sentence(text, 100, word_counter) == text
    assert truncate_at_sentence(text, 7, word_counter) == "One two three. Four five six seven."
    assert truncate_at_sentence(text, 6, word_counter) == "One two three."
    # The first sentence alone is too long: cut at a word instead, never over budget.
    assert truncate_at_sentence(text, 2, word_counter) == "One two"
    assert truncate_at_sentence(text, 0, word_counter) == ""


def test_truncate_with_a_real_tokenizer_stays_within_budget(tmp_path):
    counter = token_counter(make_tokenizer_folder(tmp_path / "model"))
    text = " ".join(["the river keeps its own counsel ."] * 30)
    for budget in (5, 13, 50, 120):
        cut = truncate_at_sentence(text, budget, counter)
        assert counter.count(cut) <= budget
        assert cut.endswith(".") or budget < 7


def test_model_paths_resolve_against_the_workspace_not_the_current_folder(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    make_tokenizer_folder(elsewhere / "data" / "models" / "demo-ar")
    monkeypatch.chdir(elsewhere)  # a demo-ar here must not be picked up for another workspace
    (tmp_path / "workspace").mkdir()
    with pytest.raises(TokenizerUnavailable):
        counter_for_model(Workspace.open(tmp_path / "workspace"), "demo-ar")


# Counting byte-level BPE by piece -----------------------------------------------------------

DEMO_MODEL = Path(__file__).resolve().parents[2] / "data" / "models" / "demo-ar"

# Fragments that meet every branch of the pre-tokenizer pattern and of the piece counter:
# runs of spaces and other whitespace (before words and at the end), contractions, digits,
# punctuation, non-ASCII letters and spaces, control characters, and the model's added tokens.
FRAGMENTS = [
    "the", "River", " ", "  ", "\n", "\n\n", "\t", "\r\n", " \n", "'s", "'ll", "'re", "n't", "42", " 7",
    ".", "!?", " —", "…", "café", "naïve", "\u00a0", "\u2003", "\x0b", "\x0c", "\x1c", "\x85", "\x7f",
    "<|end|>", "<|endoftext|>", "<|user|>", "mill-lane", "(quoted)", "\"", "'", "´s", "ﬁ", "🙂",
]


@functools.cache
def _tokenizer(folder: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json"))


def _exact_counts(folder: Path, texts: list[str]) -> list[int]:
    return [len(_tokenizer(folder).encode(text, add_special_tokens=False).ids) for text in texts]


@pytest.fixture(scope="module")
def whitespace_bpe(tmp_path_factory) -> Path:
    """A byte-level BPE trained on text full of space and newline runs, so its vocabulary
    merges whitespace ("  ", "\n\n", " \n") as GPT-2's does: cutting a text anywhere but at
    a pre-token boundary would change its count."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    rng = random.Random(1)
    corpus = ["".join(rng.choices(FRAGMENTS, k=40)) for _ in range(300)] + ["a  b   c    d\n\n\ne \n f\t\tg\n h\n "] * 50
    tokenizer.train_from_iterator(corpus, trainer)
    folder = tmp_path_factory.mktemp("whitespace-bpe")
    tokenizer.save(str(folder / "tokenizer.json"))
    merged = [token for token in tokenizer.get_vocab() if len(token) > 1 and set(token) <= set("ĠĊĉč")]
    assert "ĠĠ" in merged and "ĊĊ" in merged  # the property the tests below rely on
    return folder


@pytest.fixture(params=["demo", "whitespace"])
def bpe_folder(request, whitespace_bpe) -> Path:
    return DEMO_MODEL if request.param == "demo" else whitespace_bpe


def test_byte_level_bpe_counts_by_piece_and_matches_whole_text_tokenisation(bpe_folder):
    counter = token_counter(bpe_folder)
    pieces = counter._encode_many
    assert isinstance(pieces, tokens._PieceCounts)  # byte-level BPE takes the fast path
    rng = random.Random(5)
    texts = ["", " ", "a ", " a", "a  b", "a   b", "a \nb", "a\n\n b", "end. ", "end.  ", "end\n ", "end\n\n ", "plain words, one space each."]
    texts += ["".join(rng.choices(FRAGMENTS, k=rng.randint(1, 40))) for _ in range(400)]
    texts += [" ".join(rng.choices(["the", "river", "keeps", "it's", "1984,", "counsel.", "\n"], k=rng.randint(1, 60)))
              for _ in range(200)]
    assert counter.count_many(texts) == _exact_counts(bpe_folder, texts)
    assert pieces._bare and pieces._spaced  # both ways of cutting were used


def test_piece_tables_that_overflow_are_emptied_and_counts_stay_exact(monkeypatch):
    monkeypatch.setattr(tokens, "_PIECE_CACHE_LIMIT", 5)
    counter = token_counter(DEMO_MODEL)
    texts = [f"word{i} and more words {i * 7}" for i in range(50)]
    for start in range(0, 50, 10):
        assert counter.count_many(texts[start:start + 10]) == _exact_counts(DEMO_MODEL, texts[start:start + 10])
    assert len(counter._encode_many._bare) + len(counter._encode_many._spaced) < 40


@given(text=st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join) | st.text(max_size=60))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_counts_by_piece_equal_the_tokenizer_on_any_text(bpe_folder, text):
    counter = token_counter(bpe_folder)
    assert counter.count_many([text]) == _exact_counts(bpe_folder, [text])
    assert counter.at_most_bytes and counter.count(text) <= len(text.encode("utf-8"))  # the bound budgets rely on


@pytest.mark.parametrize("change", ["prefix space", "normaliser", "no regex", "dropout"])
def test_tokenizers_that_change_text_otherwise_are_counted_whole(tmp_path, change):
    import json

    config = json.loads((DEMO_MODEL / "tokenizer.json").read_text(encoding="utf-8"))
    if change == "prefix space":
        config["pre_tokenizer"]["add_prefix_space"] = True
    elif change == "normaliser":
        config["normalizer"] = {"type": "Lowercase"}
    elif change == "no regex":
        config["pre_tokenizer"]["use_regex"] = False
    else:
        config["model"]["dropout"] = 0.5
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps(config), encoding="utf-8")
    counter = token_counter(folder)
    assert not isinstance(counter._encode_many, tokens._PieceCounts)
    # A normaliser or an added prefix space can lengthen the text: no bytes bound then.
    assert counter.at_most_bytes == (change in ("no regex", "dropout"))
    if change != "dropout":  # dropout makes counts random; only the routing is checked
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        texts = ["The River keeps  its counsel.", "a b c", "Mill Lane\n\nbread"]
        assert counter.count_many(texts) == [len(tokenizer.encode(text, add_special_tokens=False).ids) for text in texts]
