#!/usr/bin/env python
"""Put USLNet together from its stage checkpoints without joint training (the paper's "USLNet
w/o joint training" baseline, USLNet-P in table 2) and save it as a checkpoint fairseq-generate
and the generation script read:

  python scripts/assemble_uslnet.py --text-checkpoint text_mass.pt --video-checkpoint video_gpt.pt \
      --data data/text/bin --video-data data/video --out checkpoints/uslnet_without_joint.pt

--data / --video-data are the unpaired corpora (task.data / task.video_data of the joint stage):
the text memory rate (tokens per second of video) is measured on their train splits. The aligner
is freshly initialised; --connection, --sharpness and --position-dim set it as the joint
stage's model config does.
"""
import argparse
import sys

from fairseq_signlang.io.readers import CorpusError
from fairseq_signlang.models.uslnet.sliding_window_aligner import CONNECTIONS, DEFAULT_SHARPNESS
from fairseq_signlang.tools.uslnet_hub import UslnetHub


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text-checkpoint", required=True, help="checkpoint of stage text_mass")
    ap.add_argument("--video-checkpoint", required=True, help="checkpoint of stage video_gpt")
    ap.add_argument("--data", required=True, help="text folder: fairseq-preprocess output with spm.model")
    ap.add_argument("--video-data", required=True, help="folder of {split}.tsv clip manifests")
    ap.add_argument("--video-cache", default="", help="decoded-clip cache of the video stages (default {video-data}/cache)")
    ap.add_argument("--out", required=True, help="checkpoint to write")
    ap.add_argument("--connection", choices=list(CONNECTIONS), default="soft")
    ap.add_argument("--sharpness", type=float, default=DEFAULT_SHARPNESS)
    ap.add_argument("--position-dim", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1, help="seeds the aligner's initialisation")
    args = ap.parse_args(argv)
    import torch

    torch.manual_seed(args.seed)
    try:
        hub = UslnetHub.from_stages(args.text_checkpoint, args.video_checkpoint, args.data, args.video_data, args.video_cache, device="cpu",
                                    connection=args.connection, sharpness=args.sharpness, position_dim=args.position_dim)
        hub.save(args.out)
    except (CorpusError, ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    print(f"wrote {args.out} (USLNet without joint training; {hub.model.encoder.tokens_per_second:.3f} text tokens per second of video)")


if __name__ == "__main__":
    main()
