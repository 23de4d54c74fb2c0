"""Rebuild the zoo's deploy nets (GoogLeNet, ResNet-50, SqueezeNet, VGG-16,
MobileNet) in PyTorch, as a graph of blobs in Caffe's layer order, with the
weights OpenCV's Caffe reader finds in the caffemodel (an independent
reader: netsurg's own is what the benchmark checks).

Handles the layer types and options those nets use (Convolution with
groups, bias_term and kernel_h/w forms, BatchNorm with global statistics,
Scale with bias, Eltwise SUM/PROD/MAX, Concat, MAX/AVE/global Pooling with
Caffe's ceil rule, LRN, InnerProduct, ReLU, Dropout, Softmax, Flatten);
anything else raises, so that a benchmark never times a different graph.
The current-format prototxt comes from `netsurg upgrade`.
"""
import numpy as np

from caffe_graph import _num, _one, parse_prototxt

TYPES = ('Input', 'Convolution', 'BatchNorm', 'Scale', 'ReLU', 'Pooling', 'LRN', 'Concat',
         'Eltwise', 'InnerProduct', 'Dropout', 'Softmax', 'Flatten')


def _pair(p, name, default):
    """kernel/pad/stride: the _h/_w pair or the single (repeated) field."""
    h, w = _one(p, name + '_h'), _one(p, name + '_w')
    if h is not None or w is not None:
        return int(h or default), int(w or default)
    key = {'kernel': 'kernel_size'}.get(name, name)
    v = p.get(key)
    if not v:
        return default, default
    return (int(v[0]), int(v[-1]))


def layers_of(path):
    with open(path) as f:
        net = parse_prototxt(f.read())
    out = []
    for L in net.get('layer', []):
        t = _one(L, 'type')
        if t not in TYPES:
            raise ValueError('%s: layer type %s not rebuilt' % (_one(L, 'name'), t))
        for phase in L.get('include', []):
            if _one(phase, 'phase') == 'TRAIN':
                break
        else:
            out.append({'name': _one(L, 'name'), 'type': t, 'bottom': L.get('bottom', []),
                        'top': L.get('top', []), 'raw': L})
    return out


def read_params(proto, weights, layers):
    import cv2
    net = cv2.dnn.readNetFromCaffe(proto, weights)
    params = {}
    for d in layers:
        if d['type'] in ('Convolution', 'InnerProduct', 'BatchNorm', 'Scale'):
            blobs = []
            i = 0
            while True:
                try:
                    b = net.getParam(d['name'], i)
                except cv2.error:
                    break
                if b is None or b.size == 0:
                    break
                blobs.append(np.ascontiguousarray(b, dtype=np.float32))
                i += 1
            params[d['name']] = blobs
    return params


def torch_module(layers, params):
    import torch
    from torch import nn
    import torch.nn.functional as F

    class ZooNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = nn.ModuleDict()
            self.steps = []  # (kind, key, bottoms, top, extra)
            for d in layers:
                t, name, raw = d['type'], d['name'], d['raw']
                key = 'm%d' % len(self.steps)
                extra = None
                if t == 'Input':
                    self.input_name = d['top'][0]
                    continue
                if t == 'Convolution':
                    p = _one(raw, 'convolution_param')
                    kh, kw = _pair(p, 'kernel', 1)
                    ph, pw = _pair(p, 'pad', 0)
                    sh, sw = _pair(p, 'stride', 1)
                    dil = _num(p, 'dilation', 1)
                    g = _num(p, 'group', 1)
                    w = params[name][0]
                    bias = _one(p, 'bias_term', 'true') == 'true'
                    m = nn.Conv2d(w.shape[1] * g, w.shape[0], (kh, kw), (sh, sw), (ph, pw),
                                  dilation=dil, groups=g, bias=bias)
                    m.weight.data = torch.from_numpy(w.reshape(m.weight.shape).copy())
                    if bias:
                        m.bias.data = torch.from_numpy(params[name][1].reshape(-1).copy())
                    self.mods[key] = m
                elif t == 'BatchNorm':
                    p = _one(raw, 'batch_norm_param', {})
                    if _one(p, 'use_global_stats', 'true') != 'true':
                        raise ValueError('%s: batch statistics not rebuilt' % name)
                    mean, var, f = (b.reshape(-1) for b in params[name][:3])
                    s = 0.0 if f[0] == 0 else 1.0 / f[0]
                    m = nn.BatchNorm2d(mean.size, eps=float(_num(p, 'eps', 1e-5)))
                    m.running_mean.data = torch.from_numpy(mean * s)
                    m.running_var.data = torch.from_numpy(var * s)
                    m.weight.data.fill_(1)
                    m.bias.data.fill_(0)
                    self.mods[key] = m
                elif t == 'Scale':
                    p = _one(raw, 'scale_param', {})
                    if _num(p, 'axis', 1) != 1 or len(d['bottom']) != 1:
                        raise ValueError('%s: only a per-channel Scale rebuilt' % name)
                    extra = [b.reshape(1, -1, 1, 1) for b in params[name]]
                    for j, b in enumerate(extra):
                        self.register_buffer('%s_%d' % (key, j), torch.from_numpy(b.copy()))
                    extra = len(extra)
                elif t == 'ReLU':
                    p = _one(raw, 'relu_param', {})
                    if float(_num(p, 'negative_slope', 0)) != 0:
                        raise ValueError('%s: leaky ReLU not rebuilt' % name)
                    self.mods[key] = nn.ReLU()
                elif t == 'Pooling':
                    p = _one(raw, 'pooling_param', {})
                    kind = _one(p, 'pool', 'MAX')
                    if _one(p, 'global_pooling', 'false') == 'true':
                        extra = ('global', kind)
                    else:
                        k, pad, st = _pair(p, 'kernel', 1), _pair(p, 'pad', 0), _pair(p, 'stride', 1)
                        if kind == 'MAX':
                            m = nn.MaxPool2d(k, st, pad, ceil_mode=True)
                        elif kind == 'AVE':
                            m = nn.AvgPool2d(k, st, pad, ceil_mode=True, count_include_pad=True)
                        else:
                            raise ValueError('%s: %s pooling not rebuilt' % (name, kind))
                        self.mods[key] = m
                elif t == 'LRN':
                    p = _one(raw, 'lrn_param', {})
                    if _one(p, 'norm_region', 'ACROSS_CHANNELS') != 'ACROSS_CHANNELS':
                        raise ValueError('%s: only ACROSS_CHANNELS LRN rebuilt' % name)
                    self.mods[key] = nn.LocalResponseNorm(
                        _num(p, 'local_size', 5), float(_num(p, 'alpha', 1.0)),
                        float(_num(p, 'beta', 0.75)), float(_num(p, 'k', 1.0)))
                elif t == 'Concat':
                    p = _one(raw, 'concat_param', {})
                    extra = _num(p, 'axis', 1)
                elif t == 'Eltwise':
                    p = _one(raw, 'eltwise_param', {})
                    if 'coeff' in p:
                        raise ValueError('%s: Eltwise coeff not rebuilt' % name)
                    extra = _one(p, 'operation', 'SUM')
                elif t == 'InnerProduct':
                    w = params[name][0]
                    w = w.reshape(w.shape[0], -1)
                    m = nn.Linear(w.shape[1], w.shape[0])
                    m.weight.data = torch.from_numpy(w.copy())
                    m.bias.data = torch.from_numpy(params[name][1].reshape(-1).copy())
                    self.mods[key] = m
                elif t == 'Softmax':
                    p = _one(raw, 'softmax_param', {})
                    extra = _num(p, 'axis', 1)
                self.steps.append((t, key, d['bottom'], d['top'][0], extra))
            self.output_name = self.steps[-1][3]

        def forward(self, x):
            blobs = {self.input_name: x}
            for t, key, bottoms, top, extra in self.steps:
                xs = [blobs[b] for b in bottoms]
                if t == 'Scale':
                    y = xs[0] * getattr(self, key + '_0')
                    if extra > 1:
                        y = y + getattr(self, key + '_1')
                elif t == 'Pooling' and isinstance(extra, tuple):
                    y = (F.adaptive_max_pool2d(xs[0], 1) if extra[1] == 'MAX'
                         else F.adaptive_avg_pool2d(xs[0], 1))
                elif t == 'Concat':
                    y = torch.cat(xs, dim=extra)
                elif t == 'Eltwise':
                    y = xs[0]
                    for z in xs[1:]:
                        y = y + z if extra == 'SUM' else y * z if extra == 'PROD' else \
                            torch.maximum(y, z)
                elif t == 'InnerProduct':
                    y = self.mods[key](xs[0].flatten(1))
                elif t == 'Flatten':
                    y = xs[0].flatten(1)
                elif t == 'Softmax':
                    y = torch.softmax(xs[0], dim=extra)
                elif t == 'Dropout':
                    y = xs[0]
                else:
                    y = self.mods[key](xs[0])
                blobs[top] = y
            return blobs[self.output_name]

    return ZooNet().eval()
