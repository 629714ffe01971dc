#!/usr/bin/env python
"""Sign language generation with a USLNet joint checkpoint: each sentence of --input becomes an
mp4 (text encoder -> aligner -> GPT sampling -> VQ-VAE decoder) under OUT/clips, listed in
OUT/generated.tsv, with a contact sheet of the first clips (OUT/sheet.png) and, with
--real-clips, one of generated clips above the real clips of their sentences
(OUT/sheet_vs_real.png).

Evaluated as the paper's table 2 does:
  back-translation BLEU-1/4  the model translates its generated videos back to text, the input
                             sentence is the reference (OUT/back_translation.txt); also against
                             the sentences shuffled across clips, with the distinct
                             back-translations and distinct videos, and a flag when the output
                             does not depend on the sentence
  FVD                        with --i3d-checkpoint and --reference (real clips: a manifest or a
                             folder of videos), over I3D features of clips resampled to the model's
                             window, as the generated clips are
Scores go to OUT/results.json.

  python scripts/generate_sign_video.py --path checkpoints/joint/checkpoint_best.pt \
      --input data/text/test.txt --out outputs/generated --i3d-checkpoint i3d_rgb.pt \
      --reference data/video/test.tsv
"""
import argparse
import json
import os
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.io.writers import atomic_open, write_lines
from fairseq_signlang.io.video import VideoSet, read_clip_manifest, read_video
from fairseq_signlang.metrics.bleu import dependence_verdict
from fairseq_signlang.tools.sign_generation import back_translation_bleu, distinct_clips, generate_sign_videos, generation_fvd, read_sentences
from fairseq_signlang.tools.uslnet_hub import UslnetHub
from fairseq_signlang.viz.video_panels import contact_sheet


def real_beside_generated(rows, real_clips: str, out_png: str, count: int = 3) -> None:
    real = {r.text: r for r in read_clip_manifest(real_clips) if r.text}
    pairs = [(g, real[g.text]) for g in rows if g.text in real][:count]
    if not pairs:
        raise CorpusError(f"{real_clips}: none of its clips signs a generated sentence")
    frames, labels = [], []
    for generated, clip in pairs:
        frames += [read_video(generated.path)[0], read_video(clip.path, start=clip.start, end=clip.end)[0]]
        labels += [f"generated\n{generated.text}", f"real\n{clip.text}"]
    contact_sheet(frames, labels, out_png)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--path", required=True, help="joint (uslnet) checkpoint")
    ap.add_argument("--input", required=True, help="sentences: a text file, one per line, or a clip manifest's text column")
    ap.add_argument("--out", required=True, help="folder for the clips, manifest, sheet and results")
    ap.add_argument("--data", help="text folder (dict.txt, spm.model) if not the checkpoint's task.data")
    ap.add_argument("--limit", type=int, help="only the first N sentences")
    ap.add_argument("--temperature", type=float, default=1.0, help="GPT sampling temperature")
    ap.add_argument("--top-k", type=int, help="sample among the k most likely codes only")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (batch b uses seed + its first index)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--beam", type=int, default=1, help="beam size of back-translation (the paper decodes greedily)")
    ap.add_argument("--i3d-checkpoint", help="I3D RGB state dict for FVD")
    ap.add_argument("--reference", help="real clips for FVD: a clip manifest or a folder of videos")
    ap.add_argument("--fvd-size", type=int, default=224, help="frame size fed to I3D")
    ap.add_argument("--real-clips", help="clips of the same sentences (a manifest with text): OUT/sheet_vs_real.png shows the first "
                                         "three generated clips whose sentence it has, each above the real clip of that sentence")
    ap.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    args = ap.parse_args(argv)
    if bool(args.i3d_checkpoint) != bool(args.reference):
        ap.error("FVD needs both --i3d-checkpoint and --reference")
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be positive")
    try:
        sentences = read_sentences(args.input)[: args.limit]
        hub = UslnetHub.from_checkpoint(args.path, data=args.data, device=args.device)
        rows = generate_sign_videos(hub, sentences, args.out, batch_size=args.batch_size, temperature=args.temperature,
                                    top_k=args.top_k, seed=args.seed)
        scores = back_translation_bleu(hub, rows, beam=args.beam, batch_size=args.batch_size)
        results = {"checkpoint": args.path, "input": args.input, "n": len(rows), "back_translation_bleu1": scores["bleu1"],
                   "back_translation_bleu4": scores["bleu4"], "bleu_signature": scores["signature"],
                   "temperature": args.temperature, "top_k": args.top_k, "seed": args.seed, "beam": args.beam,
                   "distinct_videos": distinct_clips(rows)}
        if "reads_input" in scores:  # 2 or more sentences: does the generation depend on its sentence?
            results.update({f"back_translation_{k}": scores[k] for k in
                            ("shuffled_bleu1", "shuffled_bleu4", "shuffled_bleu1_std", "bleu1_gap", "distinct_outputs", "reads_input")})
        if args.i3d_checkpoint:
            reference = VideoSet(args.reference).rows  # a folder of videos or a manifest, as compute_fvd.py reads them
            results.update(fvd=generation_fvd(hub, rows, reference, args.i3d_checkpoint, size=args.fvd_size, device=args.device),
                           fvd_reference=args.reference, n_reference=len(reference), i3d_checkpoint=args.i3d_checkpoint)
        shown = rows[:6]
        contact_sheet([read_video(r.path)[0] for r in shown], [r.text for r in shown], os.path.join(args.out, "sheet.png"))
        if args.real_clips:
            real_beside_generated(rows, args.real_clips, os.path.join(args.out, "sheet_vs_real.png"))
    except (CorpusError, ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    write_lines(os.path.join(args.out, "back_translation.txt"), scores["hypotheses"])
    with atomic_open(os.path.join(args.out, "results.json"), encoding="utf-8") as f:
        json.dump(results, f, indent=2)
        f.write("\n")
    line = f"back-translation BLEU-1 {results['back_translation_bleu1']:.2f} BLEU-4 {results['back_translation_bleu4']:.2f}"
    if "fvd" in results:
        line += f"  FVD {results['fvd']:.2f}"
    print(f"{len(rows)} sign videos ({results['distinct_videos']} distinct) in {args.out}/clips; {line}")
    if "reads_input" in scores:
        print("back-translation: " + dependence_verdict(scores))


if __name__ == "__main__":
    main()
