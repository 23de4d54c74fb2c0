#!/usr/bin/env python3
"""Where the time goes, layer by layer, in netsurg and in ONNX Runtime.

Runs ONNX Runtime's own profiler (enableProfiling) on the ONNX model that
`make bench-peers` exported for a zoo model, and `netsurg bench --per-layer`
on the same prototxt and weights, and prints each layer's median time in
both (ONNX Runtime's nodes matched to Caffe's layers by name; a node it
fused away shows as "-").  Needs `make bench-peers` run once for the model
(build/bench/MODEL.{prototxt,caffemodel,onnx}) and `make deps-ort`.

    /usr/bin/python3 bench/ort_profile.py resnet50 --threads 1
"""
import argparse
import collections
import glob
import json
import os
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ort_nodes(onnx, shape, threads, runs):
    """Median kernel time (ms) of each node, and of each whole run."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(['node', 'ort_profile.js', onnx, ','.join(map(str, shape)), str(threads),
                        str(runs), os.path.join(tmp, 'prof')],
                       cwd=os.path.join(ROOT, 'bench', 'peers'), check=True)
        with open(glob.glob(os.path.join(tmp, 'prof*.json'))[0]) as f:
            events = json.load(f)
    times = collections.defaultdict(list)
    for e in events:
        if e.get('cat') == 'Node' and e['name'].endswith('_kernel_time'):
            times[e['name'][:-len('_kernel_time')]].append(e['dur'] / 1000)
    whole = [e['dur'] / 1000 for e in events
             if e.get('cat') == 'Session' and e['name'] == 'model_run']
    return {k: statistics.median(v) for k, v in times.items()}, statistics.median(whole)


def netsurg_layers(build, proto, weights, threads, runs):
    out = subprocess.run([os.path.join(build, 'netsurg'), 'bench', proto, weights, '--threads',
                          str(threads), '--iters', str(runs), '--per-layer', '--json',
                          '--allow-unknown'], check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    d = json.loads(out)
    return [(l['name'], l['type'], l['ms']) for l in d['layers']], d['median_ms'], d['input_shape']


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('model', help='a zoo model of bench/run.py (resnet50, mobilenet, ...)')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--runs', type=int, default=20)
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    args = ap.parse_args()
    work = os.path.join(args.build, 'bench')
    p = lambda ext: os.path.join(work, args.model + ext)  # noqa: E731
    layers, ns_total, shape = netsurg_layers(args.build, p('.prototxt'), p('.caffemodel'),
                                             args.threads, args.runs)
    nodes, ort_total = ort_nodes(p('.onnx'), shape, args.threads, args.runs)
    print('%-32s %-14s %9s %9s' % ('layer', 'type', 'netsurg', 'ORT'))
    for name, kind, ms in layers:
        match = [v for k, v in nodes.items() if k == name or k.startswith(name + '_')]
        if ms >= 0.01 or match:
            print('%-32s %-14s %9.3f %9s' % (name, kind, ms, '%.3f' % match[0] if match else '-'))
    print('%-32s %-14s %9.2f %9.2f' % ('whole forward (median)', '', ns_total, ort_total))


if __name__ == '__main__':
    main()
