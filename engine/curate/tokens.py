"""Token counts and budgets: how long a pair is for a given model.

`token_counter(x)` returns a `TokenCounter` for
- a model folder with `tokenizer.json` (read with the `tokenizers` library, so the TUI never
  imports transformers); a folder without one falls back to transformers' AutoTokenizer;
- a Hugging Face id whose tokenizer is already in the local cache (never downloaded);
- `tiktoken:<encoding>` (e.g. `tiktoken:gpt2`, `tiktoken:cl100k_base`) — only when the
  encoding's files are already in tiktoken's local cache: tiktoken would otherwise download
  them on first use, and nothing here may touch the network.
A counter also knows its model's `pair_overhead`: the tokens training's layout
(`engine.train.data.encode_pair`: chat turns, headers, BOS, EOS) adds around a pair's prompt
and response, measured once on a probe pair with the model's own tokenizer and template, so
`count(prompt) + count(response) + pair_overhead` is the length training sees.
Counts are cached by a hash of the text, so recounting a 10,000-pair file after one edit
costs one tokenisation. A byte-level BPE tokenizer's counts are summed per pre-token from a
table (exact; see "Counting by pre-token"), and such a counter says `at_most_bytes`: no text
has more tokens than UTF-8 bytes, so budget checks can pass a short pair without counting it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

# Token budgets (context length a training example must fit in) by workspace model name.
# The workspace's ModelEntry.context_length and a `[budgets]` table in voicebench.toml
# override these (see `budgets_for`).
DEFAULT_BUDGETS: dict[str, int] = {
    "demo-ar": 512,
    "demo-diffusion": 512,
    "gpt2": 1024,
    "gpt2-xl": 1024,
    "llada-8b-instruct": 4096,
    "llama-3.1-8b-instruct": 8192,
}

TIKTOKEN_PREFIX = "tiktoken:"

# The files each tiktoken encoding reads (tiktoken_ext/openai_public.py), so we can check
# its cache before asking tiktoken for the encoding.
_BLOB = "https://openaipublic.blob.core.windows.net"
TIKTOKEN_FILES: dict[str, tuple[str, ...]] = {
    "gpt2": (f"{_BLOB}/gpt-2/encodings/main/vocab.bpe", f"{_BLOB}/gpt-2/encodings/main/encoder.json"),
    "r50k_base": (f"{_BLOB}/encodings/r50k_base.tiktoken",),
    "p50k_base": (f"{_BLOB}/encodings/p50k_base.tiktoken",),
    "p50k_edit": (f"{_BLOB}/encodings/p50k_base.tiktoken",),
    "cl100k_base": (f"{_BLOB}/encodings/cl100k_base.tiktoken",),
    "o200k_base": (f"{_BLOB}/encodings/o200k_base.tiktoken",),
    "o200k_harmony": (f"{_BLOB}/encodings/o200k_base.tiktoken",),
}

_CACHE_LIMIT = 200_000  # entries per counter before the cache is emptied

# Tokens assumed around a pair when no model's layout is known (a word estimate, a plain
# counting function): a chat template's turn markers and EOS are rarely more. A counter
# made from a model measures its own (`TokenCounter.pair_overhead`).
DEFAULT_PAIR_OVERHEAD_TOKENS = 8


class TokenizerUnavailable(Exception):
    """No tokenizer for this model is on this machine; the message says how to get one."""


class TokenCounter:
    """Counts tokens of text with one tokenizer, caching counts by text hash."""

    def __init__(self, name: str, encode_many: Callable[[list[str]], list[int]], *, at_most_bytes: bool = False,
                 layout_overhead: Callable[[], int] | None = None):
        self.name = name  # what the counter was made from (a folder, an HF id, tiktoken:<enc>)
        # Measures the model's pair overhead (see `pair_overhead`); None: not a model's tokenizer.
        self._layout_overhead = layout_overhead
        self._pair_overhead: int | None = None
        # True when no text ever has more tokens than UTF-8 bytes (byte-level BPE: every token
        # covers at least one byte), so a text short enough in bytes needs no counting to fit.
        self.at_most_bytes = at_most_bytes
        self._encode_many = encode_many  # texts -> token counts, no special tokens added
        self._cache: dict[bytes, int] = {}
        self._lock = threading.Lock()  # the TUI counts in a worker thread while the UI reads

    @property
    def pair_overhead(self) -> int:
        """Tokens training's layout adds around a pair (measured once; the default when this
        counter has no model layout)."""
        if self._pair_overhead is None:
            measured = self._layout_overhead() if self._layout_overhead is not None else None
            self._pair_overhead = DEFAULT_PAIR_OVERHEAD_TOKENS if measured is None else measured
        return self._pair_overhead

    def count(self, text: str) -> int:
        return self.count_many([text])[0]

    __call__ = count

    def count_many(self, texts: Iterable[str]) -> list[int]:
        """Counts for many texts; uncached ones are tokenised in one batch."""
        texts = list(texts)
        keys = [_text_key(text) for text in texts]
        with self._lock:
            counts = [self._cache.get(key) for key in keys]
        missing = [i for i, value in enumerate(counts) if value is None]
        if missing:
            unique: dict[bytes, str] = {keys[i]: texts[i] for i in missing}
            fresh = dict(zip(unique, self._encode_many(list(unique.values())), strict=True))
            with self._lock:
                if len(self._cache) + len(fresh) > _CACHE_LIMIT:
                    self._cache.clear()
                self._cache.update(fresh)
            for i in missing:
                counts[i] = fresh[keys[i]]
        return counts  # type: ignore[return-value]

    def __repr__(self) -> str:
        return f"TokenCounter({self.name!r})"


def pair_overhead(counter: Any) -> int:
    """The `pair_overhead` of a counter (a TokenCounter, or anything with that attribute, or
    its bound `count`/`count_many`); the documented default for anything else (a word
    estimate, a plain function)."""
    owner = getattr(counter, "__self__", counter)
    overhead = getattr(owner, "pair_overhead", None)
    return overhead if isinstance(overhead, int) and not isinstance(overhead, bool) else DEFAULT_PAIR_OVERHEAD_TOKENS


def _measured_overhead(make_tokenizer: Callable[[], Any], model_type: Callable[[], str],
                       template: str) -> Callable[[], int | None]:
    """A function measuring `engine.train.data.layout_overhead` for a model's tokenizer with
    the template training would use (`[train] template`, "auto" by default), or None when the
    tokenizer cannot lay a pair out that way (training reports that template's error itself)."""

    def measure() -> int | None:
        from engine.train.data import layout_overhead, resolve_template

        try:
            tokenizer = make_tokenizer()
            return layout_overhead(tokenizer, resolve_template(template, tokenizer, model_type()))
        except Exception:  # noqa: BLE001 - a broken or unsupported template: fall back to the default
            return None

    return measure


def _model_type_in(folder: Path) -> str:
    """config.json's model_type in a model folder ("" when there is none)."""
    try:
        value = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=16).digest()


# Counters are shared, so every screen and command reuses one cache per tokenizer.
_COUNTERS: dict[tuple[str, str], TokenCounter] = {}
_COUNTERS_LOCK = threading.Lock()


def token_counter(model_dir_or_name: str | os.PathLike[str], template: str = "auto") -> TokenCounter:
    """A counter for a model folder, a cached Hugging Face id, or `tiktoken:<encoding>`, whose
    pair overhead is that of training's `template` (auto, chat or plain).

    Raises TokenizerUnavailable when nothing usable is on this machine.
    """
    key = str(model_dir_or_name)
    with _COUNTERS_LOCK:
        if (key, template) in _COUNTERS:
            return _COUNTERS[key, template]
    counter = _make_counter(key, template)
    # Measured now, where the counter is made (the app does that in a worker thread), not
    # on first use (the app's table reads it on the UI thread).
    pair_overhead(counter)
    with _COUNTERS_LOCK:
        return _COUNTERS.setdefault((key, template), counter)


def _make_counter(key: str, template: str) -> TokenCounter:
    if key.startswith(TIKTOKEN_PREFIX):
        return _tiktoken_counter(key[len(TIKTOKEN_PREFIX):], template)
    folder = Path(key).expanduser()
    if folder.is_dir():
        if (folder / "tokenizer.json").is_file():
            return _tokenizers_counter(key, folder / "tokenizer.json", template)
        return _transformers_counter(key, str(folder), template)
    if _is_local_path(key, folder):
        raise TokenizerUnavailable(f"{key}: no such model folder, so no tokenizer to count tokens with")
    cached = _hf_cached_file(key, "tokenizer.json")
    if cached is not None:
        return _tokenizers_counter(key, Path(cached), template)
    if _hf_cached_file(key, "tokenizer_config.json") is not None:
        return _transformers_counter(key, key, template)
    raise TokenizerUnavailable(
        f"{key}: no tokenizer found — not a folder, and not in the local Hugging Face cache. "
        f"Download the model first (e.g. `huggingface-cli download {key}`) or give a local folder."
    )


def _is_local_path(key: str, folder: Path) -> bool:
    """A Hub id is `name` or `owner/name`; anything else, or a path whose parent folder
    exists here, is meant as a local folder."""
    if not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", key):
        return True
    return folder.parent != Path(".") and folder.parent.is_dir()


def _tokenizers_counter(name: str, tokenizer_json: Path, template: str = "auto") -> TokenCounter:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(tokenizer_json))
    except Exception as error:  # the Rust side raises a plain Exception on bad files
        raise TokenizerUnavailable(f"{tokenizer_json}: cannot read tokenizer ({error})") from error
    # encode_batch_fast (tokenizers >= 0.20) gives the same ids without computing offsets.
    encode_batch = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)

    def encode_many(texts: list[str]) -> list[int]:
        return [len(encoding) for encoding in encode_batch(texts, add_special_tokens=False)]

    config = json.loads(tokenizer.to_str())
    at_most_bytes = _at_most_one_token_per_byte(config)
    # The folder holding tokenizer.json (a model folder, or a Hub snapshot in the cache) has
    # the chat template and config.json that decide the layout.
    folder = tokenizer_json.parent

    def file_tokenizer() -> Any:
        from engine.curate.file_tokenizer import FileTokenizer

        return FileTokenizer(folder)

    overhead = _measured_overhead(file_tokenizer, lambda: _model_type_in(folder), template)
    if _counts_by_piece(config):
        added = [token.content for token in tokenizer.get_added_tokens_decoder().values()]
        return TokenCounter(name, _PieceCounts(encode_many, added), at_most_bytes=at_most_bytes, layout_overhead=overhead)
    return TokenCounter(name, encode_many, at_most_bytes=at_most_bytes, layout_overhead=overhead)


# Pre-tokenizers that only cut text (or map bytes to characters one for one, as ByteLevel
# does), never add to it.
_CUTTING_PRE_TOKENIZERS = {"ByteLevel", "Split", "Digits", "Punctuation", "Whitespace", "WhitespaceSplit"}


def _at_most_one_token_per_byte(config: Mapping[str, Any]) -> bool:
    """True for a byte-level BPE whose text nothing lengthens: no normaliser, and
    pre-tokenizers that only cut. Every BPE token then stands for at least one byte of the
    text, and every added token for at least one character."""
    pre = config.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = {step.get("type") for step in steps}
    return (
        config.get("normalizer") is None
        and (config.get("model") or {}).get("type") == "BPE"
        and "ByteLevel" in kinds and kinds <= _CUTTING_PRE_TOKENIZERS
        and not any(step.get("add_prefix_space") for step in steps if step.get("type") == "ByteLevel")
    )


# Counting by pre-token ----------------------------------------------------------------------
#
# A byte-level BPE tokenizer (GPT-2's kind) first cuts text into pre-tokens with one fixed
# regular expression, then runs BPE on each pre-token on its own. So a text's token count is
# the sum of the counts of any pieces it is cut into at pre-token boundaries, and prose
# repeats its words: counting each distinct piece once and summing from a table is exact and
# several times faster than tokenising every text.
#
# Exact only when nothing else touches the text, so it is used only when the tokenizer has no
# normaliser, a plain ByteLevel pre-tokenizer with use_regex and no added prefix space, and a
# BPE model without dropout; and only for texts of printable ASCII (plus tab, CR, LF), where
# the library's \p{L}, \p{N} and \s mean exactly [A-Za-z], [0-9] and [ \t\r\n] in any regex
# engine, and that contain no added token (added tokens are cut out before pre-tokenising).
# Every other text is tokenised whole.
#
# The pieces: in the pattern
#     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# a space followed by a non-space always starts a pre-token (a whitespace run before it stops
# one short, by the look-ahead), and nothing looks behind. So a text in which every space is
# followed by a non-space is cut at its spaces with str.split (fast, in C): the first part,
# then " " + each later part. Other texts are cut into pre-tokens by the pattern itself.

_BYTE_LEVEL_ASCII = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")
_NOT_PLAIN_ASCII = re.compile(r"[^\t\n\r\x20-\x7e]")
_PIECE_CACHE_LIMIT = 500_000  # distinct pieces kept before the tables are emptied


def _counts_by_piece(config: Mapping[str, Any]) -> bool:
    """True when a tokenizer.json's text reaches BPE only through the plain ByteLevel regex."""
    pre = config.get("pre_tokenizer") or {}
    model = config.get("model") or {}
    return (
        config.get("normalizer") is None
        and pre.get("type") == "ByteLevel" and pre.get("use_regex", True) is True and pre.get("add_prefix_space") is False
        and model.get("type") == "BPE" and not model.get("dropout")
    )


class _PieceCounts:
    """Texts -> token counts for a byte-level BPE tokenizer, summed per piece (see above)."""

    def __init__(self, encode_many: Callable[[list[str]], list[int]], added_tokens: list[str]):
        self._encode_many = encode_many  # exact counts of whole texts
        self._added = [token for token in added_tokens if token]
        # Most texts hold no added token; one search for what they all begin with ("<|")
        # settles that for them.
        self._added_prefix = os.path.commonprefix(self._added)
        self._bare: dict[str, int] = {}  # piece -> tokens
        self._spaced: dict[str, int] = {}  # word -> tokens of " " + word
        self._lock = threading.Lock()  # one table, possibly counted from a worker and the UI

    def __call__(self, texts: list[str]) -> list[int]:
        with self._lock:
            return self._count(texts)

    def _count(self, texts: list[str]) -> list[int]:
        counts: list[int] = [0] * len(texts)
        bare, spaced = self._bare, self._spaced
        unknown: list[tuple[int, list[str], list[str]]] = []  # texts with a piece not in the tables yet
        whole: list[int] = []
        for index, text in enumerate(texts):
            if not self._plain(text):
                whole.append(index)
                continue
            if not (text.endswith(" ") or "  " in text or " \n" in text or " \t" in text or " \r" in text):
                words = text.split(" ")
                bare_pieces, spaced_words = words[:1], words[1:]
            else:
                bare_pieces, spaced_words = _BYTE_LEVEL_ASCII.findall(text), []
            try:
                counts[index] = sum(map(bare.__getitem__, bare_pieces)) + sum(map(spaced.__getitem__, spaced_words))
            except KeyError:
                unknown.append((index, bare_pieces, spaced_words))
        if unknown:
            self._learn(unknown)
            for index, bare_pieces, spaced_words in unknown:
                counts[index] = sum(map(bare.__getitem__, bare_pieces)) + sum(map(spaced.__getitem__, spaced_words))
        if whole:
            for index, count in zip(whole, self._encode_many([texts[index] for index in whole]), strict=True):
                counts[index] = count
        return counts

    def _plain(self, text: str) -> bool:
        """Printable ASCII, tab, CR and LF only, and no added token. (str methods and `in`
        run in C; a regular expression scan costs several times more on long texts.)"""
        if not text.isascii():
            return False
        if not text.isprintable() and _NOT_PLAIN_ASCII.search(text) is not None:
            return False
        if self._added_prefix and self._added_prefix not in text:
            return True
        return not any(token in text for token in self._added)

    def _learn(self, unknown: list[tuple[int, list[str], list[str]]]) -> None:
        """Counts every piece of these texts that the tables lack, in one batch."""
        bare, spaced = self._bare, self._spaced
        if len(bare) + len(spaced) > _PIECE_CACHE_LIMIT:
            bare.clear()
            spaced.clear()
        new_bare = list({piece for _, pieces, _ in unknown for piece in pieces if piece not in bare})
        new_spaced = list({word for _, _, words in unknown for word in words if word not in spaced})
        counted = self._encode_many(new_bare + [" " + word for word in new_spaced])
        bare.update(zip(new_bare, counted[:len(new_bare)], strict=True))
        spaced.update(zip(new_spaced, counted[len(new_bare):], strict=True))


def _transformers_counter(name: str, path: str, template: str = "auto") -> TokenCounter:
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as error:
        raise TokenizerUnavailable(f"{path}: no tokenizer.json and transformers could not load one ({error})") from error

    def encode_many(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def model_type() -> str:  # from the folder, or from the Hub snapshot in the cache
        cached = None if Path(path).is_dir() else _hf_cached_file(path, "config.json")
        return _model_type_in(Path(cached).parent if cached else Path(path))

    overhead = _measured_overhead(lambda: tokenizer, model_type, template)
    return TokenCounter(name, encode_many, layout_overhead=overhead)


def _hub_cache_dir() -> Path:
    """The Hugging Face hub cache folder, found as huggingface_hub.constants finds it."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.environ[variable]).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(cache_home, "huggingface")
    return Path(home).expanduser() / "hub"


def _hf_cached_file(repo_id: str, filename: str) -> str | None:
    """A file of a Hub repo if it is already in the local cache; never goes online."""
    if repo_id.count("/") > 1 or not re.fullmatch(r"[\w.\-/]+", repo_id):
        return None
    if not (_hub_cache_dir() / f"models--{repo_id.replace('/', '--')}").is_dir():
        return None  # not cached at all: known without importing huggingface_hub (~0.2 s)
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=_hub_cache_dir())
    except Exception:  # an invalid repo id raises; treat it as "not cached"
        return None
    return found if isinstance(found, str) else None


# tiktoken ------------------------------------------------------------------------------

def tiktoken_cache_dir() -> str:
    """Where tiktoken keeps downloaded encodings (mirrors tiktoken.load.read_file_cached)."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return os.environ["TIKTOKEN_CACHE_DIR"]
    if "DATA_GYM_CACHE_DIR" in os.environ:
        return os.environ["DATA_GYM_CACHE_DIR"]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def tiktoken_available(encoding: str) -> bool:
    """True when every file the encoding needs is in the local cache."""
    files = TIKTOKEN_FILES.get(encoding)
    cache = tiktoken_cache_dir()
    if files is None or not cache:
        return False
    return all(os.path.isfile(os.path.join(cache, hashlib.sha1(url.encode()).hexdigest())) for url in files)


class _NoDownload:
    """While active, tiktoken's file reader refuses URLs: a cache file that fails its hash
    check would otherwise be fetched again from the network."""

    _lock = threading.Lock()

    def __enter__(self) -> None:
        import tiktoken.load

        self._lock.acquire()
        self._module = tiktoken.load
        self._original = tiktoken.load.read_file

        def refuse_urls(blobpath: str) -> bytes:
            if "://" in blobpath:
                raise TokenizerUnavailable(f"tiktoken wanted to download {blobpath}; refused (offline by design)")
            return self._original(blobpath)

        tiktoken.load.read_file = refuse_urls

    def __exit__(self, *exc: Any) -> None:
        self._module.read_file = self._original
        self._lock.release()


def _tiktoken_counter(encoding_name: str, template: str = "auto") -> TokenCounter:
    if encoding_name not in TIKTOKEN_FILES:
        raise TokenizerUnavailable(
            f"tiktoken:{encoding_name}: unknown encoding; known: {', '.join(sorted(TIKTOKEN_FILES))}"
        )
    if not tiktoken_available(encoding_name):
        raise TokenizerUnavailable(
            f"tiktoken:{encoding_name}: not in the local cache ({tiktoken_cache_dir()}); voicebench never "
            "downloads. Run `python -c \"import tiktoken; tiktoken.get_encoding('"
            f"{encoding_name}')\"` once while online, or set TIKTOKEN_CACHE_DIR to a folder that has it."
        )
    import tiktoken

    with _NoDownload():
        encoding = tiktoken.get_encoding(encoding_name)

    def encode_many(texts: list[str]) -> list[int]:
        return [len(ids) for ids in encoding.encode_ordinary_batch(texts)]

    # tiktoken's encodings are byte-level BPE over the text as given: a token per byte at most.
    # They are GPT-2-family encodings without a chat template: the plain layout.
    overhead = _measured_overhead(lambda: _TiktokenLayout(encoding), lambda: "gpt2", template)
    return TokenCounter(TIKTOKEN_PREFIX + encoding_name, encode_many, at_most_bytes=True, layout_overhead=overhead)


class _TiktokenLayout:
    """The slice of a tokenizer `engine.train.data.encode_pair` needs, over a tiktoken
    encoding: GPT-2's tokenizer adds no special tokens to a text, and ends a text with its
    end-of-text token (the encoding's `eot_token`)."""

    chat_template = None
    pad_token_id = None

    def __init__(self, encoding: Any) -> None:
        self._encoding = encoding
        self.eos_token_id = encoding.eot_token

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": self._encoding.encode_ordinary(text)}


# Budgets and workspace models --------------------------------------------------------------

def budgets_for(workspace: Any) -> dict[str, int]:
    """Budget per model name: defaults, then each model's context_length, then `[budgets]`."""
    budgets = dict(DEFAULT_BUDGETS)
    for name, entry in getattr(workspace, "models", {}).items():
        if entry.context_length:
            budgets[name] = int(entry.context_length)
    for name, value in workspace.section("budgets").items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"voicebench.toml: [budgets] {name} = {value!r}; a budget is a positive whole number of tokens")
        budgets[name] = value
    return budgets


def counter_for_model(workspace: Any, name: str) -> TokenCounter:
    """The counter for a workspace model: its own tokenizer, else a local tiktoken encoding
    for GPT-2-family names; pairs are laid out with the workspace's `[train] template`, as
    training lays them out. Raises TokenizerUnavailable."""
    template = training_template(workspace)
    try:
        return token_counter(workspace.model(name).path, template)
    except TokenizerUnavailable:
        if "gpt2" in name.casefold() and tiktoken_available("gpt2"):
            return token_counter(TIKTOKEN_PREFIX + "gpt2", template)
        raise


def training_template(workspace: Any) -> str:
    """The template a run in this workspace uses unless told otherwise (`[train] template`)."""
    template = workspace.section("train").get("template", "auto") if hasattr(workspace, "section") else "auto"
    return template if isinstance(template, str) else "auto"


def counters_for(workspace: Any, names: Iterable[str]) -> tuple[dict[str, TokenCounter], dict[str, str]]:
    """(counters by model name, reason by model name for those without a tokenizer here)."""
    counters: dict[str, TokenCounter] = {}
    missing: dict[str, str] = {}
    for name in names:
        try:
            counters[name] = counter_for_model(workspace, name)
        except TokenizerUnavailable as error:
            missing[name] = str(error)
    return counters, missing


# Truncation -------------------------------------------------------------------------------

# A sentence ends at . ! ? or … (optionally followed by closing quotes/brackets) before
# whitespace; a paragraph break always ends one.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+|\n\s*\n")


def split_sentences(text: str) -> list[str]:
    """Sentences with their trailing whitespace kept, so ''.join(...) == text."""
    pieces, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        pieces.append(text[start:match.end()])
        start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces


def truncate_at_sentence(
    text: str, max_tokens: int, counter: TokenCounter | Callable[[str], int], *, word_fallback: bool = True
) -> str:
    """The longest run of whole sentences from the start that fits `max_tokens`.

    If even the first sentence is too long it is cut at a word boundary instead (or, with
    `word_fallback=False`, nothing is kept); the result never exceeds the budget.
    """
    count = counter.count if isinstance(counter, TokenCounter) else counter
    if count(text) <= max_tokens:
        return text
    sentences = split_sentences(text)
    fitting = _longest_prefix(len(sentences), lambda n: count("".join(sentences[:n]).rstrip()) <= max_tokens)
    if fitting or not word_fallback:
        return "".join(sentences[:fitting]).rstrip()
    words = re.findall(r"\S+\s*", sentences[0])
    fitting = _longest_prefix(len(words), lambda n: count("".join(words[:n]).rstrip()) <= max_tokens)
    return "".join(words[:fitting]).rstrip()


def _longest_prefix(length: int, fits: Callable[[int], bool]) -> int:
    """Largest n in [0, length] with fits(n), assuming fits is monotone (binary search)."""
    low, high = 0, length
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def word_counter(text: str) -> int:
    """A stand-in counter (words) when no tokenizer is at hand."""
    return len(text.split())


def counts_table(counters: Mapping[str, TokenCounter], texts: list[str]) -> dict[str, list[int]]:
    """Token counts of many texts for each model, batched."""
    return {name: counter.count_many(texts) for name, counter in counters.items()}
