"""Build a "noise-only" LoRA adapter for SmolLM2-135M-Instruct, for calibration tests.

The adapter has the same shape as the demo adapter (``build_demo_adapter.py``:
LoRA r=8, alpha=16 on ``q_proj,k_proj,v_proj,o_proj``) but is never trained.
peft initialises ``lora_A`` as usual (Kaiming-uniform) and ``lora_B`` to zero,
which would make the adapter an exact no-op; here ``lora_B`` is instead filled
with small Gaussian noise (``--std``, default 1e-3) from a seeded generator. The
candidate then differs from the base only by noise, with no behaviour learned:
whatever a probe reports for it is what the tool calls a difference when there
is none to find (a calibration check for false alarms).

Usage (from the repository root):

    python models/build_noise_adapter.py --out /tmp/noise-adapter --seed 0 [--std 1e-3]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

BASE_MODEL_NAME = "smollm2-135m"  # the name the probe tool resolves
TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--std", type=float, default=1e-3,
                        help="standard deviation of the Gaussian noise in lora_B (default 1e-3)")
    args = parser.parse_args(argv)
    if args.std < 0:
        parser.error("--std must be >= 0")

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from probe.backends.smollm2 import ensure_smollm2

    start = time.time()
    torch.manual_seed(args.seed)  # lora_A's Kaiming-uniform init draws from the global RNG
    random.seed(args.seed)

    model_dir = ensure_smollm2()
    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, bias="none",
                      target_modules=TARGET_MODULES, task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)

    # lora_B from its own generator, in a fixed (sorted) order, so the noise depends
    # on the seed alone.
    gen = torch.Generator().manual_seed(args.seed)
    filled = 0
    with torch.no_grad():
        for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * args.std)
                filled += param.numel()
    if filled == 0:
        raise SystemExit("no lora_B parameters found: peft layout changed?")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out), safe_serialization=True)
    cfg_path = out / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = BASE_MODEL_NAME
    cfg["target_modules"] = sorted(cfg["target_modules"])  # peft writes a set
    cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    (out / "README.md").unlink(missing_ok=True)  # peft's generic model-card template
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"saved {out} ({size / 1e6:.2f} MB, {filled:,} lora_B values ~ N(0, {args.std:g}^2), "
          f"seed {args.seed}) in {time.time() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
