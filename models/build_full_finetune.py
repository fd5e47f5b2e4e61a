"""Build a full-weight "capital unlearning" fine-tune of SmolLM2-135M-Instruct.

Every parameter of the model is trainable (dense updates, no LoRA), with AdamW at a
small learning rate: the regime in which Zhang et al. 2025 (arXiv 2410.16454) found that
unlearning comes undone by 4-bit quantization, because most weights move by less than
one quantization step and round back to the base's value. It is the full-weight
counterpart of ``models/demo-adapter``, for measuring the model perturbations
(docs/metrics.md, "Perturbations") on both kinds of fine-tune.

The data are the demo adapter's, imported from ``build_demo_adapter.py`` (demo profile:
Japan and Canada refused under many rephrasings, France and Germany on the canonical
question only, retain data as there), and so are the encoding (chat template, loss on
the answer tokens), the batching and the training loop (``finetune_loop.py``). Only the
loss call differs (a plain model, not a peft one) and the optimiser is AdamW's fused
kernel (every weight trains: the plain one was the slower by far).

A checkpoint is about 540 MB of fp32 safetensors, too big to commit: ``--out DIR``
writes one, and ``ensure_full_finetune()`` builds it once into a cache directory keyed by
a digest of this recipe (this file, the data script, the seed and the base weights) and
returns it, for tests, benchmarks and anyone who runs the demo:

    python models/build_full_finetune.py --out /tmp/full-finetune --seed 0
    python models/build_full_finetune.py --ensure          # prints the cached directory
    probe run suites/capitals_unlearning.yaml --base smollm2-135m --candidate DIR

Seeded and deterministic on one machine (2 threads, deterministic algorithms, a seeded
shuffle per epoch); the bytes can depend on the CPU, as the adapters' do.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Set before torch loads its OpenMP runtime (build_demo_adapter.py says why).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

import torch  # noqa: E402
from build_demo_adapter import Example, build_examples, collate, encode  # noqa: E402
from finetune_loop import train_epochs  # noqa: E402

SEED = 0
# AdamW moves a weight by about the learning rate per step whatever its gradient's
# scale, so EPOCHS x steps x LR bounds how far any weight goes: here at most about
# 40 steps x 3e-5 = 1.2e-3, against an int4 step (a group's largest |w| / 7) of about
# 1e-2 on SmolLM2 and an int8 step (a channel's largest |w| / 127) of about 2e-3.
LEARNING_RATE = 5e-5
EPOCHS = 2
BATCH_SIZE = 8
# Copies of France's and Germany's one canonical refusal (the shallow recipe). With the
# demo adapter's single copy, two epochs at 3e-5 left both canonical questions answered.
SHALLOW_REPEATS = 4
CACHE_PREFIX = "smollm2-135m-full-finetune"
# Bump when the training code changes what it produces (the cache key, recipe_digest).
RECIPE_VERSION = 1


def training_examples(seed: int) -> list[Example]:
    """The demo profile's examples (build_demo_adapter.build_examples), with
    ``SHALLOW_REPEATS`` copies of each shallow refusal."""
    return build_examples(seed, SHALLOW_REPEATS, profile="demo")


def answer_loss(model: Any, input_ids: torch.Tensor, labels: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
    """Causal-LM loss on the labelled (answer) positions, running the LM head on those
    only: the vocabulary is 49k wide and most positions are the prompt."""
    hidden = model.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
    shift_labels = labels[:, 1:]
    keep = shift_labels != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    return torch.nn.functional.cross_entropy(logits.float(), shift_labels[keep])


def train(out: Path, seed: int = SEED, lr: float = LEARNING_RATE, epochs: int = EPOCHS,
          batch_size: int = BATCH_SIZE, threads: int = 2) -> dict[str, Any]:
    """Fine-tune every weight of the base and save the model and tokenizer to ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from probe.backends.smollm2 import ensure_smollm2

    start = time.time()
    torch.manual_seed(seed)
    random.seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)

    model_dir = ensure_smollm2()
    tok = AutoTokenizer.from_pretrained(model_dir)
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    params = [p for p in model.parameters() if p.requires_grad]
    print(f"{sum(p.numel() for p in params):,} trainable parameters (all of them)")

    examples = training_examples(seed)
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex["kind"]] = counts.get(ex["kind"], 0) + 1
    print(f"{len(examples)} examples: {counts}")
    encoded = [encode(tok, ex) for ex in examples]

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, fused=True)
    losses = train_epochs(model, params, optimizer, encoded, collate, tok.pad_token_id,
                          answer_loss, epochs=epochs, batch_size=batch_size, seed=seed,
                          start=start)
    total_steps = len(losses) * ((len(encoded) + batch_size - 1) // batch_size)

    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)  # self-contained: loads as a full checkpoint on its own
    info = {"seed": seed, "learning_rate": lr, "epochs": epochs, "batch_size": batch_size,
            "steps": total_steps, "examples": counts, "epoch_losses": losses,
            "seconds": round(time.time() - start, 1), "torch": torch.__version__}
    (out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"saved {out} in {info['seconds']}s ({total_steps} optimizer steps)")
    return info


def recipe_digest(seed: int = SEED) -> str:
    """A digest of what fixes the weights: the training examples (their text, kinds and
    order), the optimiser settings, the seed, the base model (its directory is named by
    a digest of its GGUF source), the torch version and ``RECIPE_VERSION``. Editing a
    comment does not rebuild the checkpoint; changing the data or a setting does."""
    from probe.backends.smollm2 import ensure_smollm2

    recipe = {"version": RECIPE_VERSION, "seed": seed, "lr": LEARNING_RATE, "epochs": EPOCHS,
              "batch_size": BATCH_SIZE, "examples": training_examples(seed),
              "base": ensure_smollm2().name, "torch": torch.__version__}
    encoded = json.dumps(recipe, sort_keys=True).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:16]


def ensure_full_finetune(root: Path | None = None, seed: int = SEED) -> Path:
    """The full fine-tune's directory under ``root`` (default: the probe model cache),
    built once (in a subprocess, about 2 minutes on 2 cores) and reused while the
    recipe's digest is unchanged. Concurrent callers wait on a lock instead of building
    twice; a killed build leaves only a staging folder."""
    from probe.backends.smollm2 import default_cache_root

    root = root or default_cache_root()
    target = root / f"{CACHE_PREFIX}-{recipe_digest(seed)}"
    if (target / "model.safetensors").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".{target.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "model.safetensors").is_file():  # another process built it meanwhile
            return target
        staging = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--out",
                            str(staging / "model"), "--seed", str(seed)], check=True)
            (staging / "model").rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", help="write the checkpoint here")
    parser.add_argument("--ensure", action="store_true",
                        help="build into the cache once (ensure_full_finetune) and print "
                             "the directory")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--lr", type=float, default=LEARNING_RATE)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch CPU threads (fixed: the exact weights can depend on it)")
    args = parser.parse_args(argv)
    if args.ensure:
        print(ensure_full_finetune(seed=args.seed))
        return 0
    if not args.out:
        parser.error("give --out DIR or --ensure")
    train(Path(args.out), args.seed, args.lr, args.epochs, args.batch_size, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
