"""Train a torchvision model on a custom dataset with your own loop, and record it for llstudio.

    python train.py                    # → runs/shapes/
    llstudio render own_run.toml       # → renders/own_run.mp4: the landscape of this very run

Everything here is an ordinary PyTorch training script (AdamW, a one-cycle learning-rate schedule, gradient
clipping, a DataLoader); the only llstudio lines are the Recorder's three.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import llstudio
from shapes import load, make_model


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps (the scene's training.steps)")
    ap.add_argument("--every", type=int, default=10, help="record every this many steps (the scene's capture.every)")
    ap.add_argument("--out", default="runs/shapes", help="the recording's folder (the scene's training.source)")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    train_set, _ = load()
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=args.steps)
    loss_fn = nn.CrossEntropyLoss()

    rec = llstudio.Recorder(args.out, model, every=args.every)   # records step 0: the weights as they are now
    model.train()
    step = 0
    while step < args.steps:
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            opt.step()
            sched.step()
            rec.step(step, loss=loss, batch=(x, y))             # after the update: the weights after step + 1
            step += 1
            if step % 10 == 0:
                print(f"step {step:4d}  loss {loss.item():.3f}")
            if step == args.steps:
                break
    rec.close()
    print(f"recorded {args.out}")


if __name__ == "__main__":
    main()
