#!/usr/bin/env python
"""Parameters and FLOPs (fvcore) of USLNet's modules at the sizes of the shipped configs:
the MASS text model, the video VQ-VAE and the video GPT, paper-size and tiny.

  python scripts/count_uslnet_params.py [--configs text_mass video_vqvae_tiny ...] [--json out.json]

FLOPs are for one forward pass of one example: a sentence of --text-length tokens, one window
of video at the config's resolution and length, the GPT over that window's code grid.
"""
import argparse
import json
import os
import sys
from types import SimpleNamespace

import torch
from fairseq.data import Dictionary
from omegaconf import OmegaConf

from fairseq_signlang.tools.complexity import complexity
from fairseq_signlang.models.uslnet.mass_transformer import UslnetTextConfig, UslnetTextModel
from fairseq_signlang.models.uslnet.video import UslnetVideoGPTModel, UslnetVideoGPTConfig, UslnetVQVAEConfig, UslnetVQVAEModel
from fairseq_signlang.tasks.uslnet import MASK_SYMBOL, UslnetConfig

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "uslnet")
CONFIGS = ("text_mass", "text_mass_tiny", "video_vqvae", "video_vqvae_tiny", "video_gpt", "video_gpt_tiny")


def load_config(name: str):
    path = os.path.join(CONFIG_DIR, name + ".yaml")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such config")
    return OmegaConf.load(path)


def section(cfg, key: str, schema):
    values = OmegaConf.to_container(cfg[key]) if key in cfg else {}
    values.pop("_name", None)
    return OmegaConf.merge(OmegaConf.structured(schema), values)


def text_task(vocab: int):
    dictionary = Dictionary()
    for i in range(vocab - dictionary.nspecial):
        dictionary.add_symbol(f"w{i}")
    dictionary.add_symbol(MASK_SYMBOL)
    return SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary, dictionary=dictionary)


def measure(name: str, args) -> dict:
    cfg = load_config(name)
    if name.startswith("text"):
        model = UslnetTextModel.build_model(section(cfg, "model", UslnetTextConfig), text_task(args.text_vocab))
        tokens = torch.randint(4, args.text_vocab, (1, args.text_length))
        half = args.text_length // 2
        inputs = (tokens, torch.tensor([args.text_length]), tokens[:, :half])
        shape = f"sentence of {args.text_length} tokens, vocabulary {args.text_vocab}"
        return {"config": name, "input": shape, **complexity(model, inputs)}
    vqvae_name = name.replace("video_gpt", "video_vqvae")
    vqvae_cfg = section(load_config(vqvae_name), "model", UslnetVQVAEConfig)  # the build adds its clip geometry
    vqvae = UslnetVQVAEModel.build_model(vqvae_cfg, SimpleNamespace(cfg=section(load_config(vqvae_name), "task", UslnetConfig)))
    g = vqvae.geometry
    video = torch.zeros(1, 3, g.window_frames, g.resolution, g.resolution)
    if name.startswith("video_vqvae"):
        latent = vqvae.vqvae.latent_shape(*video.shape[2:])
        return {"config": name, "input": f"window {tuple(video.shape[1:])} -> codes {latent}", **complexity(vqvae.vqvae, (video,))}
    gpt_cfg = section(cfg, "model", UslnetVideoGPTConfig)
    gpt_cfg.vqvae_args = vqvae_cfg
    model = UslnetVideoGPTModel.build_model(gpt_cfg)
    codes = torch.zeros(1, *model.gpt.latent_shape, dtype=torch.long)
    stats = complexity(model.gpt, (codes,))
    return {"config": name, "input": f"code grid {tuple(model.gpt.latent_shape)} = {codes[0].numel()} positions", **stats}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), help="config names in examples/uslnet")
    ap.add_argument("--text-vocab", type=int, default=32000, help="text dictionary size (sentencepiece vocabulary)")
    ap.add_argument("--text-length", type=int, default=64, help="tokens in the sentence the text FLOPs are counted on")
    ap.add_argument("--json", default=None, help="also write the table as JSON here")
    args = ap.parse_args(argv)
    rows = [measure(name, args) for name in args.configs]
    print(f"{'config':<18} {'params':>12} {'trainable':>12} {'GFLOPs':>10}  input")
    for r in rows:
        print(f"{r['config']:<18} {r['params']:>12,} {r['trainable']:>12,} {r['flops'] / 1e9:>10.3f}  {r['input']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
