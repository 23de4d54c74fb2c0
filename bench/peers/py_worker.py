"""A peer engine held open by bench/run.py: reads one JSON command a line on
stdin, answers one JSON line on stdout.

  {"cmd": "load", "net": P, "weights": W, "threads": T, "shape": S, "zoo": Z}
                                                            -> {"ok": true, "load_s": s}
  (shape: the input's, else the prototxt's; zoo: rebuild with zoo_graph.py)
  {"cmd": "check", "input": IN.npy, "output": OUT.npy}     -> runs once, writes the output
  {"cmd": "time", "warmup": W, "iters": N}                  -> {"times_ms": [...]}
  {"cmd": "threads", "threads": T}; {"cmd": "quit"}

Usage: py_worker.py opencv|torch
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


class OpenCV:
    def __init__(self):
        import cv2
        self.cv2 = cv2
        self.version = cv2.__version__

    def load(self, net, weights, threads, shape=None, zoo=False):
        self.threads(threads)
        self.net = self.cv2.dnn.readNetFromCaffe(net, weights)
        self.net.setPreferableBackend(self.cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(self.cv2.dnn.DNN_TARGET_CPU)
        if shape is None:
            import caffe_graph
            shape = caffe_graph.input_shape(caffe_graph.layers_of(net))
        self.shape = shape
        self.x = np.random.default_rng(0).uniform(-1, 1, self.shape).astype(np.float32)

    def threads(self, n):
        self.cv2.setNumThreads(n)

    def run(self, x, blob=None):
        self.net.setInput(x)
        return self.net.forward(blob) if blob else self.net.forward()


class Torch:
    def __init__(self):
        import torch
        self.torch = torch
        self.version = torch.__version__

    def load(self, net, weights, threads, shape=None, zoo=False):
        import caffe_graph
        import zoo_graph
        torch = self.torch
        self.threads(threads)
        g = zoo_graph if zoo else caffe_graph
        layers = g.layers_of(net)
        params = g.read_params(net, weights, layers)
        self.shape = shape or caffe_graph.input_shape(layers)
        self.x = torch.from_numpy(
            np.random.default_rng(0).uniform(-1, 1, self.shape).astype(np.float32))
        m = g.torch_module(layers, params)
        with torch.no_grad():
            traced = torch.jit.trace(m, self.x)
            # Frozen and optimised for inference: weights folded in as constants,
            # convolutions on oneDNN (MKL-DNN) where PyTorch chooses it.
            self.mod = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))

    def threads(self, n):
        self.torch.set_num_threads(n)

    def run(self, x, blob=None):
        if blob:
            raise ValueError('the rebuilt net gives its output only, not %s' % blob)
        with self.torch.no_grad():
            if isinstance(x, np.ndarray):
                return self.mod(self.torch.from_numpy(x)).numpy()
            return self.mod(x)


def main():
    eng = {'opencv': OpenCV, 'torch': Torch}[sys.argv[1]]()
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not break the protocol
    out.write(json.dumps({'ok': True, 'version': eng.version}) + '\n')
    out.flush()
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            c = cmd['cmd']
            if c == 'quit':
                break
            if c == 'load':
                t0 = time.perf_counter()
                eng.load(cmd['net'], cmd['weights'], cmd['threads'], cmd.get('shape'),
                         cmd.get('zoo', False))
                reply = {'ok': True, 'load_s': time.perf_counter() - t0}
            elif c == 'threads':
                eng.threads(cmd['threads'])
                reply = {'ok': True}
            elif c == 'check':
                x = np.load(cmd['input']).astype(np.float32)
                y = np.asarray(eng.run(x, cmd.get('blob')), dtype=np.float32)
                np.save(cmd['output'], y)
                reply = {'ok': True, 'shape': list(y.shape)}
            elif c == 'time':
                for _ in range(cmd['warmup']):
                    eng.run(eng.x)
                times = []
                for _ in range(cmd['iters']):
                    t0 = time.perf_counter()
                    eng.run(eng.x)
                    times.append((time.perf_counter() - t0) * 1e3)
                reply = {'ok': True, 'times_ms': times}
            else:
                reply = {'ok': False, 'error': 'unknown command %r' % c}
        except Exception as e:  # report, keep serving: the driver decides
            reply = {'ok': False, 'error': '%s: %s' % (type(e).__name__, e)}
        out.write(json.dumps(reply) + '\n')
        out.flush()


if __name__ == '__main__':
    main()
