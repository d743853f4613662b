#!/usr/bin/env python3
"""Loads mixprec's MLP checkpoint into the equivalent torch.nn.Module and
compares the logits on a test batch with mixprec's.

    cargo run --release --example checkpoint_interop -- mlp DIR [--precision P] [--steps N]
    python scripts/checkpoint_torch_mlp.py DIR

DIR/checkpoint.safetensors holds the parameters as `model/<path>` (the paths
of the same torch.nn.Sequential); DIR/batch.safetensors holds `buffer/x`
(128 MNIST test images) and `buffer/logits` (mixprec's FP32 logits from the
stored parameters). Prints the largest differences; exits non-zero if the
logits differ by more than 1e-4 relative to their largest magnitude or any
prediction differs.
"""

import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

directory = sys.argv[1] if len(sys.argv) == 2 else sys.exit(__doc__)
tensors = load_file(f"{directory}/checkpoint.safetensors")
with safe_open(f"{directory}/checkpoint.safetensors", framework="pt") as f:
    meta = f.metadata()
state = {k.removeprefix("model/"): v for k, v in tensors.items() if k.startswith("model/")}

model = torch.nn.Sequential(
    torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10)
)
# The working copies may be f16/bf16 (master-weights, pure-f16): widened, as mixprec does for its FP32 logits.
model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
batch = load_file(f"{directory}/batch.safetensors")
x, want = batch["buffer/x"], batch["buffer/logits"]
torch.set_num_threads(1)
with torch.no_grad():
    got = model(x)
diff = (got - want).abs().max().item()
scale = want.abs().max().item()
same_pred = bool((got.argmax(1) == want.argmax(1)).all())
print(
    f"torch {torch.__version__}: model {meta['model']} ({meta['precision']}, step {meta['step']}), "
    f"params {[(k, str(v.dtype).removeprefix('torch.'), list(v.shape)) for k, v in state.items()]}"
)
print(f"logits {list(got.shape)}: max |torch - mixprec| = {diff:.3g} (max |logit| = {scale:.3g}, relative {diff / scale:.3g}); "
      f"predictions identical: {same_pred}")
if diff > 1e-4 * scale or not same_pred:
    sys.exit("logits differ")
