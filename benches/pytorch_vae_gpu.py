#!/usr/bin/env python3
"""The canonical VAE (PyTorch's VAE example) trained on a GPU, for scripts/gpu-check.sh.

The peer script ../shared/peer/pytorch_vae.py runs on the CPU only. This one imports its
model, loss and MNIST reader unchanged (so the two cannot drift apart) and runs the same
training loop on `--device` (cuda by default): Adam lr 1e-3, batch 128, a fresh
permutation each epoch, the last partial batch kept, `loss.item()` every step as the
example does. Seconds per epoch are wall time of the training pass with the device
synchronised at both ends; the test loss is the one-sample negative ELBO on the test set.

usage: python3 benches/pytorch_vae_gpu.py --peer DIR --data DIR [--epochs 3] [--seed 1]
                                          [--device cuda] [--json out.json]
"""
import argparse
import importlib.util
import json
import os
import time

import numpy as np
import torch


def load_peer(peer_dir):
    path = os.path.join(peer_dir, "pytorch_vae.py")
    spec = importlib.util.spec_from_file_location("pytorch_vae", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peer", required=True, help="folder holding pytorch_vae.py")
    p.add_argument("--data", required=True, help="folder holding the MNIST IDX .gz files")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cuda")
    p.add_argument("--json", default=None)
    args = p.parse_args()

    peer = load_peer(args.peer)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    tr_u8, te_u8 = peer.load_mnist(args.data)
    train_x = torch.from_numpy(tr_u8.astype(np.float32) / 255.0).to(device)
    test_x = torch.from_numpy(te_u8.astype(np.float32) / 255.0).to(device)
    model = peer.VAE(400, 20, "relu").to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    bs = 128
    n_train = train_x.shape[0]
    n_batches = (n_train + bs - 1) // bs
    shuffle = torch.Generator().manual_seed(args.seed)

    epochs = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(n_train, generator=shuffle).to(device)
        train_loss = 0.0
        sync(device)
        t0 = time.perf_counter()
        for i in range(n_batches):
            data = train_x.index_select(0, perm[i * bs : (i + 1) * bs])
            optimizer.zero_grad()
            recon, mu, logvar = model(data)
            loss = peer.loss_function(recon, data, mu, logvar)
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        sync(device)
        train_s = time.perf_counter() - t0
        model.eval()
        with torch.no_grad():
            test_loss = 0.0
            for b in range(0, test_x.shape[0], 1000):
                data = test_x[b : b + 1000]
                recon, mu, logvar = model(data)
                test_loss += peer.loss_function(recon, data, mu, logvar).item()
        row = {"epoch": epoch, "train_s": train_s, "train_loss": train_loss / n_train,
               "test_loss": test_loss / test_x.shape[0]}
        epochs.append(row)
        print(json.dumps(row), flush=True)

    out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
           "seed": args.seed, "epochs": epochs}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main()
