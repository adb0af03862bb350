#!/usr/bin/env python3
"""The llama.cpp peer for `lem bench generate` and the greedy reference test.

Uses llama-cpp-python (`pip install llama-cpp-python`, compiles llama.cpp).
Loads the GGUF with use_extra_bufts=False (its AMX repacking path crashes on
this machine). Prints one JSON object on stdout.

  greedy  --model M --prompt-ids 2,818,... --n 32          -> {"tokens": [...]}
  speed   --model M --threads T --prompt-tokens P --decode-tokens D
          [--items FILE.json --max-tokens N]                -> {"prompt_tok_s", "decode_tok_s", "items_seconds"}
"""
import argparse, json, sys, time

def load(path, threads, n_ctx=2048):
    from llama_cpp import Llama
    kwargs = dict(model_path=path, n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                  n_batch=512, verbose=False, logits_all=False)
    try:
        return Llama(use_extra_bufts=False, **kwargs)
    except TypeError:
        return Llama(**kwargs)

def greedy(llm, ids, n):
    llm.reset()
    llm.eval(ids)
    out = []
    for _ in range(n):
        tok = llm.sample(temp=0.0, top_k=1)
        out.append(int(tok))
        llm.eval([tok])
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["greedy", "speed"])
    ap.add_argument("--model", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prompt-ids", default="")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--decode-tokens", type=int, default=128)
    ap.add_argument("--items", default=None, help="JSON list of prompt id lists")
    ap.add_argument("--max-tokens", type=int, default=256)
    a = ap.parse_args()
    llm = load(a.model, a.threads)
    if a.mode == "greedy":
        ids = [int(x) for x in a.prompt_ids.split(",") if x]
        print(json.dumps({"tokens": greedy(llm, ids, a.n)}))
        return
    prompt = [2] + [818 + (i % 500) for i in range(a.prompt_tokens - 1)]
    llm.reset()
    t = time.perf_counter(); llm.eval(prompt); prompt_s = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(a.decode_tokens):
        tok = llm.sample(temp=0.0, top_k=1)
        llm.eval([tok])
    decode_s = time.perf_counter() - t
    result = {"prompt_tok_s": a.prompt_tokens / prompt_s, "decode_tok_s": a.decode_tokens / decode_s}
    if a.items:
        items = json.load(open(a.items))
        stops = {1, 106}
        t = time.perf_counter(); generated = 0
        for ids in items:
            llm.reset(); llm.eval(ids)
            for _ in range(a.max_tokens):
                tok = llm.sample(temp=0.0, top_k=1)
                if tok in stops:
                    break
                generated += 1
                llm.eval([tok])
        result["items_seconds"] = time.perf_counter() - t
        result["items_tokens"] = generated
    print(json.dumps(result))

if __name__ == "__main__":
    sys.exit(main())
