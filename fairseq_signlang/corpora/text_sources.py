"""Real English sentences that can be had offline, and the paper's vocabulary restriction."""
import glob
import importlib
import inspect
import os
import re
import shutil
import subprocess
import warnings
from collections import Counter
from typing import List, Sequence, Tuple

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_SENTENCE_END = re.compile(r"(?<=[.;:?!])\s+")


def words_of(text: str) -> List[str]:
    return _WORD.findall(text.lower())


def kjv_sentences() -> List[List[str]]:
    """The King James Bible (Debian package bible-kjv), split into sentences of lowercase words."""
    if shutil.which("bible") is None:
        raise RuntimeError("the `bible` command is missing: install the Debian package bible-kjv (apt-get install bible-kjv)")
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    sentences = []
    for verse in text.splitlines():
        verse = verse.split(" ", 1)[1] if " " in verse else ""  # drop the "Ge1:1" reference
        for piece in _SENTENCE_END.split(verse):
            words = words_of(piece)
            if words:
                sentences.append(words)
    return sentences


FORTUNES_DIR = "/usr/share/games/fortunes"


def fortune_sentences(folder: str = FORTUNES_DIR) -> List[List[str]]:
    """The fortune cookies of Debian's `fortunes` package (quotations, jokes, definitions): English
    that no model or test here was tuned on, split into sentences of lowercase words."""
    files = sorted(glob.glob(os.path.join(folder, "*"))) if os.path.isdir(folder) else []
    files = [f for f in files if "." not in os.path.basename(f) and os.path.isfile(f) and not os.path.islink(f)]
    if not files:
        raise RuntimeError(f"no fortune files in {folder}: install the Debian package fortunes (apt-get install fortunes)")
    sentences = []
    for path in files:
        with open(path, encoding="latin-1") as f:
            for entry in f.read().split("\n%\n"):
                for piece in _SENTENCE_END.split(" ".join(entry.split())):
                    words = words_of(piece)
                    if words:
                        sentences.append(words)
    return sentences


def text_file_sentences(path: str) -> List[List[str]]:
    """One sentence per line of a plain text file."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words = words_of(line)
            if words:
                out.append(words)
    if not out:
        raise ValueError(f"{path}: no sentences with words")
    return out


def restrict_vocabulary(sentences: Sequence[Sequence[str]], vocab_size: int, min_words: int = 5) -> Tuple[List[str], List[List[str]]]:
    """Keep the `vocab_size` most frequent words, drop the others from every sentence, and keep
    the sentences left with at least `min_words` words (as the paper builds ASL LibriSpeech),
    each once: cut to a small vocabulary, 4 % of the Bible's verses and of the fortunes repeat,
    and a repeat split onto both sides of an unpaired corpus, or into training and test, pairs
    them (scripts/check_unpaired.py)."""
    counts = Counter(w for s in sentences for w in s)
    vocab = [w for w, _ in counts.most_common(vocab_size)]
    keep = set(vocab)
    kept = ([w for w in s if w in keep] for s in sentences)
    unique = dict.fromkeys(tuple(s) for s in kept if len(s) >= min_words)  # first occurrences, in order
    return vocab, [list(s) for s in unique]


# Pure-Python standard-library modules whose docstrings are prose; a fixed list, so the sentences
# depend only on the Python version (none of these is deprecated or removed up to 3.13).
STDLIB_PROSE_MODULES = (
    "argparse", "ast", "asyncio.base_events", "asyncio.events", "asyncio.streams", "asyncio.tasks", "base64", "bdb",
    "bisect", "calendar", "cmd", "codecs", "codeop", "collections", "colorsys", "compileall", "concurrent.futures",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "difflib", "dis", "doctest", "email.message",
    "email.utils", "enum", "filecmp", "fileinput", "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext",
    "glob", "gzip", "heapq", "hmac", "html.parser", "http.client", "http.cookiejar", "http.server", "imaplib",
    "inspect", "ipaddress", "json", "locale", "logging", "logging.handlers", "mailbox", "mimetypes", "netrc",
    "ntpath", "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pickletools", "platform",
    "plistlib", "poplib", "posixpath", "pprint", "pydoc", "queue", "quopri", "random", "reprlib", "sched", "secrets",
    "selectors", "shelve", "shlex", "shutil", "smtplib", "socket", "socketserver", "ssl", "stat", "statistics",
    "string", "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "trace",
    "traceback", "tracemalloc", "types", "typing", "unittest", "unittest.mock", "urllib.parse", "urllib.request",
    "uuid", "warnings", "wave", "weakref", "webbrowser", "xml.dom.minidom", "xml.etree.ElementTree", "zipapp",
    "zipfile", "zoneinfo",
)
# a sentence with any of these is code, a signature or markup rather than prose
_CODE_LIKE = re.compile(r">>>|\.\.\.|[=(){}\[\]_<>`\\|@#$%*]")


def _docstrings(module):
    """The module's docstring, then those of its own classes, functions and methods, by name."""
    yield module.__doc__
    for name, obj in sorted(vars(module).items()):
        if getattr(obj, "__module__", None) != module.__name__ or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        yield obj.__doc__
        if inspect.isclass(obj):
            for _, member in sorted(vars(obj).items()):
                member = getattr(member, "__func__", None) or getattr(member, "fget", None) or member
                if inspect.isfunction(member):
                    yield member.__doc__


def stdlib_docstring_sentences(min_words: int = 5) -> List[List[str]]:
    """Real English that every Python installation has: the prose sentences of the docstrings of
    STDLIB_PROSE_MODULES, as lists of lowercase words, deduplicated, in a fixed order.

    Indented blocks (examples, option tables) are skipped, the other paragraphs joined into
    lines and split at sentence ends; a sentence that looks like code (`>>>`, `=`, brackets, `_`,
    backquotes, ...) or has fewer than `min_words` words is dropped. The text is technical, but
    its letter statistics are English ('e' most frequent), enough to stand in for transcripts."""
    seen, sentences = set(), []
    with warnings.catch_warnings():  # importing and reading some modules warns about their parts
        warnings.simplefilter("ignore")
        for module_name in STDLIB_PROSE_MODULES:
            for doc in _docstrings(importlib.import_module(module_name)):
                if not isinstance(doc, str):
                    continue
                for paragraph in re.split(r"\n\s*\n", inspect.cleandoc(doc)):
                    lines = paragraph.splitlines()
                    if any(line[:1].isspace() for line in lines):
                        continue
                    for piece in _SENTENCE_END.split(" ".join(line.strip() for line in lines)):
                        words = words_of(piece)
                        if len(words) >= min_words and not _CODE_LIKE.search(piece) and tuple(words) not in seen:
                            seen.add(tuple(words))
                            sentences.append(words)
    return sentences
