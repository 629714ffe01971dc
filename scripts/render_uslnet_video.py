#!/usr/bin/env python
"""Render a clip, its VQ-VAE reconstruction and a GPT sample side by side (USLNet figure 5):
<out>.mp4 (the three clips playing together) and <out>.png (a contact sheet, one row each).

  python scripts/render_uslnet_video.py --checkpoint checkpoints/video_gpt/checkpoint_best.pt \
      --manifest data/video/valid.tsv --clip <id> --out outputs/uslnet_fig5

A video_vqvae checkpoint works too; the sheet then has no generated row. Frame rate, resolution
and window length are the ones the checkpoint was trained with.
"""
import argparse
import os
import sys

import numpy as np
import torch

from fairseq_signlang.criterions.uslnet_video import psnr
from fairseq_signlang.data.video_windows import DecodedClipCache, clip_tensor
from fairseq_signlang.io.video import read_clip_manifest, write_video
from fairseq_signlang.models.uslnet.video import UslnetVideoGPTModel, load_video_model
from fairseq_signlang.viz.video_panels import contact_sheet, side_by_side, to_frames


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="checkpoint of stage video_gpt (or video_vqvae)")
    ap.add_argument("--manifest", required=True, help="clip manifest (id, path, [start, end], [text])")
    ap.add_argument("--clip", default=None, help="clip id (default: the manifest's first clip)")
    ap.add_argument("--start-frame", type=int, default=0, help="first frame of the window shown")
    ap.add_argument("--cache-dir", default=None, help="decoded-clip cache (default: <manifest folder>/cache)")
    ap.add_argument("--samples", type=int, default=1, help="GPT samples drawn (one row each)")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-k", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=int, default=4, help="pixel repeat factor for the mp4 (codes grids are small)")
    ap.add_argument("--out", required=True, help="output prefix: writes <out>.mp4 and <out>.png")
    args = ap.parse_args(argv)

    try:
        model = load_video_model(args.checkpoint)
        geometry = model.geometry
        rows = read_clip_manifest(args.manifest)
        row = rows[0] if args.clip is None else next((r for r in rows if r.id == args.clip), None)
        if row is None:
            sys.exit(f"{args.manifest}: no clip with id {args.clip!r}")
        cache = DecodedClipCache(args.cache_dir or os.path.join(os.path.dirname(os.path.abspath(args.manifest)), "cache"),
                                 geometry.fps, geometry.resolution)
        frames = cache.get(row, where=args.manifest)
    except ValueError as e:  # CorpusError, CheckpointError: bad manifest, clip or checkpoint, named
        sys.exit(f"error: {e}")
    T = geometry.window_frames
    if args.start_frame + T > len(frames):
        sys.exit(f"{args.manifest}: clip {row.id} has {len(frames)} frames, too few for a {T}-frame window from frame {args.start_frame}")
    video = clip_tensor(np.asarray(frames[args.start_frame: args.start_frame + T]))[None]  # (1, 3, T, R, R)

    with torch.no_grad():
        recon = model.vqvae.decode_codes(model.vqvae.encode(video))
        clips, labels = [to_frames(video[0]), to_frames(recon[0])], ["source", "reconstructed"]
        if isinstance(model, UslnetVideoGPTModel):
            generator = torch.Generator().manual_seed(args.seed)
            generated, _ = model.sample_frames(args.samples, temperature=args.temperature, top_k=args.top_k, generator=generator)
            clips += [to_frames(g) for g in generated]
            labels += [f"generated {i + 1}" if args.samples > 1 else "generated" for i in range(args.samples)]

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    big = [c.repeat(args.scale, axis=1).repeat(args.scale, axis=2) for c in clips]
    write_video(args.out + ".mp4", side_by_side(big), fps=geometry.fps)
    contact_sheet(clips, labels, args.out + ".png")
    mse = float(((recon - video) ** 2).mean())
    print(f"clip {row.id}: reconstruction PSNR {psnr(mse):.2f} dB; wrote {args.out}.mp4 and {args.out}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
