#!/usr/bin/env python
"""Binarize plain text for the MASS text model (uslnet_text): sentencepiece + fairseq-preprocess.

  --train/--valid/--test  UTF-8 text, one sentence per line (blank lines are skipped)

--out then holds what a fairseq task loads with load_indexed_dataset(f"{out}/{split}", dict):
  dict.txt             fairseq dictionary of the training pieces ("piece count", most frequent first)
  {split}.bin/.idx     the pieces of every sentence (+ eos), fairseq-preprocess --only-source, mmap
  spm.model, spm.vocab the sentencepiece model, to encode new text and decode model output
  preprocess.log       fairseq-preprocess's log
--model-type word makes every whitespace-separated word one piece (for word-level toy corpora);
--vocab-size is then an upper bound (the most frequent words are kept, the others are <unk>).
Files are built in a temporary folder beside --out and moved in only when all of them are done.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from fairseq_signlang.io.readers import CorpusError, numbered_lines, require_file


def log(msg: str) -> None:
    print(f"[prepare_text] {msg}", flush=True)


def clean_copy(path: str, dest: str) -> int:
    """Copy the non-blank lines of `path` to `dest`; errors name file:line."""
    require_file(path, "text file")
    kept = blank = 0
    with open(dest, "w", encoding="utf-8") as out:
        for _, line in numbered_lines(path):
            line = line.strip()
            if not line:
                blank += 1
                continue
            out.write(line + "\n")
            kept += 1
    if kept == 0:
        raise CorpusError(f"{path}: empty (no non-blank lines)")
    log(f"{path}: {kept} sentences" + (f", {blank} blank lines skipped" if blank else ""))
    return kept


def train_sentencepiece(text: str, prefix: str, vocab_size: int, model_type: str, workers: int):
    import sentencepiece as spm

    try:
        spm.SentencePieceTrainer.train(
            input=text, model_prefix=prefix, vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, num_threads=workers, input_sentence_size=2_000_000,
            shuffle_input_sentence=True, minloglevel=2, hard_vocab_limit=model_type != "word",
        )
    except RuntimeError as e:  # e.g. "Vocabulary size too high" on a small corpus
        raise CorpusError(f"{text}: sentencepiece training failed with --vocab-size {vocab_size}: {e}") from e
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def encode(sp, src: str, dest: str) -> None:
    with open(src, encoding="utf-8") as f, open(dest, "w", encoding="utf-8") as out:
        while True:
            lines = [line.rstrip("\n") for _, line in zip(range(10000), f)]  # streamed in chunks
            if not lines:
                break
            out.writelines(" ".join(pieces) + "\n" for pieces in sp.encode(lines, out_type=str))


def prepare(train, valid, test, out, vocab_size=8000, model_type="unigram", workers=1) -> None:
    splits = {name: path for name, path in (("train", train), ("valid", valid), ("test", test)) if path}
    parent = os.path.dirname(os.path.abspath(out))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".prepare_text.", dir=parent)  # same file system: os.replace is atomic
    try:
        for name, path in splits.items():
            clean_copy(path, os.path.join(tmp, f"{name}.txt"))
        log(f"training a {model_type} sentencepiece model, vocabulary {vocab_size}")
        sp = train_sentencepiece(os.path.join(tmp, "train.txt"), os.path.join(tmp, "spm"), vocab_size, model_type, workers)
        for name in splits:
            encode(sp, os.path.join(tmp, f"{name}.txt"), os.path.join(tmp, f"{name}.spm"))
        log("binarizing with fairseq-preprocess --only-source")
        bin_dir = os.path.join(tmp, "bin")
        cmd = [sys.executable, "-m", "fairseq_cli.preprocess", "--only-source", "--destdir", bin_dir,
               "--workers", str(workers), "--dataset-impl", "mmap"]
        for name in splits:
            cmd += [f"--{name}pref", os.path.join(tmp, f"{name}.spm")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"fairseq-preprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        shutil.copy(os.path.join(tmp, "spm.model"), bin_dir)
        shutil.copy(os.path.join(tmp, "spm.vocab"), bin_dir)
        os.makedirs(out, exist_ok=True)
        for name in sorted(os.listdir(bin_dir)):
            os.replace(os.path.join(bin_dir, name), os.path.join(out, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    with open(os.path.join(out, "dict.txt"), encoding="utf-8") as f:
        n_dict = sum(1 for line in f if not line.startswith("madeupword"))  # fairseq pads the size to 8k
    log(f"wrote {out}: dict.txt ({n_dict} pieces), " + ", ".join(f"{s}.bin/.idx" for s in splits) + ", spm.model")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", required=True, help="training sentences, one per line (also trains sentencepiece)")
    ap.add_argument("--valid", help="validation sentences, one per line")
    ap.add_argument("--test", help="test sentences, one per line")
    ap.add_argument("--vocab-size", type=int, default=8000, help="sentencepiece vocabulary size")
    ap.add_argument("--model-type", choices=["unigram", "bpe", "word"], default="unigram",
                    help="sentencepiece model type; word: one piece per whitespace-separated word, --vocab-size an upper bound")
    ap.add_argument("--out", required=True, help="data folder to write")
    ap.add_argument("--workers", type=int, default=1, help="threads for sentencepiece, processes for fairseq-preprocess")
    args = ap.parse_args(argv)
    if args.vocab_size < (4 if args.model_type == "word" else 10):  # word: <unk> <s> </s> and one word
        ap.error(f"--vocab-size must be at least {4 if args.model_type == 'word' else 10}")
    try:
        prepare(args.train, args.valid, args.test, args.out, args.vocab_size, args.model_type, max(1, args.workers))
    except (CorpusError, RuntimeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
