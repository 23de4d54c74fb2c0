#!/usr/bin/python3
"""netsurg's benchmark driver (make bench, make bench-peers).

Times netsurg and its peers (OpenCV dnn, PyTorch TorchScript, ONNX Runtime
through npm onnxruntime-node) on the configs of the performance issue, with
the same random weights, interleaved: in each round every engine runs its
warm-up and N timed forwards for one config, the order rotating from round to
round, so that a noisy, shared machine slows all engines alike. Every peer's
output is first checked against netsurg's (a benchmark of a different graph is
worthless); a peer that disagrees is not timed.

Writes a Markdown report (--out) and every figure as JSON (--json).
Run it with the system Python (/usr/bin/python3): it needs numpy; the peers
need python3-opencv, python3-torch, python3-onnx and bench/peers/node_modules.
"""
import argparse
import ctypes
import ctypes.util
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEERS = os.path.join(HERE, 'peers')
sys.path.insert(0, PEERS)
import caffe_graph  # noqa: E402  (numpy only; cv2, torch, onnx imported on use)

ENGINES = ['netsurg', 'ort', 'opencv', 'torch']
LABEL = {'netsurg': 'netsurg', 'ort': 'ONNX Runtime', 'opencv': 'OpenCV dnn',
         'torch': 'PyTorch (TorchScript)'}
CONFIGS = {
    # key: (title, prototxt, weights, input shape, share of BENCH_ITERS, options)
    'b1': ('CaffeNet 227x227, batch 1', 'caffenet.prototxt', 'caffenet.caffemodel',
           [1, 3, 227, 227], 1.0, {}),
    'b8': ('CaffeNet 227x227, batch 8', 'caffenet-b8.prototxt', 'caffenet.caffemodel',
           [8, 3, 227, 227], 0.35, {'threads': [2]}),
    'b10': ('CaffeNet 227x227, batch 10', 'caffenet-b10.prototxt', 'caffenet.caffemodel',
            [10, 3, 227, 227], 0.35, {}),
    'fcn': ('Full-conv CaffeNet 451x451, batch 1', 'fcn451.prototxt', 'fcn451.caffemodel',
            [1, 3, 451, 451], 0.6, {}),
}
CAFFENET_CONFIGS = 'b1,b8,fcn'
# The zoo of the second performance issue: key: (title, prototxt under
# ../shared/data/prototxt, input side, share of BENCH_ITERS at batch 1, a
# batch-8 config too, the blob the peers' outputs are checked on).  A model
# whose prototxt is absent is skipped.
ZOO = {
    'googlenet': ('GoogLeNet 224', 'current/bvlc_googlenet__deploy.prototxt', 224, 0.5, True,
                  None),
    'resnet50': ('ResNet-50 224', 'zoo/resnet50__deploy.prototxt', 224, 0.3, True, None),
    'squeezenet': ('SqueezeNet 1.1 227', 'zoo/squeezenet_v1.1__deploy.prototxt', 227, 1.0, True,
                   None),
    'vgg16': ('VGG-16 224', 'wild/vgg__VGG_ILSVRC_16_layers_deploy.prototxt', 224, 0.2, True,
              None),
    'mobilenet': ('MobileNet v1 224', 'wild/mobilenet__mobilenet_v1_deploy.prototxt', 224, 0.6,
                  True, None),
    # DetectionOutput has no exact ONNX form (NMS) and its boxes depend on
    # ties: every engine runs the net without it (DROP_LAYERS), the heads
    # are compared
    'ssd_face': ('SSD 300x300 face detector (to the heads)',
                 'wild/face__res10_300x300_ssd_deploy.prototxt', 300, 0.6, False,
                 'mbox_conf_flatten'),
}
# Layer types taken out of a zoo prototxt before any engine runs it.
DROP_LAYERS = {'ssd_face': ('DetectionOutput',)}


def drop_layers(text, types):
    """The prototxt text without its `layer { ... }` blocks of these types."""
    out, pos = [], 0
    for m in re.finditer(r'(?m)^\s*layer\s*\{', text):
        if m.start() < pos:
            continue
        depth, end = 0, m.end() - 1
        for end in range(m.end() - 1, len(text)):
            depth += {'{': 1, '}': -1}.get(text[end], 0)
            if depth == 0:
                break
        block = text[m.start():end + 1]
        kind = re.search(r'\btype:\s*"([^"]*)"', block)
        if kind and kind.group(1) in types:
            out.append(text[pos:m.start()])
            pos = end + 1
    out.append(text[pos:])
    return ''.join(out)

MODELS = ['caffenet'] + list(ZOO)
SHARED_PROTOTXT = os.path.join(os.path.dirname(ROOT), 'shared', 'data', 'prototxt')
# Targets of the performance issues: netsurg time / ONNX Runtime time at most.
TARGETS = {('fcn', 2): 0.85, ('b1', 2): 0.8, ('b8', 2): 0.7, ('b10', 2): 0.8,
           ('b1', 1): 0.8, ('b10', 1): 1.0, ('fcn', 1): 1.0}
ZOO_TARGETS = {  # batch 1, batch 8 (2 threads); 1 thread batch 1
    'googlenet': (0.8, 0.8, 0.9), 'resnet50': (0.8, 0.8, 0.9), 'squeezenet': (0.8, 0.8, 0.9),
    'vgg16': (0.85, 0.85, 0.95), 'mobilenet': (0.8, 0.8, 0.9), 'ssd_face': (0.8, None, 0.9)}
SEED = 1
# The machine's peaks, from `make bench-probe` on a quiet machine (bench/TRIED.md:
# 230 GFLOP/s of independent AVX2 FMAs on 2 threads, 32-34 GB/s read with 2).
# A probe run under load reads lower; the floors take the higher of the two.
QUIET_PROBE = {'fma_1': 115.0, 'fma_2': 230.0, 'gbs': 33.0}


def add_zoo_configs():
    """CONFIGS and TARGETS entries of every zoo model: KEY-b1 (2 threads and
    1) and KEY-b8 (the first thread count)."""
    for m, (title, rel, side, share, b8, check) in ZOO.items():
        opts = {'model': m, 'source': os.path.join(SHARED_PROTOTXT, rel), 'check_blob': check}
        CONFIGS[m + '-b1'] = ('%s, batch 1' % title, m + '.prototxt', m + '.caffemodel',
                              [1, 3, side, side], share, opts)
        goal = ZOO_TARGETS[m]
        TARGETS[(m + '-b1', 2)], TARGETS[(m + '-b1', 1)] = goal[0], goal[2]
        if b8:
            CONFIGS[m + '-b8'] = ('%s, batch 8' % title, m + '.prototxt', m + '.caffemodel',
                                  [8, 3, side, side], share * 0.25, dict(opts, threads=[2]))
            TARGETS[(m + '-b8', 2)] = goal[1]


add_zoo_configs()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, **kw).stdout


# --------------------------------------------------------------------- setup

def newer(target, *sources):
    return os.path.exists(target) and all(
        os.path.getmtime(target) >= os.path.getmtime(s) for s in sources)


def prepare(ns, work, want_onnx):
    """Nets and weights in WORK: CaffeNet at batch 1 and 10 with Xavier weights
    (seed SEED) and small random biases, its full-conv cast at 451x451, and
    the ONNX graphs of the three. Kept between runs while netsurg is older."""
    os.makedirs(work, exist_ok=True)
    mk = os.path.join(ROOT, 'scripts', 'make-caffenet.sh')
    p = lambda f: os.path.join(work, f)  # noqa: E731
    for batch, name in ((1, 'caffenet.prototxt'), (8, 'caffenet-b8.prototxt'),
                        (10, 'caffenet-b10.prototxt')):
        text = run([mk, str(batch), '227'])
        if not os.path.exists(p(name)) or open(p(name)).read() != text:
            with open(p(name), 'w') as f:
                f.write(text)
    if not newer(p('caffenet.caffemodel'), p('caffenet.prototxt'), ns):
        log('bench: writing random weights (netsurg init, seed %d)' % SEED)
        raw = p('caffenet-init.caffemodel')
        run([ns, 'init', p('caffenet.prototxt'), '--seed', str(SEED), '--filler', 'xavier',
             '--out', raw], stderr=subprocess.DEVNULL)
        # Caffe's default bias filler is zero: draw biases too, so that a peer
        # that dropped or misplaced a bias would show in the check.
        rng = np.random.default_rng(SEED)
        cmd = [ns, 'edit', p('caffenet.prototxt'), raw]
        for d in caffe_graph.layers_of(p('caffenet.prototxt')):
            if d['type'] in ('Convolution', 'InnerProduct'):
                f = p('bias-%s.npy' % d['name'])
                np.save(f, rng.uniform(-0.1, 0.1, d['num_output']).astype(np.float32))
                cmd += ['--load', '%s[1]=%s' % (d['name'], f)]
        run(cmd + ['--out', p('caffenet.caffemodel')], stderr=subprocess.DEVNULL)
        for f in os.listdir(work):
            if f.startswith('bias-'):
                os.remove(p(f))
        os.remove(raw)
    if not newer(p('fcn451.caffemodel'), p('caffenet.caffemodel')):
        log('bench: casting the full-conv net (netsurg fcn --size 451x451)')
        run([ns, 'fcn', p('caffenet.prototxt'), p('caffenet.caffemodel'), '--size', '451x451',
             '--out', p('fcn451')])
    if want_onnx:
        for key, (_, proto, weights, _, _, opts) in CONFIGS.items():
            if opts.get('model'):
                continue
            out = p(key + '.onnx')
            if not newer(out, p(proto), p(weights)):
                log('bench: exporting %s to ONNX' % key)
                run(['/usr/bin/python3', os.path.join(PEERS, 'caffe_graph.py'), 'onnx', p(proto),
                     p(weights), out])


def prepare_zoo(ns, work, model, want_onnx):
    """The zoo model in WORK: its prototxt in the current format (`netsurg
    upgrade`), weights from MSRA fillers (seed SEED) with random biases and
    random BatchNorm statistics and Scale factors (the prototxt's zero
    defaults would hide a peer that dropped them), and its ONNX export
    (`netsurg export`, batch dynamic).  Returns why ONNX is missing, or None."""
    src = ZOO[model][1]
    p = lambda f: os.path.join(work, f)  # noqa: E731
    proto, weights, onnx = p(model + '.prototxt'), p(model + '.caffemodel'), p(model + '.onnx')
    src = os.path.join(SHARED_PROTOTXT, src)
    if not newer(proto, src, ns):
        run([ns, 'upgrade', src, proto + '.tmp', '--allow-unknown'], stderr=subprocess.DEVNULL)
        # Batch 1 in the file (GoogLeNet's and SqueezeNet's say 10): the
        # memory figures are of a net built at batch 1; batch 8 reshapes.
        with open(proto + '.tmp') as f:
            text = f.read()
        text = re.sub(r'(input_param\s*\{\s*shape\s*\{\s*dim:\s*)\d+', r'\g<1>1', text, count=1)
        text = drop_layers(text, DROP_LAYERS.get(model, ()))
        with open(proto, 'w') as f:
            f.write(text)
        os.remove(proto + '.tmp')
    if not newer(weights, proto, ns):
        log('bench: writing random weights for %s (netsurg init, seed %d)' % (model, SEED))
        raw = p(model + '-init.caffemodel')
        run([ns, 'init', proto, '--seed', str(SEED), '--filler', 'msra', '--out', raw,
             '--allow-unknown'], stderr=subprocess.DEVNULL)
        info = json.loads(run([ns, 'info', proto, '--json', '--allow-unknown'],
                              stderr=subprocess.DEVNULL))
        rng = np.random.default_rng(SEED)
        cmd = [ns, 'edit', proto, raw, '--allow-unknown']
        files = []
        for d in info['layers']:
            draws = {'Convolution': {1: (-0.1, 0.1)}, 'InnerProduct': {1: (-0.1, 0.1)},
                     'BatchNorm': {0: (-0.2, 0.2), 1: (0.5, 1.5), 2: (1.0, 1.0)},
                     'Scale': {0: (0.5, 1.5), 1: (-0.1, 0.1)}}.get(d['type'], {})
            for j, (lo, hi) in draws.items():
                if j >= len(d['params']):
                    continue
                f = p('rand-%d.npy' % len(files))
                np.save(f, rng.uniform(lo, hi, d['params'][j]).astype(np.float32))
                files.append(f)
                cmd += ['--load', '%s[%d]=%s' % (d['name'], j, f)]
        run(cmd + ['--out', weights], stderr=subprocess.DEVNULL)
        for f in files + [raw]:
            os.remove(f)
    why = None
    if want_onnx and not newer(onnx, weights):
        log('bench: exporting %s to ONNX (netsurg export)' % model)
        r = subprocess.run([ns, 'export', proto, weights, '--onnx', onnx, '--allow-unknown'],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            why = 'no ONNX export: ' + r.stderr.strip().splitlines()[-1][:120]
            if os.path.exists(onnx):
                os.remove(onnx)
    return why


# ------------------------------------------------------------------- engines

class Worker:
    """A peer engine in its own process, spoken to one JSON line at a time."""

    def __init__(self, name):
        self.name = name
        if name == 'ort':
            cmd, cwd = ['node', 'ort_worker.js'], PEERS
        else:
            cmd, cwd = ['/usr/bin/python3', os.path.join(PEERS, 'py_worker.py'), name], None
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        hello = self._read()
        self.version = hello.get('version', '?')

    def _read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError('%s worker exited (code %s)' % (self.name, self.proc.wait()))
        return json.loads(line)

    def send(self, **cmd):
        self.proc.stdin.write(json.dumps(cmd) + '\n')
        self.proc.stdin.flush()

    def reply(self):
        r = self._read()
        if not r.get('ok'):
            raise RuntimeError('%s: %s' % (self.name, r.get('error')))
        return r

    def ask(self, **cmd):
        self.send(**cmd)
        return self.reply()

    def close(self):
        try:
            self.proc.stdin.write('{"cmd": "quit"}\n')
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except Exception:
            self.proc.kill()


def netsurg_bench(ns, proto, weights, threads, warmup, iters, shape=None, per_layer=False):
    cmd = [ns, 'bench', proto, weights, '--threads', str(threads), '--warmup', str(warmup),
           '--iters', str(iters), '--json']
    if shape:
        cmd += ['--shape', ','.join(map(str, shape))]
    if per_layer:
        cmd.append('--per-layer')
    # The engine timed before may still have threads spinning (ONNX Runtime's
    # pool, libgomp's default wait); netsurg's CLI picks its wait policy from
    # the tasks runnable when it starts (README), so let them go to sleep.
    time.sleep(0.2)
    return json.loads(run(cmd))


# ------------------------------------------------------------------- checks

def check_peers(ns, work, key, workers):
    """Runs every peer and netsurg on one input; returns {engine: diffs}."""
    _, proto, weights, shape, _, opts = CONFIGS[key]
    p = lambda f: os.path.join(work, f)  # noqa: E731
    # Pixel-scale values (mean-subtracted images): big enough that LRN matters.
    # The zoo's MSRA weights keep the scale through the layers: unit inputs.
    amp = 1.0 if opts.get('model') else 128.0
    x = np.random.default_rng(SEED + 1).uniform(-amp, amp, shape).astype(np.float32)
    np.save(p('check-in.npy'), x)
    x.tofile(p('check-in.f32'))
    blob = opts.get('check_blob') or 'prob'
    run([ns, 'forward', p(proto), p(weights), '--input', 'data=' + p('check-in.npy'),
         '--output', blob + '=' + p('check-netsurg.npy')], stderr=subprocess.DEVNULL)
    ref = np.load(p('check-netsurg.npy'))
    out = {}
    for name, w in workers.items():
        try:
            if name == 'ort':
                r = w.ask(cmd='check', input=p('check-in.f32'), output=p('check-ort.f32'),
                          shape=shape, blob=opts.get('check_blob'))
                y = np.fromfile(p('check-ort.f32'), np.float32).reshape(r['shape'])
            else:
                w.ask(cmd='check', input=p('check-in.npy'), output=p('check-%s.npy' % name),
                      blob=opts.get('check_blob'))
                y = np.load(p('check-%s.npy' % name))
        except RuntimeError as e:
            out[name] = {'ok': False, 'error': str(e)}
            continue
        if y.shape != ref.shape:
            out[name] = {'ok': False, 'error': 'output shape %s, netsurg %s' % (y.shape,
                                                                                 ref.shape)}
            continue
        abs_diff = float(np.abs(y - ref).max())
        # log p differs by the logits' difference: checks the small classes too.
        m = (ref > 1e-30) & (y > 1e-30)
        log_diff = float(np.abs(np.log(y[m]) - np.log(ref[m])).max()) if m.any() else 0.0
        ok = abs_diff <= 1e-4 * max(float(ref.max()), 1e-6) and log_diff <= 1e-2
        out[name] = {'ok': ok, 'max_abs_diff': abs_diff, 'max_log_diff': log_diff,
                     'ref_max': float(ref.max()), 'blob': blob}
    return out


# ------------------------------------------------------------------ extras

def timed(cmd, repeat):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return best


def peak_rss(cmd):
    """Peak resident bytes of cmd as a process of its own: /usr/bin/time -v,
    or where it is missing a fresh Python whose only child is the run
    (getrusage)."""
    if os.access('/usr/bin/time', os.X_OK):
        txt = subprocess.run(['/usr/bin/time', '-v'] + cmd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, check=True).stderr
        kb = int(re.search(r'Maximum resident set size \(kbytes\): (\d+)', txt).group(1))
        return kb * 1024, '/usr/bin/time -v'
    kb = int(run([sys.executable, '-c',
                  'import resource, subprocess, sys\n'
                  'subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n'
                  'print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)'] + cmd))
    return kb * 1024, 'getrusage'


def export_figures(ns, work):
    """`netsurg export` of the 233 MB CaffeNet to ONNX, warm page cache: the
    whole process's time (best of 5, load included) and peak memory, against
    the issue's targets (under 1 s; at most the weights + 50 MB)."""
    p = lambda f: os.path.join(work, f)  # noqa: E731
    cmd = [ns, 'export', p('caffenet.prototxt'), p('caffenet.caffemodel'), '--onnx',
           p('caffenet-export.onnx')]
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
    seconds = timed(cmd, 5)
    rss, how = peak_rss(cmd)
    fig = {'seconds': seconds, 'peak_rss_bytes': rss, 'method': how,
           'weights_bytes': os.path.getsize(p('caffenet.caffemodel')),
           'onnx_bytes': os.path.getsize(p('caffenet-export.onnx'))}
    log('bench: export to ONNX %.3f s, peak RSS %.1f MiB' % (seconds, rss / 2 ** 20))
    return fig


def export_line(fig):
    over = fig['peak_rss_bytes'] - fig['weights_bytes']
    return ('- export to ONNX (`netsurg export NET WEIGHTS --onnx OUT`, warm page cache, whole '
            'process, best of 5): %.3f s (target: under 1 s), peak resident memory (%s) %.0f MiB '
            'for %.0f MiB of weights: weights + %.0f MiB (target: + 50 MB at most), %s; the '
            'model %.0f MiB.' % (fig['seconds'], fig['method'], fig['peak_rss_bytes'] / 2 ** 20,
                                 fig['weights_bytes'] / 2 ** 20, over / 2 ** 20,
                                 'met' if fig['seconds'] < 1 and over <= 50e6 else 'MISSED',
                                 fig['onnx_bytes'] / 2 ** 20))


def extras(ns, work, results, configs, threads, crop_iters):
    p = lambda f: os.path.join(work, f)  # noqa: E731
    ex = {}
    # Load time of the 233 MB caffemodel, warm page cache: netsurg info reads
    # and checks the weights; the same without weights is the parse alone.
    subprocess.run([ns, 'info', p('caffenet.prototxt'), p('caffenet.caffemodel')],
                   stdout=subprocess.DEVNULL, check=True)
    with_w = timed([ns, 'info', p('caffenet.prototxt'), p('caffenet.caffemodel')], 5)
    without = timed([ns, 'info', p('caffenet.prototxt')], 5)
    start = timed([ns, '--help'], 5)
    ex['load'] = {'weights_bytes': os.path.getsize(p('caffenet.caffemodel')),
                  'info_with_weights_s': with_w, 'info_without_weights_s': without,
                  'process_start_s': start}
    log('bench: load %.3f s (fillers instead of weights %.3f s)' % (with_w, without))
    # Peak resident memory of the 451x451 run.
    cmd = [ns, 'bench', p('fcn451.prototxt'), p('fcn451.caffemodel'), '--threads',
           str(threads), '--warmup', '1', '--iters', '3']
    rss, how = peak_rss(cmd)
    ex['peak_rss'] = {'bytes': rss, 'method': how,
                      'weights_bytes': os.path.getsize(p('fcn451.caffemodel'))}
    log('bench: peak RSS of the 451 run %.1f MiB' % (rss / 2 ** 20))
    ex['export'] = export_figures(ns, work)
    # The seed's comparison: 64 separate 227x227 crops vs one dense 451x451 pass.
    b64 = None
    if crop_iters > 0:
        b64 = netsurg_bench(ns, p('caffenet.prototxt'), p('caffenet.caffemodel'), threads, 1,
                            crop_iters, shape=[64, 3, 227, 227])
        log('bench: 64 crops as one batch %.1f ms' % b64['median_ms'])
    b1 = results.get(('b1', threads, 'netsurg'))
    fcn = results.get(('fcn', threads, 'netsurg'))
    ex['crops'] = {'threads': threads, 'batch64_ms': b64['median_ms'] if b64 else None,
                   'batch64_iters': crop_iters,
                   'batch1_ms': b1['median'] if b1 else None,
                   'fcn_ms': fcn['median'] if fcn else None}
    # Per-layer profiles (2 threads or the first thread count), for the report.
    ex['per_layer'] = {}
    for key in configs:
        _, proto, weights, shape, _, _ = CONFIGS[key]
        r = netsurg_bench(ns, p(proto), p(weights), threads, 1, 3, shape=shape, per_layer=True)
        ex['per_layer'][key] = {'threads': threads, 'median_ms': r['median_ms'],
                                'gflop': r['gflop'], 'layers': r['layers']}
    return ex


def probe(build):
    """FMA peak (GFLOP/s, 1 and 2 threads) and read bandwidth (GB/s) from
    `make bench-probe`'s program, when built."""
    exe = os.path.join(build, 'bench', 'probe')
    if not os.access(exe, os.X_OK):
        return None
    txt = run([exe])
    out = {'text': txt.strip()}
    m = re.search(r'memory read, 2 threads: ([\d.]+) GB/s', txt)
    if m:
        out['gbs'] = float(m.group(1))
    for m in re.finditer(r'FMA peak, (\d) threads?: (\d+) GFLOP/s', txt):
        out['fma_%s' % m.group(1)] = float(m.group(2))
    return out


def zoo_extras(ns, work, configs, threads):
    """Per zoo model at batch 1: peak resident memory of a `netsurg bench`
    run against weights + the two largest activations + 50 MB, the time per
    layer type (`--per-layer`), and the weight bytes and FLOP for the
    floors."""
    p = lambda f: os.path.join(work, f)  # noqa: E731
    out = {}
    for key in configs:
        opts = CONFIGS[key][5]
        if not key.endswith('-b1') and key != 'b1':
            continue
        _, proto, weights, shape, _, _ = CONFIGS[key]
        info = json.loads(run([ns, 'info', p(proto), '--json', '--allow-unknown'],
                              stderr=subprocess.DEVNULL))
        wbytes = 4 * sum(int(np.prod(s)) for d in info['layers'] for s in d['params'])
        acts = sorted((int(np.prod(b['shape'][1:])) * 4 for b in info.get('blobs', [])
                       if b.get('shape')), reverse=True)
        cmd = [ns, 'bench', p(proto), p(weights), '--threads', str(threads), '--warmup', '1',
               '--iters', '2', '--shape', ','.join(map(str, shape))]
        rss, _ = peak_rss(cmd)
        r = netsurg_bench(ns, p(proto), p(weights), threads, 1, 3, shape=shape, per_layer=True)
        by_type = {}
        for d in r['layers']:
            by_type[d['type']] = by_type.get(d['type'], 0) + d['ms']
        out[key] = {'model': opts.get('model', 'caffenet'), 'rss_bytes': rss,
                    'weights_bytes': wbytes, 'largest_two_bytes': sum(acts[:2]),
                    'gflop': r['gflop'], 'median_ms': r['median_ms'], 'by_type': by_type,
                    'threads': threads}
        log('bench: %s peak RSS %.0f MiB (weights %.0f MiB)' % (key, rss / 2 ** 20,
                                                              wbytes / 2 ** 20))
    return out


# --------------------------------------------------------------- machine

def machine_info(ns, workers):
    info = {'date': datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}
    try:
        lscpu = run(['lscpu'])
        model = re.search(r'Model name:\s*(.+)', lscpu)
        info['cpu'] = model.group(1).strip() if model else platform.processor()
        fam = re.search(r'CPU family:\s*(\S+)', lscpu)
        num = re.search(r'^Model:\s*(\S+)', lscpu, re.M)
        l3 = re.search(r'L3 cache:\s*(.+)', lscpu)
        if fam and num:
            info['cpu'] += ' (family %s model %s%s)' % (fam.group(1), num.group(1),
                                                       ', L3 ' + l3.group(1).strip() if l3 else '')
        flags = re.search(r'Flags:\s*(.+)', lscpu)
        fl = flags.group(1).split() if flags else []
        info['isa'] = ' '.join(f for f in ('avx2', 'fma', 'avx512f') if f in fl)
    except (OSError, subprocess.CalledProcessError):
        info['cpu'] = platform.processor()
    info['cores'] = os.cpu_count()
    try:
        with open('/proc/meminfo') as f:
            info['mem_gb'] = round(int(f.readline().split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    info['kernel'] = platform.release()
    try:
        rev = run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'],
                  stderr=subprocess.DEVNULL).strip()
        dirty = run(['git', '-C', ROOT, 'status', '--porcelain', '--untracked-files=no'],
                    stderr=subprocess.DEVNULL).strip()
        info['netsurg'] = rev + ('-dirty' if dirty else '')
    except (OSError, subprocess.CalledProcessError):
        info['netsurg'] = 'unknown'
    info['openblas'] = openblas_version()
    # Threading settings inherited from the caller change every engine's times.
    info['env'] = {k: os.environ[k] for k in sorted(os.environ)
                   if k.startswith(('OMP_', 'GOMP_', 'OPENBLAS_', 'MKL_', 'KMP_'))}
    info['gcc'] = run(['gcc', '-dumpfullversion']).strip()
    for name, w in workers.items():
        info[name] = w.version
    info['node'] = run(['node', '--version']).strip() if 'ort' in workers else None
    return info


def openblas_version():
    for lib in ('/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0',
                ctypes.util.find_library('openblas')):
        if not lib:
            continue
        try:
            so = ctypes.CDLL(lib)
            so.openblas_get_config.restype = ctypes.c_char_p
            return so.openblas_get_config().decode().strip()
        except (OSError, AttributeError):
            continue
    return 'unknown'


def loadavg():
    try:
        return round(os.getloadavg()[0], 1)
    except OSError:
        return None


# --------------------------------------------------------------- report

def fmt(ms):
    return '%.0f' % ms if ms >= 100 else '%.1f' % ms


def summarise(rounds):
    """rounds: per-round dicts with median/min/max. The headline is the median
    of the round medians; best is the lowest round median."""
    meds = [r['median'] for r in rounds]
    return {'median': statistics.median(meds), 'best': min(meds),
            'min': min(r['min'] for r in rounds), 'max': max(r['max'] for r in rounds),
            'round_medians': meds, 'iters': sum(r['iters'] for r in rounds)}


def report(meta, results, checks, ex, args):
    engines = [e for e in ENGINES if e in args.engines]
    peers = [e for e in engines if e != 'netsurg']
    L = []
    L.append('# netsurg benchmark results')
    L.append('')
    L.append('Generated by `%s` on %s. Regenerate with `make bench-peers` (all engines) '
             'or `make bench` (netsurg alone); see bench/README.md.' %
             ('bench/run.py', meta['date']))
    L.append('')
    L.append('- machine: %s, %s cores (%s), %s GB; Linux %s; load average %s at the start, '
             '%s at the end (a shared machine: compare ratios, not absolute times)' % (
                 meta.get('cpu'), meta.get('cores'), meta.get('isa'), meta.get('mem_gb'),
                 meta.get('kernel'), meta.get('load_start'), meta.get('load_end')))
    v = ['netsurg %s (gcc %s, %s)' % (meta['netsurg'], meta['gcc'], meta['openblas'])]
    if 'ort' in meta:
        v.append('onnxruntime-node %s (node %s)' % (meta['ort'], meta['node']))
    if 'opencv' in meta:
        v.append('OpenCV %s' % meta['opencv'])
    if 'torch' in meta:
        v.append('PyTorch %s' % meta['torch'])
    L.append('- versions: ' + '; '.join(v))
    L.append('- threading environment: %s; total run %.0f s' % (
        ', '.join('%s=%s' % kv for kv in meta.get('env', {}).items()) or 'none set '
        '(OMP_*, GOMP_*, OPENBLAS_*, MKL_*, KMP_*)', meta.get('wall_s', 0)))
    L.append('- method: %d round(s); in each round every engine runs %d warm-up and %s timed '
             'forwards of a config (order rotating between rounds), same random weights '
             '(CaffeNet: Xavier, the zoo: MSRA, seed %d; random biases, BatchNorm statistics '
             'and Scale factors), random input. A cell is the median of '
             'the round medians in ms, (min-max) over all timed forwards; "best" is the '
             'lowest round median.' % (args.rounds, args.warmup, iters_text(args), SEED))
    L.append('')
    head = ['config', 'threads'] + [LABEL[e] for e in engines]
    ratio_cols = [e for e in peers] if 'netsurg' in engines else []
    head += ['netsurg / %s' % LABEL[e] for e in ratio_cols]
    L.append('| ' + ' | '.join(head) + ' |')
    L.append('|' + '---|' * len(head))
    for key in args.configs:
        for t in args.threads:
            if t not in CONFIGS[key][5].get('threads', args.threads):
                continue
            row = [CONFIGS[key][0], str(t)]
            for e in engines:
                r = results.get((key, t, e))
                if r is None:
                    c = checks.get(key, {}).get(e)
                    row.append('n/a' if not c or c['ok'] else
                               'not run' if 'error' in c else 'wrong output')
                else:
                    row.append('%s (%s-%s)' % (fmt(r['median']), fmt(r['min']), fmt(r['max'])))
            ns_r = results.get((key, t, 'netsurg'))
            for e in ratio_cols:
                r = results.get((key, t, e))
                row.append('%.2f (best %.2f)' % (ns_r['median'] / r['median'],
                                                 ns_r['best'] / r['best'])
                           if ns_r and r else 'n/a')
            L.append('| ' + ' | '.join(row) + ' |')
    L.append('')
    if any((k, t, 'ort') in results for k in args.configs if '-' not in k for t in args.threads):
        L.append('## Targets of the performance issue (netsurg / ONNX Runtime, same run)')
        L.append('')
        L.append('| config | threads | target | measured | |')
        L.append('|---|---|---|---|---|')
        for (key, t), goal in TARGETS.items():
            a, b = results.get((key, t, 'netsurg')), results.get((key, t, 'ort'))
            if key not in args.configs or '-' in key or t not in args.threads or not a or not b:
                continue
            ratio = a['median'] / b['median']
            L.append('| %s | %d | at most %.2fx | %.2fx | %s |' % (
                CONFIGS[key][0], t, goal, ratio, 'met' if ratio <= goal else
                'missed by %.0f%%' % (100 * (ratio / goal - 1))))
        L.append('')
    if checks:
        L.append('## Output check (before timing)')
        L.append('')
        L.append('Each peer ran the same input (uniform in [-128, 128]; the zoo: [-1, 1]) as '
                 '`netsurg forward`; compared: the softmax output `prob` (the SSD: its heads\' '
                 '`mbox_conf_flatten`, before DetectionOutput), max absolute difference and max '
                 'difference of log(prob) (the logits\' difference). A peer passes at most '
                 '1e-4 x max(prob) and 1e-2; one that fails is not timed.')
        L.append('')
        L.append('| config | ' + ' | '.join(LABEL[e] for e in peers) + ' |')
        L.append('|---|' + '---|' * len(peers))
        for key in args.configs:
            row = [CONFIGS[key][0]]
            for e in peers:
                c = checks.get(key, {}).get(e)
                if not c:
                    row.append('n/a')
                elif 'error' in c:
                    row.append('failed: ' + c['error'][:80])
                else:
                    row.append('%s: %.1e abs, %.1e log' % ('ok' if c['ok'] else 'WRONG',
                                                           c['max_abs_diff'],
                                                           c['max_log_diff']))
            L.append('| ' + ' | '.join(row) + ' |')
        L.append('')
    if ex.get('zoo'):
        zoo_report(L, ex, results, args)
    if ex.get('load'):
        L.append('## netsurg alone')
        L.append('')
        ld = ex['load']
        L.append('- load, warm page cache (`netsurg info NET WEIGHTS`, best of 5, whole '
                 'process): %.3f s for the %.0f MiB caffemodel (target: under 0.5 s); for '
                 'comparison `netsurg info NET`, params from the fillers: %.3f s; process '
                 'start (`netsurg --help`): %.3f s.' % (
                     ld['info_with_weights_s'], ld['weights_bytes'] / 2 ** 20,
                     ld['info_without_weights_s'], ld.get('process_start_s', 0)))
        pr = ex['peak_rss']
        L.append('- peak resident memory of the 451x451 run (`netsurg bench`, %s, '
                 '%s threads): %.0f MiB, weights %.0f MiB: weights + %.0f MiB (target: + 100 MB '
                 'at most).' % (pr.get('method', '/usr/bin/time -v'), ex['crops']['threads'],
                                pr['bytes'] / 2 ** 20,
                                pr['weights_bytes'] / 2 ** 20,
                                (pr['bytes'] - pr['weights_bytes']) / 2 ** 20))
        if 'export' in ex:
            L.append(export_line(ex['export']))
        cr = ex['crops']
        pl = ex['per_layer']
        L.append('- the seed\'s "64x the output in only 3x the time": 64 separate 227x227 '
                 'crops vs one dense 451x451 pass (8x8 map), %d threads:' % cr['threads'])
        if cr['fcn_ms'] and cr['batch1_ms']:
            L.append('  - 64 x batch 1 (64 x the batch-1 median above): %.0f ms = %.1fx the '
                     'dense pass (%.0f ms)' % (64 * cr['batch1_ms'],
                                               64 * cr['batch1_ms'] / cr['fcn_ms'],
                                               cr['fcn_ms']))
        if cr['fcn_ms'] and cr['batch64_ms']:
            L.append('  - one batch of 64 (median of %d runs): %.0f ms = %.1fx the dense pass'
                     % (cr['batch64_iters'], cr['batch64_ms'], cr['batch64_ms'] / cr['fcn_ms']))
        if 'b1' in pl and 'fcn' in pl:
            L.append('  - multiply-adds: 64 crops %.1f GFLOP vs dense %.1f GFLOP = %.1fx' % (
                64 * pl['b1']['gflop'], pl['fcn']['gflop'],
                64 * pl['b1']['gflop'] / pl['fcn']['gflop']))
        L.append('')
        L.append('### Per-layer profile (`netsurg bench --per-layer`, %s threads, 3 runs)' %
                 cr['threads'])
        L.append('')
        L.append('GFLOP/s counts a direct convolution\'s multiply-adds (2 FLOP each); '
                 'the layers Winograd computes with fewer (conv1-5) can show more than the '
                 'machine\'s peak.')
        L.append('')
        keys = [k for k in CONFIGS if k in ex['per_layer']]
        L.append('| layer | ' + ' | '.join('%s ms (GFLOP/s)' % CONFIGS[k][0] for k in keys) +
                 ' |')
        L.append('|---|' + '---|' * len(keys))
        names = [d['name'] for d in ex['per_layer'][keys[0]]['layers']]
        rows = {}
        for k in keys:
            for i, d in enumerate(ex['per_layer'][k]['layers']):
                # the cast layers keep their place: fc6 and fc6-conv on one row
                nm = d['name'].replace('-conv', '')
                rows.setdefault(nm, {})[k] = d
        for nm in [n.replace('-conv', '') for n in names]:
            cells = []
            for k in keys:
                d = rows[nm].get(k)
                if not d:
                    cells.append('')
                elif d['gflop'] > 0 and d['ms'] > 0:
                    cells.append('%.2f (%.0f)' % (d['ms'], d['gflop'] / d['ms'] * 1e3))
                else:
                    cells.append('%.2f' % d['ms'])
            L.append('| %s | %s |' % (nm, ' | '.join(cells)))
        L.append('')
    return '\n'.join(L)


def floor_ms(ex, key, threads):
    """The time no engine can beat on this machine: the multiply-adds at the
    measured FMA peak, or the weights read once at the measured bandwidth,
    whichever is longer (ms); None without `make bench-probe`."""
    pr, z = dict(QUIET_PROBE), ex.get('zoo', {})
    for k, v in (ex.get('probe') or {}).items():  # a quieter run than the quiet one wins
        if k in pr and isinstance(v, float):
            pr[k] = max(pr[k], v)
    b1 = key if key.endswith('-b1') or key == 'b1' else key.replace('-b8', '-b1')
    if key == 'b8':
        b1 = 'b1'
    if not pr or b1 not in z or 'fma_%d' % threads not in pr or 'gbs' not in pr:
        return None
    batch = CONFIGS[key][3][0]
    flop_ms = z[b1]['gflop'] * batch / pr['fma_%d' % threads] * 1e3
    # one thread reads at about half the two threads' bandwidth here
    bw = pr['gbs'] * (1 if threads > 1 else 0.5)
    return max(flop_ms, z[b1]['weights_bytes'] / (bw * 1e9) * 1e3)


def zoo_report(L, ex, results, args):
    z = ex['zoo']
    L.append('## Targets of the zoo issue (netsurg / ONNX Runtime, same run), with floors')
    L.append('')
    L.append('floor: the multiply-adds (2 FLOP each) at the FMA peak, or the weights read once '
             'at the read bandwidth, whichever is longer: peaks from `make bench-probe` on a quiet '
             'machine (%s GFLOP/s on 2 threads, %s on 1, %s GB/s), or this run\'s probe where '
             'higher; ' % (QUIET_PROBE['fma_2'], QUIET_PROBE['fma_1'], QUIET_PROBE['gbs']) +
             '"floor / ORT" is the best ratio any engine could reach against ONNX Runtime\'s '
             'time in this run.')
    L.append('')
    L.append('| config | threads | target | measured | floor ms | floor / ORT | |')
    L.append('|---|---|---|---|---|---|---|')
    for key in args.configs:
        for t in args.threads:
            goal = TARGETS.get((key, t))
            a, b = results.get((key, t, 'netsurg')), results.get((key, t, 'ort'))
            if goal is None or not a:
                continue
            fl = floor_ms(ex, key, t)
            ratio = a['median'] / b['median'] if b else None
            verdict = ('n/a (no ONNX Runtime time)' if ratio is None else 'met' if ratio <= goal
                       else 'missed by %.0f%%' % (100 * (ratio / goal - 1)))
            L.append('| %s | %d | %.2fx | %s | %s | %s | %s |' % (
                CONFIGS[key][0], t, goal, '%.2fx' % ratio if ratio else 'n/a',
                '%.1f' % fl if fl else 'n/a',
                '%.2fx' % (fl / b['median']) if fl and b else 'n/a', verdict))
    L.append('')
    L.append('### Peak resident memory, batch 1 (`netsurg bench`, %s threads)' %
             next(iter(z.values()))['threads'])
    L.append('')
    L.append('| model | peak RSS MiB | weights MiB | largest two activations MiB | '
             'target (weights + two + 50 MB) MiB | |')
    L.append('|---|---|---|---|---|---|')
    for key, d in z.items():
        goal = d['weights_bytes'] + d['largest_two_bytes'] + 50e6
        L.append('| %s | %.0f | %.0f | %.1f | %.0f | %s |' % (
            CONFIGS[key][0], d['rss_bytes'] / 2 ** 20, d['weights_bytes'] / 2 ** 20,
            d['largest_two_bytes'] / 2 ** 20, goal / 2 ** 20,
            'met' if d['rss_bytes'] <= goal else 'over by %.0f MiB' % (
                (d['rss_bytes'] - goal) / 2 ** 20)))
    L.append('')
    types = sorted({t for d in z.values() for t in d['by_type']},
                   key=lambda t: -sum(d['by_type'].get(t, 0) for d in z.values()))
    types = [t for t in types if any(d['by_type'].get(t, 0) >= 0.05 for d in z.values())]
    L.append('### Where the time goes, batch 1 (`netsurg bench --per-layer`, ms per layer type; '
             'a folded BatchNorm/Scale or fused ReLU counts in its convolution)')
    L.append('')
    L.append('| model | total ms | GFLOP | ' + ' | '.join(types) + ' |')
    L.append('|---|---|---|' + '---|' * len(types))
    for key, d in z.items():
        L.append('| %s | %.1f | %.2f | %s |' % (
            CONFIGS[key][0], d['median_ms'], d['gflop'],
            ' | '.join('%.2f' % d['by_type'].get(t, 0) for t in types)))
    L.append('')
    if ex.get('probe'):
        L.append('`make bench-probe` in this run: ' + '; '.join(ex['probe']['text'].splitlines()))
        L.append('')


def iters_text(args):
    return ', '.join('%d (%s)' % (iters_for(args, k), k) for k in args.configs)


def iters_for(args, key):
    return max(3, round(args.iters * CONFIGS[key][4]))


# ------------------------------------------------------------------ main

def write_report(meta, results, checks, ex, args):
    text = report(meta, results, checks, ex, args)
    here = os.path.dirname(os.path.abspath(__file__))
    # The hand-run and hand-written parts: bench/python_forward.py's line,
    # make bench-stream's figures, the account of the engine's means.
    for part in ('PYTHON.md', 'STREAM.md', 'TRIED.md'):
        path = os.path.join(here, part)
        if os.path.exists(path):
            with open(path) as f:
                text += '\n\n' + f.read().rstrip('\n')
    print(text)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(text + '\n')


def report_from_json(path, out):
    """--report-only: the report again from a run's JSON (after TRIED.md
    changed), no engine run."""
    with open(path) as f:
        blob = json.load(f)
    args = argparse.Namespace(out=out, crop_iters=0, **blob['settings'])
    results = {}
    for k, v in blob['results'].items():
        key, t, e = k.split('/')
        results[(key, int(t), e)] = v
    write_report(blob['meta'], results, blob['checks'], blob['netsurg_extras'], args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--engines', default=os.environ.get('BENCH_ENGINES', ','.join(ENGINES)))
    ap.add_argument('--configs', default=os.environ.get('BENCH_CONFIGS', CAFFENET_CONFIGS),
                    help='CaffeNet configs (%s)' % ', '.join(k for k in CONFIGS if '-' not in k))
    ap.add_argument('--models', default=os.environ.get('BENCH_MODELS', 'all'),
                    help='models to run: all or a list of %s' % ', '.join(MODELS))
    ap.add_argument('--threads', default=os.environ.get('BENCH_THREADS', '2,1'))
    ap.add_argument('--rounds', type=int, default=env_int('BENCH_ROUNDS', 3))
    ap.add_argument('--iters', type=int, default=env_int('BENCH_ITERS', 8),
                    help='timed forwards per round at batch 1, 227 (fewer for the larger '
                         'configs)')
    ap.add_argument('--warmup', type=int, default=env_int('BENCH_WARMUP', 2))
    ap.add_argument('--crop-iters', type=int, default=env_int('BENCH_CROP_ITERS', 2),
                    help='timed batch-64 forwards (0: skip the batch-64 run)')
    ap.add_argument('--no-extras', action='store_true',
                    help='skip load time, peak memory, the 64-crop pass and the profiles')
    ap.add_argument('--export-only', action='store_true',
                    help='only the ONNX export line (time and peak memory), printed')
    ap.add_argument('--out', help='Markdown report')
    ap.add_argument('--json', help='all figures as JSON')
    ap.add_argument('--report-only', action='store_true',
                    help='write --out again from the figures in --json (no run)')
    args = ap.parse_args()
    if args.report_only:
        return report_from_json(args.json, args.out)
    args.engines = [e for e in args.engines.split(',') if e]
    args.configs = [c for c in args.configs.split(',') if c]
    args.threads = [int(t) for t in args.threads.split(',') if t]
    for e in args.engines:
        if e not in ENGINES:
            ap.error('unknown engine %s (%s)' % (e, ', '.join(ENGINES)))
    for c in args.configs:
        if c not in CONFIGS or '-' in c:
            ap.error('unknown config %s (%s)' % (c, ', '.join(k for k in CONFIGS if '-' not in k)))
    models = MODELS if args.models == 'all' else [m for m in args.models.split(',') if m]
    for m in models:
        if m not in MODELS:
            ap.error('unknown model %s (%s)' % (m, ', '.join(MODELS)))
    if 'caffenet' not in models:
        args.configs = []
    for m in [m for m in MODELS if m in models and m != 'caffenet']:
        src = CONFIGS[m + '-b1'][5]['source']
        if not os.path.exists(src):
            log('bench: %s skipped: %s is absent' % (m, src))
            continue
        args.configs += [k for k in (m + '-b1', m + '-b8') if k in CONFIGS]

    ns = os.path.abspath(os.path.join(args.build, 'netsurg'))
    work = os.path.abspath(os.path.join(args.build, 'bench'))
    peers = [e for e in args.engines if e != 'netsurg']
    if args.export_only:
        prepare(ns, work, False)
        print(export_line(export_figures(ns, work)))
        return
    if any('-' not in c for c in args.configs):
        prepare(ns, work, 'ort' in peers)
    workers, missing = {}, {}
    meta = {'load_start': loadavg()}
    t_start = time.perf_counter()
    try:
        for e in peers:
            log('bench: starting %s' % LABEL[e])
            try:
                workers[e] = Worker(e)
            except (OSError, RuntimeError) as err:  # a missing peer: the others still run
                log('bench: %s unavailable (%s); run make bench-peers to install it' % (
                    LABEL[e], err))
                missing[e] = str(err)
        meta.update(machine_info(ns, workers))
        results, checks, rounds_raw = {}, {}, {}
        for key in args.configs:
            _, proto, weights, shape, _, opts = CONFIGS[key]
            pp, pw = os.path.join(work, proto), os.path.join(work, weights)
            model = opts.get('model')
            onnx = os.path.join(work, (model or key) + '.onnx')
            threads = [t for t in args.threads if t in opts.get('threads', args.threads)]
            if not threads:
                continue
            live, loading = {}, {}
            if model:
                why = prepare_zoo(ns, work, model, 'ort' in workers)
                if why and 'ort' in workers:
                    checks.setdefault(key, {})['ort'] = {'ok': False, 'error': why}
            # Loads run side by side (PyTorch's trace and freeze take a while).
            for e, w in workers.items():
                if e == 'ort' and not os.path.exists(onnx):
                    continue
                w.send(cmd='load', net=pp, weights=pw, threads=threads[0], onnx=onnx,
                       shape=shape, zoo=bool(model))
                loading[e] = w
            for e, w in loading.items():
                try:
                    r = w.reply()
                    log('bench: %s loaded %s in %.1f s' % (LABEL[e], key, r['load_s']))
                    live[e] = w
                except RuntimeError as err:
                    log('bench: %s' % err)
                    checks.setdefault(key, {})[e] = {'ok': False, 'error': str(err)}
            for e, err in missing.items():
                checks.setdefault(key, {})[e] = {'ok': False, 'error': 'not started: ' + err}
            if live:
                checks.setdefault(key, {}).update(check_peers(ns, work, key, live))
                for e, c in checks[key].items():
                    log('bench: check %s %s: %s' % (key, e, c))
                live = {e: w for e, w in live.items() if checks[key][e]['ok']}
            engines = [e for e in args.engines if e == 'netsurg' or e in live]
            n = iters_for(args, key)
            for t in threads:
                if t != threads[0]:  # load set threads[0]
                    for e in list(live):
                        try:
                            live[e].ask(cmd='threads', threads=t)
                        except RuntimeError as err:
                            log('bench: %s' % err)
                            del live[e]
                engines = [e for e in args.engines if e == 'netsurg' or e in live]
                per = {e: [] for e in engines}
                for rnd in range(args.rounds):
                    k = rnd % len(engines)
                    for e in engines[k:] + engines[:k]:
                        if e == 'netsurg':
                            r = netsurg_bench(ns, pp, pw, t, args.warmup, n, shape=shape)
                            rr = {'median': r['median_ms'], 'min': r['min_ms'],
                                  'max': r['max_ms'], 'iters': n}
                        else:
                            ts = live[e].ask(cmd='time', warmup=args.warmup, iters=n)['times_ms']
                            rr = {'median': statistics.median(ts), 'min': min(ts),
                                  'max': max(ts), 'iters': n, 'times': ts}
                        per[e].append(rr)
                    log('bench: %s, %d threads, round %d: %s' % (
                        key, t, rnd + 1, ', '.join('%s %.1f' % (e, per[e][-1]['median'])
                                                    for e in engines)))
                for e in engines:
                    results[(key, t, e)] = summarise(per[e])
                    rounds_raw['%s/%d/%s' % (key, t, e)] = per[e]
        ex = {}
        caffenet = [c for c in args.configs if '-' not in c]
        if 'netsurg' in args.engines and not args.no_extras:
            if 'b1' in caffenet and 'fcn' in caffenet:
                ex = extras(ns, work, results, caffenet, args.threads[0], args.crop_iters)
            ex['zoo'] = zoo_extras(ns, work, args.configs, args.threads[0])
        ex['probe'] = probe(args.build)
    finally:
        for w in workers.values():
            w.close()
    meta['load_end'] = loadavg()
    meta['wall_s'] = time.perf_counter() - t_start
    write_report(meta, results, checks, ex, args)
    if args.json:
        blob = {'meta': meta, 'settings': {k: getattr(args, k) for k in (
                    'engines', 'configs', 'threads', 'rounds', 'iters', 'warmup')},
                'results': {'%s/%d/%s' % k: v for k, v in results.items()},
                'rounds': rounds_raw, 'checks': checks, 'netsurg_extras': ex}
        with open(args.json, 'w') as f:
            json.dump(blob, f, indent=1)


if __name__ == '__main__':
    main()
