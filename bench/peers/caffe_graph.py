"""Rebuild a Caffe deploy net (the CaffeNet family: Input, Convolution, ReLU,
Pooling, LRN, InnerProduct, Dropout, Softmax) in PyTorch and in ONNX, with the
weights OpenCV's Caffe reader finds in the caffemodel: the peers of the
benchmark then share netsurg's weights without going through netsurg's reader.

Only the layer types and options CaffeNet and its full-conv cast use are
handled; anything else raises, so a benchmark never runs a different graph.
"""
import re

import numpy as np

_TOKEN = re.compile(r'\s*(?:#[^\n]*\n?|("(?:[^"\\]|\\.)*")|([{}:])|([^\s{}:"#]+))')


def parse_prototxt(text):
    """Protobuf text format -> dict of field -> list of values (dicts, str)."""
    toks = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip() == '':
                break
            raise ValueError('prototxt: cannot read at offset %d' % pos)
        pos = m.end()
        if m.group(1) is not None:
            toks.append(('str', m.group(1)[1:-1]))
        elif m.group(2) is not None:
            toks.append(('p', m.group(2)))
        elif m.group(3) is not None:
            toks.append(('word', m.group(3)))

    def block(i):
        out = {}
        while i < len(toks) and toks[i] != ('p', '}'):
            kind, name = toks[i]
            if kind != 'word':
                raise ValueError('prototxt: field name expected, got %r' % name)
            i += 1
            if toks[i] == ('p', ':'):
                i += 1
            if toks[i] == ('p', '{'):
                val, i = block(i + 1)
                i += 1  # '}'
            else:
                val = toks[i][1]
                i += 1
            out.setdefault(name, []).append(val)
        return out, i

    root, _ = block(0)
    return root


def _one(d, key, default=None):
    v = d.get(key)
    return v[0] if v else default


def _num(d, key, default):
    v = _one(d, key)
    return default if v is None else float(v) if '.' in v or 'e' in v else int(v)


def layers_of(prototxt_path):
    """The net's layers as simple dicts, checked against what we support."""
    with open(prototxt_path) as f:
        net = parse_prototxt(f.read())
    if 'layer' not in net:
        raise ValueError('%s: no layer { } blocks (legacy format not handled here)' % prototxt_path)
    out = []
    for L in net['layer']:
        t = _one(L, 'type')
        d = {'name': _one(L, 'name'), 'type': t, 'bottom': L.get('bottom', []),
             'top': L.get('top', [])}
        if t == 'Input':
            d['shape'] = [int(x) for x in _one(_one(L, 'input_param'), 'shape')['dim']]
        elif t == 'Convolution':
            p = _one(L, 'convolution_param')
            for k in ('kernel_h', 'kernel_w', 'pad_h', 'pad_w', 'stride_h', 'stride_w',
                      'dilation'):
                if k in p:
                    raise ValueError('%s: %s not handled' % (d['name'], k))
            if _one(p, 'bias_term', 'true') != 'true':
                raise ValueError('%s: bias_term false not handled' % d['name'])
            d.update(num_output=_num(p, 'num_output', 0), kernel=_num(p, 'kernel_size', 0),
                     stride=_num(p, 'stride', 1), pad=_num(p, 'pad', 0),
                     group=_num(p, 'group', 1))
        elif t == 'Pooling':
            p = _one(L, 'pooling_param')
            if _one(p, 'pool', 'MAX') != 'MAX' or 'global_pooling' in p:
                raise ValueError('%s: only MAX pooling handled' % d['name'])
            d.update(kernel=_num(p, 'kernel_size', 0), stride=_num(p, 'stride', 1),
                     pad=_num(p, 'pad', 0))
        elif t == 'LRN':
            p = _one(L, 'lrn_param', {})
            if _one(p, 'norm_region', 'ACROSS_CHANNELS') != 'ACROSS_CHANNELS':
                raise ValueError('%s: only ACROSS_CHANNELS LRN handled' % d['name'])
            d.update(size=_num(p, 'local_size', 5), alpha=float(_num(p, 'alpha', 1.0)),
                     beta=float(_num(p, 'beta', 0.75)), k=float(_num(p, 'k', 1.0)))
        elif t == 'InnerProduct':
            p = _one(L, 'inner_product_param')
            if _one(p, 'bias_term', 'true') != 'true' or _num(p, 'axis', 1) != 1:
                raise ValueError('%s: bias_term false / axis not handled' % d['name'])
            d.update(num_output=_num(p, 'num_output', 0))
        elif t == 'Softmax':
            p = _one(L, 'softmax_param', {})
            if _num(p, 'axis', 1) != 1:
                raise ValueError('%s: softmax axis not handled' % d['name'])
        elif t in ('ReLU', 'Dropout'):
            p = _one(L, 'relu_param', {})
            if float(_num(p, 'negative_slope', 0)) != 0:
                raise ValueError('%s: leaky ReLU not handled' % d['name'])
        else:
            raise ValueError('%s: layer type %s not handled' % (d['name'], t))
        out.append(d)
    return out


def read_params(prototxt_path, caffemodel_path, layers):
    """{layer: (weights, bias)} as float32 arrays, read by OpenCV's Caffe
    reader (an independent reader: netsurg's own is what is under test)."""
    import cv2
    net = cv2.dnn.readNetFromCaffe(prototxt_path, caffemodel_path)
    params = {}
    for d in layers:
        if d['type'] not in ('Convolution', 'InnerProduct'):
            continue
        w = np.ascontiguousarray(net.getParam(d['name'], 0), dtype=np.float32)
        b = np.ascontiguousarray(net.getParam(d['name'], 1), dtype=np.float32).reshape(-1)
        if b.size != d['num_output'] or w.shape[0] != d['num_output']:
            raise ValueError('%s: param shapes %s %s' % (d['name'], w.shape, b.shape))
        params[d['name']] = (w, b)
    return params


def input_shape(layers):
    ins = [d for d in layers if d['type'] == 'Input']
    if len(ins) != 1:
        raise ValueError('expected one Input layer')
    return ins[0]['shape']


def output_shape(layers):
    """The last top's shape, by Caffe's shape rules for these layer types."""
    shape = {}
    for d in layers:
        t = d['type']
        if t == 'Input':
            shape[d['top'][0]] = list(d['shape'])
            continue
        n, c, *hw = shape[d['bottom'][0]]
        if t == 'Convolution':
            k, s, p = d['kernel'], d['stride'], d['pad']
            out = [n, d['num_output']] + [(x + 2 * p - k) // s + 1 for x in hw]
        elif t == 'Pooling':  # Caffe rounds up, then keeps the last window in the input
            k, s, p = d['kernel'], d['stride'], d['pad']
            out = [n, c]
            for x in hw:
                o = -(-(x + 2 * p - k) // s) + 1
                if p and (o - 1) * s >= x + p:
                    o -= 1
                out.append(o)
        elif t == 'InnerProduct':
            out = [n, d['num_output']]
        else:
            out = [n, c] + hw
        shape[d['top'][0]] = out
    return shape[layers[-1]['top'][0]]


def torch_module(layers, params):
    """An nn.Module computing the Caffe net's last top (eval mode)."""
    import torch
    from torch import nn

    class CaffeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.steps = []  # (module name or None, kind, bottom, top)
            self.mods = nn.ModuleDict()
            for d in layers:
                t, name = d['type'], d['name']
                key = name.replace('-', '_')
                if t == 'Input':
                    self.input_name = d['top'][0]
                    continue
                if t == 'Convolution':
                    w, b = params[name]
                    m = nn.Conv2d(w.shape[1] * d['group'], d['num_output'], d['kernel'],
                                  d['stride'], d['pad'], groups=d['group'])
                    m.weight.data = torch.from_numpy(w.copy())
                    m.bias.data = torch.from_numpy(b.copy())
                elif t == 'InnerProduct':
                    w, b = params[name]
                    w = w.reshape(d['num_output'], -1)
                    m = nn.Linear(w.shape[1], w.shape[0])
                    m.weight.data = torch.from_numpy(w.copy())
                    m.bias.data = torch.from_numpy(b.copy())
                elif t == 'Pooling':
                    m = nn.MaxPool2d(d['kernel'], d['stride'], d['pad'], ceil_mode=True)
                elif t == 'LRN':
                    # Caffe and PyTorch both divide alpha by the window size.
                    m = nn.LocalResponseNorm(d['size'], d['alpha'], d['beta'], d['k'])
                elif t == 'ReLU':
                    m = nn.ReLU()
                elif t == 'Softmax':
                    m = nn.Softmax(dim=1)
                else:  # Dropout: identity at test time
                    m = None
                if m is not None:
                    self.mods[key] = m
                self.steps.append((key if m is not None else None, t, d['bottom'][0],
                                   d['top'][0]))
            self.output_name = self.steps[-1][3]

        def forward(self, x):
            blobs = {self.input_name: x}
            for key, t, bottom, top in self.steps:
                y = blobs[bottom]
                if key is not None:
                    if t == 'InnerProduct':
                        y = y.flatten(1)
                    y = self.mods[key](y)
                blobs[top] = y
            return blobs[self.output_name]

    return CaffeNet().eval()


def onnx_model(layers, params, opset=13):
    """The same net as an ONNX graph of native operators (Conv with group,
    MaxPool ceil_mode, LRN, Gemm, Softmax over axis 1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    cur = {}  # Caffe blob -> ONNX tensor name holding its latest value
    in_name = in_shape = None
    for d in layers:
        t, name = d['type'], d['name']
        if t == 'Input':
            in_name, in_shape = d['top'][0], d['shape']
            cur[in_name] = in_name
            continue
        x = cur[d['bottom'][0]]
        y = name + ':out'
        if t == 'Convolution':
            w, b = params[name]
            inits += [numpy_helper.from_array(w, name + ':w'),
                      numpy_helper.from_array(b, name + ':b')]
            k, s, p = d['kernel'], d['stride'], d['pad']
            nodes.append(helper.make_node('Conv', [x, name + ':w', name + ':b'], [y], name=name,
                                          kernel_shape=[k, k], strides=[s, s],
                                          pads=[p, p, p, p], group=d['group']))
        elif t == 'InnerProduct':
            w, b = params[name]
            w = w.reshape(d['num_output'], -1)
            inits += [numpy_helper.from_array(w, name + ':w'),
                      numpy_helper.from_array(b, name + ':b')]
            nodes.append(helper.make_node('Flatten', [x], [name + ':flat'], name=name + ':flat',
                                          axis=1))
            nodes.append(helper.make_node('Gemm', [name + ':flat', name + ':w', name + ':b'], [y],
                                          name=name, transB=1))
        elif t == 'Pooling':
            k, s, p = d['kernel'], d['stride'], d['pad']
            nodes.append(helper.make_node('MaxPool', [x], [y], name=name, kernel_shape=[k, k],
                                          strides=[s, s], pads=[p, p, p, p], ceil_mode=1))
        elif t == 'LRN':
            # ONNX's LRN divides alpha by size, as Caffe does.
            nodes.append(helper.make_node('LRN', [x], [y], name=name, size=d['size'],
                                          alpha=d['alpha'], beta=d['beta'], bias=d['k']))
        elif t == 'ReLU':
            nodes.append(helper.make_node('Relu', [x], [y], name=name))
        elif t == 'Softmax':
            nodes.append(helper.make_node('Softmax', [x], [y], name=name, axis=1))
        else:  # Dropout
            y = x
        cur[d['top'][0]] = y
    last = nodes[-1]
    out = layers[-1]['top'][0]
    last.output[0] = out
    graph = helper.make_graph(
        nodes, 'caffenet', [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, output_shape(layers))], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)],
                              producer_name='netsurg-bench')
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main(argv):
    """caffe_graph.py onnx NET.prototxt WEIGHTS.caffemodel OUT.onnx"""
    import onnx
    if len(argv) != 5 or argv[1] != 'onnx':
        raise SystemExit('usage: caffe_graph.py onnx NET WEIGHTS OUT.onnx')
    layers = layers_of(argv[2])
    model = onnx_model(layers, read_params(argv[2], argv[3], layers))
    tmp = argv[4] + '.tmp'
    onnx.save(model, tmp)
    import os
    os.replace(tmp, argv[4])


if __name__ == '__main__':
    import sys
    main(sys.argv)
