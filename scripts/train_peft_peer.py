#!/usr/bin/env python3
"""The PyTorch + PEFT peer of `lem bench train`.

Trains LoRA on the same GGUF model, with the same token batch, rank, alpha,
targets, learning rate and thread count as lem, and prints one JSON object:
step losses, seconds per step and peak RSS. Needs `pip install torch
transformers peft gguf`. Run by `lem bench train`; not a test.
"""
import argparse
import json
import os
import resource
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--gguf", required=True)
    p.add_argument("--batch", required=True, help="JSON file: {\"rows\": [[ids...], ...], \"labels\": [[id or -100, ...], ...]}")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16.0)
    p.add_argument("--targets", default="q_proj,k_proj,v_proj,o_proj")
    p.add_argument("--lr", type=float, default=1e-4)
    a = p.parse_args()

    import torch
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    d, f = os.path.split(os.path.abspath(a.gguf))
    model = AutoModelForCausalLM.from_pretrained(
        d, gguf_file=f, torch_dtype=torch.float32, attn_implementation="sdpa"
    )
    config = LoraConfig(
        r=a.rank,
        lora_alpha=a.alpha,
        lora_dropout=0.0,
        target_modules=a.targets.split(","),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    model.train()
    batch = json.load(open(a.batch))
    ids = torch.tensor(batch["rows"], dtype=torch.long)
    # Positions lem does not supervise are -100 (ignored) here.
    labels = torch.tensor(batch.get("labels", batch["rows"]), dtype=torch.long)
    opt = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=a.lr, weight_decay=0.0
    )
    losses, times = [], []
    for _ in range(a.steps):
        t = time.perf_counter()
        out = model(input_ids=ids, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t)
        losses.append(float(out.loss))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "losses": losses,
                "seconds_per_step": times,
                "peak_rss_gb": peak_kb / 1024 / 1024,
                "trainable_parameters": sum(
                    p.numel() for p in model.parameters() if p.requires_grad
                ),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
