"""PyTorch's side of scripts/bench-train.sh: images/s of whole training
iterations (forward, backward, SGD step with momentum and weight decay) of
Caffe's LeNet (models/fmnist_lenet) on random 28x28 batches.
Usage: /usr/bin/python3 scripts/bench-train-torch.py BATCH THREADS ITERS"""
import statistics
import sys
import time

import torch
import torch.nn as nn

batch, threads, iters = (int(a) for a in sys.argv[1:4])
torch.set_num_threads(threads)
torch.manual_seed(1)
net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2, 2), nn.Conv2d(20, 50, 5),
                    nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(),
                    nn.Linear(500, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=0.0005)
loss_fn = nn.CrossEntropyLoss()
x = torch.rand(batch, 1, 28, 28)
y = torch.randint(0, 10, (batch,))
times = []
for i in range(iters + 3):
    t0 = time.perf_counter()
    opt.zero_grad()
    loss = loss_fn(net(x), y)
    loss.backward()
    opt.step()
    if i >= 3:
        times.append(time.perf_counter() - t0)
med = statistics.median(times)
print("pytorch %s: median %.2f ms, %.1f images/s" % (torch.__version__, med * 1e3, batch / med))
