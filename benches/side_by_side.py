#!/usr/bin/env python3
"""aevb against PyTorch on the same CPU, in one invocation, alternating A B A B.

Workloads (issue #9):
  canonical-1t  PyTorch's VAE example (784-400-20 ReLU, Bernoulli, Adam, batch 128) on MNIST,
                seconds per epoch of the training pass, 1 thread
  canonical-2t  the same on 2 threads
  iwae-k50      Burda et al.'s IWAE (784-200-200-50 tanh x2, k = 50, batch 20, Adam eps 1e-4,
                dynamic binarisation), one pass over 6,000 examples, 1 thread
  sweep-4x2     4 runs of the canonical model (seeds 1-4), 2 at a time, whole commands
                (data loading, per-epoch test loss, everything): epochs per hour
  end-to-end    the canonical model, 3 epochs, then log p(x) with K = 1000 on 1,000 test
                images, 2 threads, whole commands (issue #20)
  log-px-k1000  that estimate alone: `runner eval RUN --threads 2` on the trained run against
                the peer's own log p(x) timing (examples x samples batched through the decoder)
  conv64-1t     the convolutional beta-VAE disentanglement studies share (Burgess et al. 2018,
  conv64-2t     experiments/sprites_burgess64.toml, 764,245 parameters; batch 64, Adam, beta 4)
  conv32-1t     on 64x64 and 32x32 sprites, 1 and 2 threads: seconds per 1,000 training
  conv32-2t     examples (aevb: one epoch's training pass; the peer: pytorch_conv_vae.py, the
                median of its timing blocks on random binary images of the same size)

Each repeat runs aevb then PyTorch for every workload, so drift in a shared, noisy machine
hits both; the table shows medians over repeats (per-epoch medians within a repeat) and the
ratio aevb / PyTorch (below 1: aevb faster). PyTorch runs from ../shared/peer; where torch
is not importable the peer is skipped with a message and only aevb's times are shown.

usage: python3 benches/side_by_side.py [--data DIR] [--repeats 3] [--epochs 3]
                                        [--only canonical-1t,iwae-k50] [--json out.json]
Build first: cargo build --release
"""
import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.normpath(os.path.join(ROOT, "..", "shared", "peer"))
WORKLOADS = ["canonical-1t", "canonical-2t", "iwae-k50", "sweep-4x2", "end-to-end", "log-px-k1000",
             "conv64-1t", "conv64-2t", "conv32-1t", "conv32-2t"]


def run(cmd, env=None):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return p.stdout + p.stderr, wall


def aevb_epochs(results):
    """train_pass_seconds of every epoch of every run under a results folder."""
    out = []
    for f in glob.glob(os.path.join(results, "*", "runs", "*", "epochs.json")):
        out += [e["train_pass_seconds"] for e in json.load(open(f))]
    return out


class Bench:
    def __init__(self, a):
        self.a = a
        self.runner = os.path.join(ROOT, "target", "release", "runner")
        if not os.path.exists(self.runner):
            sys.exit(f"{self.runner} not found: run `cargo build --release` first")
        try:
            import torch  # noqa: F401

            self.torch = torch.__version__
        except ImportError:
            self.torch = None
            print("PyTorch is not installed (pip install torch numpy): timing aevb only", file=sys.stderr)
        self.tmp = tempfile.mkdtemp(prefix="aevb-bench-")

    def aevb(self, spec, sets, label):
        results = os.path.join(self.tmp, f"{label}-{time.time_ns()}")
        cmd = [self.runner, "run", spec, "--set", f"data.path={self.a.data}",
               "--set", f"runtime.results_dir={results}",
               "--set", "eval.importance_samples=1", "--set", "eval.log_px_examples=1",
               "--set", "eval.images_every_epochs=0"]
        for s in sets:
            cmd += ["--set", s]
        _, wall = run(cmd)
        return aevb_epochs(results), wall

    # --- workloads: each returns (aevb seconds, pytorch seconds or None) per repeat ---

    def canonical(self, threads):
        spec = os.path.join(ROOT, "experiments", "repro", "pytorch_example.toml")
        ours, _ = self.aevb(spec, [f"train.epochs={self.a.epochs}", f"runtime.threads={threads}"], "canonical")
        theirs = None
        if self.torch:
            out_json = os.path.join(self.tmp, f"peer-{time.time_ns()}.json")
            run([sys.executable, os.path.join(PEER, "pytorch_vae.py"), "--data", self.a.data,
                 "--threads", str(threads), "--epochs", str(self.a.epochs), "--json", out_json])
            theirs = statistics.median(e["train_s"] for e in json.load(open(out_json))["epochs"])
        return statistics.median(ours), theirs

    def iwae(self):
        spec = os.path.join(ROOT, "experiments", "repro", "iwae_mnist_full.toml")
        ours, _ = self.aevb(spec, ["objective.kind=iwae", "objective.iwae_k=50", "train.epochs=1",
                                   "data.train_limit=6000", "data.test_limit=100",
                                   "runtime.threads=1"], "iwae")
        theirs = None
        if self.torch:
            out, _ = run([sys.executable, os.path.join(PEER, "pytorch_iwae.py"), "--data", self.a.data,
                          "--k", "50", "--threads", "1", "--train-limit", "6000", "--flush-denormal"])
            theirs = float(out.split("epoch 1:")[1].split("s,")[0])
        return ours[0], theirs

    def sweep(self):
        """Wall seconds for 4 runs × epochs, 2 at a time; reported as epochs per hour."""
        base = os.path.join(ROOT, "experiments", "repro", "pytorch_example.toml")
        spec = os.path.join(self.tmp, f"sweep-{time.time_ns()}.toml")
        with open(spec, "w") as f:
            f.write(f'extends = "{base}"\nname = "bench_sweep"\n[runtime]\nworkers = 2\n'
                    f'[sweep.grid]\n"train.seed" = [1, 2, 3, 4]\n')
        results = os.path.join(self.tmp, f"sweep-{time.time_ns()}")
        cmd = [self.runner, "sweep", spec, "--set", f"data.path={self.a.data}",
               "--set", f"runtime.results_dir={results}", "--set", f"train.epochs={self.a.epochs}",
               "--set", "eval.importance_samples=1", "--set", "eval.log_px_examples=1",
               "--set", "eval.images_every_epochs=0"]
        _, ours = run(cmd)
        theirs = None
        if self.torch:
            t0 = time.perf_counter()
            peer = [sys.executable, os.path.join(PEER, "pytorch_vae.py"), "--data", self.a.data,
                    "--threads", "1", "--epochs", str(self.a.epochs)]
            for pair in ([1, 2], [3, 4]):
                procs = [subprocess.Popen(peer + ["--seed", str(s)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL) for s in pair]
                if any(p.wait() != 0 for p in procs):
                    sys.exit("the PyTorch sweep failed")
            theirs = time.perf_counter() - t0
        return ours, theirs

    def end_to_end(self):
        """Whole commands: 3 epochs then log p(x), K = 1000 on 1,000 test images, 2 threads.
        Also keeps the trained run and the peer's estimate time for `log-px-k1000`."""
        spec = os.path.join(ROOT, "experiments", "repro", "pytorch_example.toml")
        results = os.path.join(self.tmp, f"e2e-{time.time_ns()}")
        cmd = [self.runner, "run", spec, "--set", f"data.path={self.a.data}",
               "--set", f"runtime.results_dir={results}", "--set", "train.epochs=3",
               "--set", "runtime.threads=2", "--set", "eval.importance_samples=1000",
               "--set", "eval.log_px_examples=1000", "--set", "eval.images_every_epochs=0"]
        _, ours = run(cmd)
        self.trained = glob.glob(os.path.join(results, "*", "runs", "*"))[0]
        self.results = results
        theirs = None
        self.peer_log_px = None
        if self.torch:
            out, theirs = run([sys.executable, os.path.join(PEER, "pytorch_vae.py"), "--data", self.a.data,
                               "--threads", "2", "--epochs", "3", "--log-px", "1000",
                               "--log-px-examples", "1000"])
            self.peer_log_px = float(out.split("# log p(x):")[1].split(" in ")[1].split(" s")[0])
        return ours, theirs

    def log_px(self):
        """The estimate alone, on the run end-to-end trained (run first if it has not)."""
        if not getattr(self, "trained", None):
            self.end_to_end()
        out, _ = run([self.runner, "eval", self.trained, "--results", self.results,
                      "--importance-samples", "1000", "--examples", "1000", "--threads", "2"])
        ours = float(out.split("log p(x) estimate took ")[1].split(" s")[0])
        theirs = self.peer_log_px
        self.trained = None
        return ours, theirs

    def conv(self, side, threads):
        """Seconds per 1,000 training examples of the Burgess net at `side`."""
        spec = os.path.join(ROOT, "experiments", "sprites_burgess64.toml")
        results = os.path.join(self.tmp, f"conv-{time.time_ns()}")
        train = 2000 if side == 64 else 5000
        enc = "[32, 32, 64, 64]" if side == 64 else "[32, 64, 64]"
        dec = "[64, 64, 32, 32]" if side == 64 else "[64, 64, 32]"
        cmd = [self.runner, "run", spec, "--set", f"runtime.results_dir={results}",
               "--set", f"data.sprites.resolution={side}", "--set", f"data.sprites.count={train + 100}",
               "--set", f"data.test_fraction={100 / (train + 100)}",
               "--set", f"model.encoder.conv={enc}", "--set", f"model.decoder.conv={dec}",
               "--set", "objective.beta=4.0", "--set", "train.seed=0", "--set", "train.epochs=1",
               "--set", f"runtime.threads={threads}", "--set", "eval.importance_samples=1",
               "--set", "eval.log_px_examples=1", "--set", "eval.images_every_epochs=0"]
        run(cmd)
        ours = aevb_epochs(results)[0] / train * 1000
        theirs = None
        if self.torch:
            out_json = os.path.join(self.tmp, f"peer-conv-{time.time_ns()}.json")
            run([sys.executable, os.path.join(PEER, "pytorch_conv_vae.py"), "--threads", str(threads),
                 "--size", str(side), "--json", out_json])
            theirs = json.load(open(out_json))["train_s_per_1000_examples"]
        return ours, theirs

    def one(self, name):
        return {
            "canonical-1t": lambda: self.canonical(1),
            "canonical-2t": lambda: self.canonical(2),
            "iwae-k50": self.iwae,
            "sweep-4x2": self.sweep,
            "end-to-end": self.end_to_end,
            "log-px-k1000": self.log_px,
            "conv64-1t": lambda: self.conv(64, 1),
            "conv64-2t": lambda: self.conv(64, 2),
            "conv32-1t": lambda: self.conv(32, 1),
            "conv32-2t": lambda: self.conv(32, 2),
        }[name]()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "mnist")))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3, help="epochs per canonical trial and per sweep run")
    p.add_argument("--only", default=",".join(WORKLOADS))
    p.add_argument("--json", default=None)
    a = p.parse_args()
    a.data = os.path.abspath(a.data)
    b = Bench(a)
    names = [w for w in a.only.split(",") if w]
    samples = {w: ([], []) for w in names}
    for r in range(a.repeats):
        for w in names:
            ours, theirs = b.one(w)
            samples[w][0].append(ours)
            if theirs is not None:
                samples[w][1].append(theirs)
            print(f"repeat {r + 1}/{a.repeats} {w}: aevb {ours:.2f} s, PyTorch "
                  + (f"{theirs:.2f} s" if theirs is not None else "skipped"), file=sys.stderr, flush=True)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
    print(f"\nmachine: {cpu}, {os.cpu_count()} cores; PyTorch {b.torch or 'not installed'}; "
          f"{a.repeats} repeats alternating aevb/PyTorch, medians\n")
    print("| workload | PyTorch | aevb | aevb / PyTorch |")
    print("| --- | --- | --- | --- |")
    rows = {}
    for w in names:
        ours = statistics.median(samples[w][0])
        theirs = statistics.median(samples[w][1]) if samples[w][1] else None
        if w == "sweep-4x2":
            per_hour = lambda s: 4 * a.epochs * 3600 / s
            cell = lambda s: f"{per_hour(s):.0f} epochs/h ({s:.1f} s)"
        elif w in ("iwae-k50", "end-to-end", "log-px-k1000"):
            cell = lambda s: f"{s:.2f} s"
        elif w.startswith("conv"):
            cell = lambda s: f"{s:.3f} s/1000 examples"
        else:
            cell = lambda s: f"{s:.2f} s/epoch"
        ratio = f"{ours / theirs:.2f}" if theirs else "-"
        print(f"| {w} | {cell(theirs) if theirs else 'skipped'} | {cell(ours)} | {ratio} |")
        rows[w] = {"aevb_s": samples[w][0], "pytorch_s": samples[w][1], "ratio": ours / theirs if theirs else None}
    if a.json:
        json.dump({"machine": cpu, "cores": os.cpu_count(), "torch": b.torch, "epochs": a.epochs,
                   "workloads": rows}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
