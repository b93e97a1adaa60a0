#!/usr/bin/env python3
"""Runs a PyTorch script with its float32 matmul and convolution precision set, and says which.

burn's CUDA matmul kernels that run on tensor cores stage f32 operands as TF32 where the GPU
has it (cubek-matmul's adjust_dtypes), and its autotuner may pick them; PyTorch multiplies in
full f32 by default (torch.backends.cuda.matmul.allow_tf32 = False) but lets cuDNN use TF32
for convolutions. scripts/gpu-check.sh times PyTorch both ways so that the comparison with
burn is stated, not assumed.

usage: python3 benches/torch_precision.py fp32|tf32 SCRIPT [ARGS...]
"""
import runpy
import sys

import torch


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("fp32", "tf32"):
        sys.exit(__doc__)
    tf32 = sys.argv[1] == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    print(f"torch {torch.__version__}: matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32} "
          f"cudnn.allow_tf32={torch.backends.cudnn.allow_tf32} "
          f"float32_matmul_precision={torch.get_float32_matmul_precision()}", flush=True)
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
