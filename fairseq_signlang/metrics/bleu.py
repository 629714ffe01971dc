"""BLEU-1 and BLEU-4, the translation metrics USLNet reports (for sign-to-text, and for text-to-sign
through back-translation), as sacrebleu corpus BLEU so the numbers match the `sacrebleu` tool and
fairseq-generate --scoring sacrebleu; and readers for what the hypotheses come in."""
import re
from typing import Dict, List, Tuple

import numpy as np
from sacrebleu.metrics import BLEU

from fairseq_signlang.io.readers import CorpusError, numbered_lines, require_file

SPM_MARK = "\u2581"
GENERATE_LINE = re.compile(r"([THD])-(\S+)\t")


def bleu_scores(hypotheses: List[str], references: List[str], tokenize: str = "13a", lowercase: bool = False, smooth_method: str = "exp") -> Dict:
    """Corpus BLEU with n-grams up to 1 and up to 4 (both with the brevity penalty), one
    reference per sentence. Defaults are sacrebleu's; its `exp` smoothing only matters when an
    n-gram order has no match in the whole corpus (use "none" for multi-bleu's 0 there)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"bleu_scores: {len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("bleu_scores: no sentences to score")
    for what, sents in (("hypothesis", hypotheses), ("reference", references)):
        bad = next((i for i, s in enumerate(sents) if not isinstance(s, str)), None)
        if bad is not None:
            raise ValueError(f"bleu_scores: {what} {bad} is a {type(sents[bad]).__name__}, not a string")
    scores = {}
    for order in (1, 4):
        metric = BLEU(max_ngram_order=order, tokenize=tokenize, lowercase=lowercase, smooth_method=smooth_method)
        scores[f"bleu{order}"] = metric.corpus_score(list(hypotheses), [list(references)]).score
    return {"bleu1": scores["bleu1"], "bleu4": scores["bleu4"], "bleu": scores["bleu4"], "n": len(hypotheses),
            "signature": str(metric.get_signature())}


def derangement(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(n) that moves every index (n >= 2): each position gets the
    reference of another sentence."""
    order = rng.permutation(n)
    out = np.empty(n, dtype=np.int64)
    out[order] = np.roll(order, -1)  # a random cycle through all positions
    return out


def input_dependence(hypotheses: List[str], references: List[str], shuffles: int = 5, seed: int = 0,
                     tokenize: str = "13a", lowercase: bool = False, smooth_method: str = "exp") -> Dict:
    """Does the output depend on the input? bleu_scores' result, plus BLEU against the same
    references shuffled across sentences (mean and spread over `shuffles` seeded derangements)
    and the number of distinct hypotheses. An output that ignores its input scores as well against
    shuffled references: `reads_input` is False unless the true BLEU-1 beats the shuffled one by
    more than 1 point and 3 standard deviations of the shuffles."""
    if len(hypotheses) < 2:
        raise ValueError("input_dependence: needs 2 or more sentences to shuffle the references across")
    true = bleu_scores(hypotheses, references, tokenize, lowercase, smooth_method)
    rng = np.random.default_rng(seed)
    runs = []
    for _ in range(shuffles):
        perm = derangement(len(references), rng)
        runs.append(bleu_scores(hypotheses, [references[j] for j in perm], tokenize, lowercase, smooth_method))
    b1, b4 = np.array([r["bleu1"] for r in runs]), np.array([r["bleu4"] for r in runs])
    gap = true["bleu1"] - float(b1.mean())
    distinct = len(set(h.strip() for h in hypotheses))
    return {
        **true, "shuffled_bleu1": float(b1.mean()), "shuffled_bleu4": float(b4.mean()), "shuffled_bleu1_std": float(b1.std()),
        "bleu1_gap": gap, "distinct_outputs": distinct, "reads_input": bool(distinct > 1 and gap > max(1.0, 3 * float(b1.std()))),
    }


def dependence_verdict(result: Dict) -> str:
    """One line for a report: the gap, the distinct outputs, and a flag when the output does not
    depend on the input."""
    line = (f"BLEU-1 {result['bleu1']:.2f} vs {result['shuffled_bleu1']:.2f} against shuffled references "
            f"(gap {result['bleu1_gap']:+.2f}), {result['distinct_outputs']} distinct outputs of {result['n']}")
    return line if result["reads_input"] else line + "  ** output does not depend on the input **"


def strip_sentencepiece(line: str) -> str:
    """Sentencepiece pieces -> words, as fairseq's `--post-process sentencepiece`. A line without
    any "\u2581" word mark is taken to be detokenized already and left alone."""
    return line.replace(" ", "").replace(SPM_MARK, " ").strip() if SPM_MARK in line else line


def read_fairseq_generate(path: str) -> Tuple[List[str], List[str]]:
    """(hypotheses, references) of a fairseq-generate output, ordered by sentence id: T-<id> is
    the reference, D-<id> (detokenized) the hypothesis, else H-<id>; with --nbest the first (best)
    one. Other lines (S-, P-, A-, logging, the BLEU summary) are skipped."""
    require_file(path, "fairseq-generate output")
    refs, hyps = {}, {"H": {}, "D": {}}  # id -> (line number, text)
    for lineno, line in numbered_lines(path):
        m = GENERATE_LINE.match(line)
        if not m:
            continue
        kind, sid = m.groups()
        fields = line.rstrip("\r\n").split("\t", 1 if kind == "T" else 2)
        if kind == "T":
            if sid in refs:
                raise CorpusError(f"{path}:{lineno}: a second T-{sid} (the first is on line {refs[sid][0]}); are two outputs concatenated?")
            refs[sid] = (lineno, fields[1])
        elif len(fields) != 3:
            raise CorpusError(f"{path}:{lineno}: {kind}-{sid} line without <score><TAB><hypothesis>")
        else:
            hyps[kind].setdefault(sid, (lineno, fields[2]))
    hyp = {**hyps["H"], **hyps["D"]}
    if not hyp and not refs:
        raise CorpusError(f"{path}: no T-, H- or D- lines; expected fairseq-generate output (not run with --quiet)")
    for have, lack, what in ((hyp, refs, "a hypothesis but no reference (T-"), (refs, hyp, "a reference but no hypothesis (H-/D-")):
        missing = [s for s in have if s not in lack]
        if missing:
            more = f" (and {len(missing) - 1} more sentences)" if len(missing) > 1 else ""
            raise CorpusError(f"{path}:{have[missing[0]][0]}: sentence {missing[0]} has {what}{missing[0]} line){more}")
    ids = sorted(refs, key=int) if all(s.isdigit() for s in refs) else sorted(refs)
    return [hyp[s][1] for s in ids], [refs[s][1] for s in ids]


def read_sentence_files(hyp_path: str, ref_path: str) -> Tuple[List[str], List[str]]:
    """Hypotheses and references, one sentence per line, line i of one matching line i of the other."""
    hyps, refs = ([line.rstrip("\r\n") for _, line in numbered_lines(require_file(p, what))]
                  for p, what in ((hyp_path, "hypothesis file"), (ref_path, "reference file")))
    if len(hyps) != len(refs):
        (long_path, long), (short_path, short) = sorted(((hyp_path, hyps), (ref_path, refs)), key=lambda x: -len(x[1]))
        raise CorpusError(f"{long_path}:{len(short) + 1}: {len(long)} lines, but {short_path} has {len(short)}; both need one sentence per line")
    if not hyps:
        raise CorpusError(f"{hyp_path}: empty (and so is {ref_path})")
    return hyps, refs
