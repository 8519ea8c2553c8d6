"""The PyTorch peer of benchmarks.throughput: the same training step (SGD with Nesterov
momentum, cross-entropy, synthetic data, same batch, size and threads) of the torchvision
model, run by a Python that has torch. It imports nothing from this project, so that
benchmarks.throughput can start it with any interpreter:

    PYTHON_WITH_TORCH benchmarks/torch_peer.py MODEL BATCH SIZE THREADS STEPS [MEGVII_DIR]

MODEL is a torchvision model name, or megvii_shufflenet_v1: megvii's own ShuffleNetV1 (1.0x,
3 groups) from MEGVII_DIR, the ShuffleNetV1 folder of a ShuffleNet-Series checkout.
Prints one JSON line: images_per_s, first_step_s (model build + first step), peak_rss_mb.
"""
import json
import resource
import sys
import time


def _peak_rss_mb():
    """This program's peak resident size: VmHWM, not getrusage's ru_maxrss, which Linux
    carries over exec from the process that started it (our benchmark, gigabytes)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv):
    model_name, batch, size, threads, steps = argv[1], int(argv[2]), int(argv[3]), int(
        argv[4]), int(argv[5])
    import torch
    import torchvision
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    start = time.time()
    if model_name == 'megvii_shufflenet_v1':
        sys.path.insert(0, argv[6])
        from network import ShuffleNetV1
        model = ShuffleNetV1(input_size=size, n_class=1000, model_size='1.0x', group=3)
    else:
        model = getattr(torchvision.models, model_name)(num_classes=1000)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                weight_decay=1e-4)
    images = torch.rand(batch, 3, size, size)
    labels = torch.randint(0, 1000, (batch,))

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels, label_smoothing=0.1)
        loss.backward()
        optimizer.step()

    step()
    first = time.time() - start
    start = time.time()
    for _ in range(steps):
        step()
    seconds = (time.time() - start) / steps
    print(json.dumps({'images_per_s': batch / seconds, 'first_step_s': first,
                      'peak_rss_mb': _peak_rss_mb(),
                      'torch': torch.__version__, 'torchvision': torchvision.__version__}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
