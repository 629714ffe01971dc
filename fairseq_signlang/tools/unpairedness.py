"""How unpaired are two "unpaired" training corpora, and how unseen are the evaluation references?

Unsupervised results mean little when the speech (or text) side and the sign side of an
unsupervised set-up render the same sentences, or when either side holds sentences of the test
references. This module reads both training sides and the references from the files the corpus
builders and the feature pipeline write, and measures:

- exact sentence overlap between the sides (distinct sentences in both, and the share of each
  side's sentences, repeats included, that occur on the other side; whether the sides are the
  same sentences in another order, or even line by line), and of each side with each reference;
- how far apart the sides' token distributions are: Jensen-Shannon divergence in bits of their
  unigram and bigram distributions (bigrams within sentences, with sentence-start and -end
  markers), beside a same-source baseline (the divergence between random splits of both sides'
  sentences pooled, at the sides' sizes: what sampling alone gives), and out-of-vocabulary rates
  each way, by types and by tokens.

Sentences are compared as token sequences: split on whitespace, nothing else normalised (case
only with `lowercase`). Two corpora are compared only when their tokens are of one kind: words
(text, transcripts, word-level corpus lines, manifests' text), letters (`.ltr`), or the units
of one inventory (`.src` speech units, `.sign` / `.ref` sign units of a speech2sign_u_word data
folder, `.km` cluster ids of the k-means in that folder); speech cluster 7 and sign cluster 7 are
different things.
"""
import json
import os
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from fairseq_signlang.io.readers import CorpusError, numbered_lines, require_file
from fairseq_signlang.io.writers import write_json

Sentence = Tuple[str, ...]

WORDS, LETTERS = "words", "letters"
UNIT_SPACES = {".src": "speech units", ".sign": "sign units", ".ref": "sign units"}  # and .km: by folder
NOT_SENTENCES = (".npy", ".npz", ".lengths", ".bin", ".idx", ".pt", ".json", ".wav", ".flac", ".ogg",
                 ".mp4", ".avi", ".webm", ".mkv", ".mov")
SUPPORTED = (
    "plain text, one sentence per line (.txt, .wrd, or any other extension such as fairseq's train.en); "
    ".ltr letters; .jsonl word-level corpus lines ({\"words\": [...]}) or word alignments; .tsv clip manifests "
    "with a text column, or wav2vec audio manifests with {stem}.wrd / {stem}.ltr beside them; "
    "unit sequences (.src, .sign, .ref, .km)"
)


@dataclass
class SentenceCorpus:
    """One corpus as sentences of tokens, and what those tokens are."""

    path: str
    source: str  # how the file was read, for the report
    space: str  # what the tokens are; corpora are compared only within one space
    sentences: List[Sentence]

    @cached_property
    def tokens(self) -> int:
        return sum(len(s) for s in self.sentences)

    @cached_property
    def distinct(self) -> set:
        return set(self.sentences)

    @cached_property
    def vocabulary(self) -> Counter:
        """Each token type and how often it occurs."""
        return Counter(t for s in self.sentences for t in s)


def _fold(tokens, lowercase: bool) -> Sentence:
    return tuple(t.lower() for t in tokens) if lowercase else tuple(tokens)


def _display_dir(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    rel = os.path.relpath(folder)
    return folder if rel.startswith("..") else rel


def _text_lines(path: str, lowercase: bool, letters: bool = False) -> List[Sentence]:
    """Non-blank lines as token tuples; `letters`: wav2vec's `.ltr`, word boundaries (`|`) dropped."""
    out = []
    for _, line in numbered_lines(path):
        tokens = [t for t in line.split() if not (letters and t == "|")]
        if tokens:
            out.append(_fold(tokens, lowercase))
    return out


def _jsonl_words(path: str, lineno: int, line: str) -> List[str]:
    """The words of one JSON line: a word-level corpus line ({"words": [...]} or {"text": "..."}),
    or a word alignment ([{"word": w, "start": s, "end": e}, ...] or [[w, s, e], ...])."""
    try:
        entry = json.loads(line)
    except ValueError as e:
        raise CorpusError(f"{path}:{lineno}: not a JSON line ({e})") from None
    words = None
    if isinstance(entry, dict):
        if isinstance(entry.get("words"), list):
            words = entry["words"]
        elif isinstance(entry.get("text"), str):
            words = entry["text"].split()
    elif isinstance(entry, list):
        if all(isinstance(w, dict) and "word" in w for w in entry):
            words = [w["word"] for w in entry]
        elif all(isinstance(w, (list, tuple)) and w for w in entry):
            words = [w[0] for w in entry]
    try:
        " ".join(words or ())  # raises TypeError on a word that is not a string
    except TypeError:
        words = None
    if words is None:
        raise CorpusError(f"{path}:{lineno}: expected {{\"words\": [...]}} (a word-level corpus line) or a word alignment "
                          f"(a list of {{\"word\", \"start\", \"end\"}}), got {line.strip()[:80]!r}")
    if not words:
        raise CorpusError(f"{path}:{lineno}: a sentence without words")
    return words


def _clip_manifest_text(path: str, lowercase: bool) -> List[Sentence]:
    from fairseq_signlang.io.video import numbered_clip_rows

    rows = numbered_clip_rows(path, missing_ok=True)  # the videos themselves are not needed
    if rows[0][1].text is None:
        raise CorpusError(f"{path}:1: clip manifest without a text column, so its sentences are unknown; "
                          f"compare the sign side's transcripts or unit sequences instead")
    out = []
    for where, row in rows:
        if not (row.text or "").split():
            raise CorpusError(f"{where}: clip {row.id!r} has no text")
        out.append(_fold(row.text.split(), lowercase))
    return out


def _audio_manifest_transcripts(path: str, lowercase: bool) -> Tuple[List[Sentence], str, str]:
    """A wav2vec manifest's transcripts from `{stem}.wrd` (words) or `{stem}.ltr` (letters) beside
    it, one line per manifest row."""
    from fairseq_signlang.io.audio import numbered_manifest_rows

    _, rows = numbered_manifest_rows(path, missing_ok=True)  # the audio itself is not needed
    stem = path[: -len(".tsv")]
    transcript = next((stem + ext for ext in (".wrd", ".ltr") if os.path.isfile(stem + ext)), None)
    if transcript is None:
        raise CorpusError(f"{path}: an audio manifest without transcripts ({stem}.wrd or {stem}.ltr, as wav2vec keeps them); "
                          f"give the transcripts, or the unit sequences (.km) to compare units")
    letters = transcript.endswith(".ltr")
    lines = list(numbered_lines(transcript))
    if len(lines) != len(rows):
        if len(lines) < len(rows):
            raise CorpusError(f"{rows[len(lines)][0]}: no transcript for this row ({transcript} has {len(lines)} lines for {len(rows)} rows)")
        raise CorpusError(f"{transcript}:{len(rows) + 1}: more transcript lines than the {len(rows)} rows of {path}")
    out = []
    for lineno, line in lines:
        tokens = [t for t in line.split() if not (letters and t == "|")]
        if not tokens:
            raise CorpusError(f"{transcript}:{lineno}: empty transcript")
        out.append(_fold(tokens, lowercase))
    return out, f"audio manifest, transcripts {os.path.basename(transcript)}", LETTERS if letters else WORDS


def _unit_lines(path: str, cluster_ids: bool) -> List[Sentence]:
    out = []
    for lineno, line in numbered_lines(path):
        units = line.split()
        if not units:
            raise CorpusError(f"{path}:{lineno}: empty sentence (a unit file holds one sentence of units per line)")
        if cluster_ids and not all(u.isdigit() for u in units):
            raise CorpusError(f"{path}:{lineno}: expected cluster ids (non-negative integers), got {line.strip()[:80]!r}")
        out.append(tuple(units))
    return out


def read_sentences(path: str, what: str = "corpus", lowercase: bool = False, same_unit_space: bool = False) -> SentenceCorpus:
    """Read a corpus in any supported format (see SUPPORTED), chosen by its extension; problems
    stop with a CorpusError naming the file and line. `same_unit_space` puts every unit file in
    one inventory (e.g. two sign corpora clustered by one k-means kept in different folders)."""
    require_file(path, what)
    ext = os.path.splitext(path)[1].lower()
    if ext in NOT_SENTENCES:
        raise CorpusError(f"{path}: a {ext} file holds no sentences; supported: {SUPPORTED}")
    if ext in UNIT_SPACES or ext == ".km":
        space = "units" if same_unit_space else UNIT_SPACES.get(ext) or f"cluster ids of {_display_dir(path)}"
        sentences, source = _unit_lines(path, cluster_ids=ext == ".km"), f"unit sequences ({ext})"
    elif ext == ".jsonl":
        sentences = [_fold(_jsonl_words(path, n, line), lowercase) for n, line in numbered_lines(path) if line.strip()]
        source, space = "JSON lines (words)", WORDS
    elif ext == ".tsv":
        first = next(iter(numbered_lines(path)), (1, ""))[1].rstrip("\r\n")
        cells = first.split("\t")
        if "id" in cells and "path" in cells:
            sentences, source, space = _clip_manifest_text(path, lowercase), "clip manifest, text column", WORDS
        elif len(cells) == 1 and first.strip():
            sentences, source, space = _audio_manifest_transcripts(path, lowercase)
        else:
            raise CorpusError(f"{path}:1: neither a clip manifest (a header naming id and path) nor a wav2vec audio manifest "
                              f"(the root folder alone on the first line), got {first[:80]!r}")
    elif ext == ".ltr":
        sentences, source, space = _text_lines(path, lowercase, letters=True), "letters (.ltr)", LETTERS
    else:
        sentences, source, space = _text_lines(path, lowercase), "plain text", WORDS
    if not sentences:
        raise CorpusError(f"{path}: no sentences")
    return SentenceCorpus(path, source, space, sentences)


# ---- measures ---------------------------------------------------------------------------------


def jensen_shannon_bits(p_counts: np.ndarray, q_counts: np.ndarray, smoothing: float = 0.0) -> float:
    """Jensen-Shannon divergence (base 2, so 0..1 bits) of two count vectors over one index.
    `smoothing` adds that count to every type observed in either (add-alpha over their union);
    0 compares the maximum-likelihood distributions, for which the divergence is finite too."""
    p_counts, q_counts = np.asarray(p_counts, dtype=np.float64), np.asarray(q_counts, dtype=np.float64)
    seen = (p_counts + q_counts) > 0
    p = p_counts[seen] + smoothing
    q = q_counts[seen] + smoothing
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl_to_m(x):
        nz = x > 0
        return float(np.sum(x[nz] * np.log2(x[nz] / m[nz])))

    return max(0.0, 0.5 * kl_to_m(p) + 0.5 * kl_to_m(q))


class _Encoded:
    """Unigram ids and bigram codes of sentences (with start and end markers), and the sentence
    each belongs to, so any subset of sentences is counted with one np.bincount."""

    def __init__(self, sentences: Sequence[Sentence], index: Dict[str, int]):
        size = len(index) + 2
        start, end = size - 2, size - 1
        lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
        self.sentences = len(sentences)
        self.uni = np.fromiter((index[t] for s in sentences for t in s), dtype=np.int64, count=int(lengths.sum()))
        self.uni_sentence = np.repeat(np.arange(len(sentences)), lengths)
        # every sentence framed as start, tokens, end; a bigram is a pair of neighbours that does
        # not begin with an end marker (those pairs cross from one sentence into the next)
        framed = np.empty(len(self.uni) + 2 * len(sentences), dtype=np.int64)
        firsts = np.cumsum(lengths + 2) - (lengths + 2)
        inside = np.ones(len(framed), dtype=bool)
        inside[firsts] = inside[firsts + lengths + 1] = False
        framed[firsts], framed[firsts + lengths + 1], framed[inside] = start, end, self.uni
        within = framed[:-1] != end
        self.bi = (framed[:-1] * size + framed[1:])[within]
        self.bi_sentence = np.repeat(np.arange(len(sentences)), lengths + 1)


DENSE_BIGRAMS = 1 << 24  # up to this many possible bigrams, count them by code without compacting


def _pair_divergences(a: _Encoded, b: _Encoded, unigram_types: int, smoothing: float, draws: int, seed: int) -> Dict:
    codes = np.concatenate([a.bi, b.bi])
    if unigram_types * unigram_types <= DENSE_BIGRAMS:
        bi_index, K = codes, unigram_types * unigram_types
    else:
        bigram_types, bi_index = np.unique(codes, return_inverse=True)
        K = len(bigram_types)
    bi_a, bi_b = bi_index[: len(a.bi)], bi_index[len(a.bi):]
    out = {
        "unigram_jsd_bits": jensen_shannon_bits(np.bincount(a.uni, minlength=unigram_types), np.bincount(b.uni, minlength=unigram_types), smoothing),
        "bigram_jsd_bits": jensen_shannon_bits(np.bincount(bi_a, minlength=K), np.bincount(bi_b, minlength=K), smoothing),
    }
    if draws > 0:  # what sampling alone gives: random splits of both sides pooled, at the sides' sizes
        n_a, n_b = a.sentences, b.sentences
        uni = np.concatenate([a.uni, b.uni])
        uni_sentence = np.concatenate([a.uni_sentence, b.uni_sentence + n_a])
        bi_sentence = np.concatenate([a.bi_sentence, b.bi_sentence + n_a])
        rng = np.random.default_rng(seed)

        def split_jsd(values, in_first, types):
            return jensen_shannon_bits(np.bincount(values[in_first], minlength=types), np.bincount(values[~in_first], minlength=types), smoothing)

        uni_floor, bi_floor = [], []
        for _ in range(draws):
            first = np.zeros(n_a + n_b, dtype=bool)
            first[rng.permutation(n_a + n_b)[:n_a]] = True
            uni_floor.append(split_jsd(uni, first[uni_sentence], unigram_types))
            bi_floor.append(split_jsd(bi_index, first[bi_sentence], K))
        out["baseline"] = {"unigram_jsd_bits": float(np.mean(uni_floor)), "bigram_jsd_bits": float(np.mean(bi_floor)), "draws": draws, "seed": seed}
    return out


def _share(part: int, whole: int) -> float:
    """A percentage, kept precise enough that a few sentences of a large corpus do not read as 0."""
    return round(100.0 * part / whole, 4) if whole else 0.0


def _pct(share: float) -> str:
    return f"{share:.2g} %" if 0 < share < 0.1 else f"{share:.1f} %"


def _oov(of: SentenceCorpus, vocabulary) -> Dict:
    """Tokens and types of `of` missing from `vocabulary` (a set or Counter of types)."""
    counts = of.vocabulary
    unseen = [t for t in counts if t not in vocabulary]
    tokens = sum(counts[t] for t in unseen)
    return {"types": len(unseen), "of_types": len(counts), "type_rate": _share(len(unseen), len(counts)),
            "tokens": tokens, "of_tokens": of.tokens, "token_rate": _share(tokens, of.tokens)}


def _describe(corpus: SentenceCorpus, name: str) -> Dict:
    return {"name": name, "path": corpus.path, "source": corpus.source, "space": corpus.space, "sentences": len(corpus.sentences),
            "distinct": len(corpus.distinct), "tokens": corpus.tokens, "types": len(corpus.vocabulary)}


def _overlap(x: SentenceCorpus, y: SentenceCorpus) -> Tuple[int, int, int]:
    """(distinct sentences in both, sentences of x found in y, sentences of y found in x), repeats counted."""
    xs, ys = x.distinct, y.distinct
    return len(xs & ys), sum(s in ys for s in x.sentences), sum(s in xs for s in y.sentences)


def compare_sides(a: SentenceCorpus, b: SentenceCorpus, smoothing: float = 0.0, draws: int = 5, seed: int = 0) -> Dict:
    """Sentence overlap, divergences and OOV rates between the two training sides (one space)."""
    shared, a_in_b, b_in_a = _overlap(a, b)
    index = {t: i for i, t in enumerate(sorted(set(a.vocabulary) | set(b.vocabulary)))}
    out = {
        "comparable": True,
        "shared_distinct": shared,
        "a_in_b": a_in_b, "a_in_b_share": _share(a_in_b, len(a.sentences)),
        "b_in_a": b_in_a, "b_in_a_share": _share(b_in_a, len(b.sentences)),
        "same_sentences": Counter(a.sentences) == Counter(b.sentences),
        "same_order": a.sentences == b.sentences,
        "smoothing": smoothing,
        **_pair_divergences(_Encoded(a.sentences, index), _Encoded(b.sentences, index), len(index) + 2, smoothing, draws, seed),
        "b_oov_in_a": _oov(b, a.vocabulary),
        "a_oov_in_b": _oov(a, b.vocabulary),
    }
    for key in ("unigram_jsd_bits", "bigram_jsd_bits"):
        out[key] = round(out[key], 6)
        if "baseline" in out:
            out["baseline"][key] = round(out["baseline"][key], 6)
    return out


def compare_with_reference(side: SentenceCorpus, ref: SentenceCorpus) -> Dict:
    """Which of the reference's sentences the training side holds, and its tokens the side never has."""
    shared, side_in_ref, ref_in_side = _overlap(side, ref)
    oov = _oov(ref, side.vocabulary)
    return {"comparable": True, "shared_distinct": shared,
            "ref_in_side": ref_in_side, "ref_in_side_share": _share(ref_in_side, len(ref.sentences)),
            "side_in_ref": side_in_ref, "side_in_ref_share": _share(side_in_ref, len(side.sentences)),
            "ref_token_oov_rate": oov["token_rate"], "ref_type_oov_rate": oov["type_rate"]}


def _verdict(a: Dict, b: Dict, between: Dict) -> str:
    if not between["comparable"]:
        return (f"not measured: {a['name']} holds {a['space']} and {b['name']} {b['space']}, which share no alphabet; "
                f"give word transcripts of both sides (e.g. a word corpus's speech.jsonl and sign.jsonl) to compare their sentences")
    if between["same_order"]:
        return f"paired line by line: line i of {a['name']} is line i of {b['name']} (a parallel corpus, not an unpaired one)"
    if between["same_sentences"]:
        return "paired: the sides render the same sentences (in another order: the pairing is hidden, not absent)"
    if between["shared_distinct"] == 0:
        return "disjoint: no sentence in both"
    return (f"partial overlap: {between['shared_distinct']} distinct sentences in both; {_pct(between['a_in_b_share'])} of "
            f"{a['name']}'s sentences are in {b['name']}, {_pct(between['b_in_a_share'])} of {b['name']}'s in {a['name']}")


def unpairedness_report(side_a: SentenceCorpus, side_b: SentenceCorpus, refs: Sequence[SentenceCorpus] = (),
                        names: Tuple[str, str] = ("A", "B"), smoothing: float = 0.0, draws: int = 5, seed: int = 0) -> Dict:
    """The report as a JSON-ready dict: the corpora, the comparison of the sides, each side
    against each reference, a verdict line and warnings (a side holding reference sentences)."""
    if smoothing < 0:
        raise ValueError(f"smoothing must be 0 or more, got {smoothing}")
    a, b = _describe(side_a, names[0]), _describe(side_b, names[1])
    if side_a.space == side_b.space:
        between = compare_sides(side_a, side_b, smoothing, draws, seed)
    else:
        between = {"comparable": False}
    report = {
        "sides": {"a": a, "b": b},
        "refs": [_describe(r, f"ref {i + 1}") for i, r in enumerate(refs)],
        "between_sides": between,
        "with_refs": [],
        "bigrams": "within sentences, with sentence-start and -end markers",
        "smoothing": f"add-{smoothing:g} over the types seen in either corpus" if smoothing else "none, maximum-likelihood estimates",
        "warnings": [],
    }
    for ref, described in zip(refs, report["refs"]):
        holders = []
        for key, side, info in (("a", side_a, a), ("b", side_b, b)):
            row = {"ref": ref.path, "side": key}
            if side.space != ref.space:
                report["with_refs"].append({**row, "comparable": False})
                continue
            row.update(compare_with_reference(side, ref))
            report["with_refs"].append(row)
            if row["ref_in_side"]:
                count = f"{row['ref_in_side']} ({_pct(row['ref_in_side_share'])})"
                if not holders:
                    count = f"{row['ref_in_side']} of its {described['sentences']} sentences ({_pct(row['ref_in_side_share'])}) are"
                holders.append(f"{count} in {info['name']}'s" + ("" if holders else " training corpus"))
        if holders:
            report["warnings"].append(f"{ref.path}: " + ", ".join(holders) + "; scores on them are not scores on unseen sentences")
    compared = {r["ref"] for r in report["with_refs"] if r["comparable"]}
    for ref in refs:
        if ref.path not in compared:
            report["warnings"].append(f"{ref.path} holds {ref.space}, neither side does: not compared")
    report["verdict"] = _verdict(a, b, between)
    return report


def check_unpaired(side_a: str, side_b: str, refs: Sequence[str] = (), names: Tuple[str, str] = ("A", "B"), lowercase: bool = False,
                   same_unit_space: bool = False, smoothing: float = 0.0, draws: int = 5, seed: int = 0) -> Dict:
    """Read the files (any supported format) and report; see unpairedness_report."""
    read = lambda path, what: read_sentences(path, what, lowercase, same_unit_space)  # noqa: E731
    return unpairedness_report(read(side_a, f"side {names[0]} corpus"), read(side_b, f"side {names[1]} corpus"),
                               [read(r, "reference file") for r in refs], names, smoothing, draws, seed)


def has_overlap(report: Dict) -> bool:
    """Whether the sides share a sentence or a side holds a reference sentence."""
    between = report["between_sides"]
    return bool(between.get("shared_distinct")) or any(r.get("ref_in_side") for r in report["with_refs"])


# ---- printing ---------------------------------------------------------------------------------


def _count_share(part: int, whole: int, share: float) -> str:
    return f"{part} of {whole} ({_pct(share)})"


def _table(rows: List[List[str]], right: Sequence[int] = ()) -> List[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip() for r in rows]


def format_report(report: Dict) -> str:
    """The whole report as a readable table."""
    a, b = report["sides"]["a"], report["sides"]["b"]
    corpora = [a, b, *report["refs"]]
    lines = ["corpora"]
    lines += _table([["", "sentences", "distinct", "tokens", "types", "of", "read as", "file"]]
                    + [[c["name"], str(c["sentences"]), str(c["distinct"]), str(c["tokens"]), str(c["types"]), c["space"], c["source"], c["path"]]
                       for c in corpora], right=(1, 2, 3, 4))
    between = report["between_sides"]
    lines.append(f"between the sides ({a['space']})" if between["comparable"] else "between the sides")
    if between["comparable"]:
        order = ""
        if between["same_sentences"]:
            order = "; the same sentences line by line" if between["same_order"] else "; the same sentences in another order"
        a_in_b = _count_share(between["a_in_b"], a["sentences"], between["a_in_b_share"])
        b_in_a = _count_share(between["b_in_a"], b["sentences"], between["b_in_a_share"])
        lines.append(f"  sentences in both     {between['shared_distinct']} distinct; {a['name']}: {a_in_b} in {b['name']}; "
                     f"{b['name']}: {b_in_a} in {a['name']}{order}")
        lines.append(f"  JSD, bits             unigram {between['unigram_jsd_bits']:.4f}, bigram {between['bigram_jsd_bits']:.4f}")
        if "baseline" in between:
            base = between["baseline"]
            lines.append(f"  same-source baseline  unigram {base['unigram_jsd_bits']:.4f}, bigram {base['bigram_jsd_bits']:.4f} "
                         f"(mean of {base['draws']} random splits of both sides' sentences pooled, at the sides' sizes)")
        for x, y, key in ((a, b, "a_oov_in_b"), (b, a, "b_oov_in_a")):
            o = between[key]
            lines.append(f"  {x['name']} unseen in {y['name']}".ljust(24) + f"{_count_share(o['types'], o['of_types'], o['type_rate'])} types, "
                         f"{_count_share(o['tokens'], o['of_tokens'], o['token_rate'])} tokens")
        lines.append(f"  (smoothing: {report['smoothing']}; bigrams {report['bigrams']})")
    else:
        lines.append(f"  not compared: {a['name']} holds {a['space']}, {b['name']} {b['space']}")
    if report["with_refs"]:
        lines.append("against the evaluation references")
        name = {"a": a["name"], "b": b["name"]}
        rows = [["ref", "side", "shared", "ref sentences in side", "side sentences in ref", "ref tokens unseen"]]
        sizes = {r["path"]: r["sentences"] for r in report["refs"]}
        side_sizes = {"a": a["sentences"], "b": b["sentences"]}
        for r in report["with_refs"]:
            if not r["comparable"]:
                rows.append([r["ref"], name[r["side"]], "-", "not comparable", "", ""])
                continue
            rows.append([r["ref"], name[r["side"]], str(r["shared_distinct"]),
                         _count_share(r["ref_in_side"], sizes[r["ref"]], r["ref_in_side_share"]),
                         _count_share(r["side_in_ref"], side_sizes[r["side"]], r["side_in_ref_share"]), f"{_pct(r['ref_token_oov_rate'])}"])
        lines += _table(rows, right=(2,))
    lines.append(f"verdict: {report['verdict']}")
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)


def summary_lines(report: Dict) -> List[str]:
    """A few lines for a corpus builder to print: the verdict, the numbers behind it, warnings."""
    a, b = report["sides"]["a"], report["sides"]["b"]
    between = report["between_sides"]
    lines = [f"unpairedness of {a['name']} ({a['path']}) and {b['name']} ({b['path']}): {report['verdict']}"]
    if between["comparable"]:
        lines.append(f"  sentences in both: {between['shared_distinct']} distinct; {_pct(between['a_in_b_share'])} of {a['name']}'s "
                     f"{a['sentences']}, {_pct(between['b_in_a_share'])} of {b['name']}'s {b['sentences']}")
        line = f"  JSD unigram {between['unigram_jsd_bits']:.4f}, bigram {between['bigram_jsd_bits']:.4f} bits"
        if "baseline" in between:
            line += f" (same-source baseline {between['baseline']['unigram_jsd_bits']:.4f}, {between['baseline']['bigram_jsd_bits']:.4f})"
        lines.append(line + f"; tokens unseen on the other side: {a['name']} {_pct(between['a_oov_in_b']['token_rate'])}, "
                            f"{b['name']} {_pct(between['b_oov_in_a']['token_rate'])}")
    if report["refs"] and not any(r.get("ref_in_side") for r in report["with_refs"]):
        compared = len({r["ref"] for r in report["with_refs"] if r["comparable"]})
        lines.append(f"  evaluation references: no sentence of the {compared} compared is in a training side")
    lines += [f"  warning: {w}" for w in report["warnings"]]
    return lines


def print_summary(report: Dict, json_path: Optional[str] = None) -> None:
    """Print summary_lines (for the corpus builders and demos); with `json_path`, write the report there."""
    if json_path:
        write_json(json_path, report)
    for line in summary_lines(report):
        print(line, flush=True)
