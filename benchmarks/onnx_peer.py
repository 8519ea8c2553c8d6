"""The reference's own ONNX export, for benchmarks.inference: run by a Python that has torch,
torchvision, onnx and onnxruntime; it imports nothing from this project.

    PYTHON_WITH_TORCH benchmarks/onnx_peer.py export MODEL SIZE BATCHES DIRECTORY [MEGVII_DIR]
        A randomly initialized reference network (a torchvision model name, or
        megvii_shufflenet_v1 from MEGVII_DIR, the ShuffleNetV1 folder of ShuffleNet-Series) ->
        DIRECTORY/reference.pth (its state_dict, for import_weights) and
        DIRECTORY/reference_B.onnx for each B of BATCHES (torch.onnx.export, opset 13, NCHW,
        traced at batch B with the batch marked free: megvii's channel shuffle reads the batch
        size while traced, so its export only runs at that batch).
    PYTHON_WITH_TORCH benchmarks/onnx_peer.py time OURS.onnx DIRECTORY SIZE BATCHES SECONDS
        THREADS
        Ours and DIRECTORY/reference_B.onnx in this onnxruntime, batch by batch, alternating:
        prints one JSON line with images/s of each and the largest logit difference (ours
        takes NHWC, the reference NCHW).
"""
import json
import os
import sys
import time

OPSET = 13


def _reference(model_name, megvii_dir):
    import torch
    import torchvision
    torch.manual_seed(0)
    if model_name == 'megvii_shufflenet_v1':
        sys.path.insert(0, megvii_dir)
        from network import ShuffleNetV1
        model = ShuffleNetV1(model_size='1.0x', group=3)
    else:
        model = getattr(torchvision.models, model_name)(num_classes=1000)
    # batch-norm statistics away from 0 and 1, so that converting them is checked too
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _reference_onnx(directory, batch):
    return os.path.join(directory, 'reference_%d.onnx' % batch)


def export(model_name, size, batches, directory, megvii_dir=None):
    import torch
    model = _reference(model_name, megvii_dir)
    torch.save(model.state_dict(), os.path.join(directory, 'reference.pth'))
    for batch in batches:
        torch.onnx.export(model, torch.zeros(batch, 3, size, size),
                          _reference_onnx(directory, batch), opset_version=OPSET,
                          input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}},
                          dynamo=False)


def _rate(session, feed, seconds):
    """images/s of session.run on feed (after two warm-up runs)."""
    for _ in range(2):
        session.run(None, feed)
    runs, start = 0, time.time()
    while time.time() - start < seconds or runs < 3:
        session.run(None, feed)
        runs += 1
    return runs * len(next(iter(feed.values()))) / (time.time() - start)


def time_both(ours, directory, size, batches, seconds, threads):
    import numpy as np
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    rng = np.random.RandomState(0)
    result = {'onnxruntime': onnxruntime.__version__, 'batches': {}}
    for batch in batches:
        sessions = [onnxruntime.InferenceSession(path, options,
                                                 providers=['CPUExecutionProvider'])
                    for path in (ours, _reference_onnx(directory, batch))]
        ours_input, reference_input = (s.get_inputs()[0].name for s in sessions)
        ours_output = [o.name for o in sessions[0].get_outputs() if o.name.startswith('logits')]
        images = rng.uniform(-2, 2, [batch, size, size, 3]).astype(np.float32)
        feeds = ({ours_input: images},
                 {reference_input: np.ascontiguousarray(images.transpose(0, 3, 1, 2))})
        logits = (sessions[0].run(ours_output, feeds[0])[0], sessions[1].run(None, feeds[1])[0])
        difference = float(np.abs(logits[0] - logits[1]).max() / np.abs(logits[1]).max())
        rates = [[], []]
        for _ in range(2):  # alternating, so that a noisy moment hits both
            for i in (0, 1):
                rates[i].append(_rate(sessions[i], feeds[i], seconds / 2))
        result['batches'][batch] = {'ours': max(rates[0]), 'reference': max(rates[1]),
                                    'logit_difference': difference}
    print(json.dumps(result))


def main(argv):
    if argv[1] == 'export':
        export(argv[2], int(argv[3]), [int(b) for b in argv[4].split(',')], argv[5], *argv[6:7])
    elif argv[1] == 'time':
        time_both(argv[2], argv[3], int(argv[4]), [int(b) for b in argv[5].split(',')],
                  float(argv[6]), int(argv[7]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
