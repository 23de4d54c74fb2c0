"""pycaffe's NetSpec: prototxts written as Python.

    n = caffe.NetSpec()
    n.data, n.label = L.Data(source=..., batch_size=64, ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type='xavier'))
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    print(n.to_proto())          # a caffe_pb2.NetParameter

A layer's keyword arguments go, as pycaffe's: `ntop` (how many tops;
0 gives the layer itself) and `in_place` (tops = bottoms) are taken out;
a name ending in `param` is a LayerParameter field; any other name is
looked for in the layer type's own parameter message (Convolution ->
convolution_param) and, when that message has no such field, in
LayerParameter (name, loss_weight, include, ...).  A dict fills a nested
message, a list a repeated field (of dicts: one message each).  Tops are
named by the NetSpec attribute they were assigned to; others get the
layer type and a counter (Convolution1), as pycaffe's."""
import collections


def _pb2():
    """caffe_pb2 on first use: `import caffe` works before `make python`
    generated it."""
    from .proto import caffe_pb2
    return caffe_pb2


def _param_field_by_type():
    """{'Convolution': 'convolution', ...}: each LayerParameter field
    `X_param` of message type `YParameter` maps type Y to X."""
    fields = _pb2().LayerParameter.DESCRIPTOR.fields
    out = {}
    for f in fields:
        if f.name.endswith("_param") and f.message_type is not None:
            type_name = f.message_type.name
            if type_name.endswith("Parameter"):
                out[type_name[:-len("Parameter")]] = f.name[:-len("_param")]
    return out


def _assign(message, name, value):
    """message.name = value, through nested dicts and lists; a single value
    (or dict) for a repeated field is one entry, as pycaffe's."""
    field = getattr(message, name)
    repeated = hasattr(field, "extend")
    if repeated and not isinstance(value, (list, tuple)):
        value = [value]
    if isinstance(value, (list, tuple)):
        for item in value:
            if isinstance(item, dict):
                entry = field.add()
                for k, v in item.items():
                    _assign(entry, k, v)
            else:
                field.append(item)
    elif isinstance(value, dict):
        for k, v in value.items():
            _assign(field, k, v)
    else:
        setattr(message, name, value)


class Top:
    """One top of a layer function: pass it as a bottom, assign it to a
    NetSpec attribute, or turn the net that ends in it into a proto."""

    def __init__(self, fn, n):
        self.fn, self.n = fn, n

    def to_proto(self):
        return to_proto(self)

    def _update(self, params):
        self.fn.params.update(params)

    def _to_proto(self, layers, names, autonames):
        return self.fn._to_proto(layers, names, autonames)


class Function:
    """A layer not yet written: its type, bottoms and keyword params."""

    def __init__(self, type_name, inputs, params):
        self.type_name, self.inputs, self.params = type_name, inputs, dict(params)
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _auto_name(self, autonames):
        autonames[self.type_name] += 1
        return self.type_name + str(autonames[self.type_name])

    def _top_name(self, top, names, autonames):
        if top not in names:
            names[top] = self._auto_name(autonames)
        return names[top]

    def _layer_name(self, names, autonames):
        """A layer is named after its first top (pycaffe's choice)."""
        if self not in names:
            names[self] = (self._top_name(self.tops[0], names, autonames) if self.ntop
                           else self._auto_name(autonames))
        return names[self]

    def _to_proto(self, layers, names, autonames):
        if self in layers:
            return
        bottoms = []
        for top in self.inputs:
            top._to_proto(layers, names, autonames)
            bottoms.append(layers[top.fn].top[top.n])
        layer = _pb2().LayerParameter()
        layer.type = self.type_name
        layer.bottom.extend(bottoms)
        if self.in_place:
            layer.top.extend(layer.bottom)
        else:
            for top in self.tops:
                layer.top.append(self._top_name(top, names, autonames))
        layer.name = self._layer_name(names, autonames)
        own = _param_field_by_type().get(self.type_name)
        for key, value in self.params.items():
            if key.endswith("param") or own is None:
                _assign(layer, key, value)
                continue
            sub = getattr(layer, own + "_param")
            if key in sub.DESCRIPTOR.fields_by_name:
                _assign(sub, key, value)
            else:
                _assign(layer, key, value)
        layers[self] = layer


def to_proto(*tops):
    """The NetParameter of every layer the tops depend on, in order."""
    layers = collections.OrderedDict()
    autonames = collections.Counter()
    for top in tops:
        top.fn._to_proto(layers, {}, autonames)
    net = _pb2().NetParameter()
    net.layer.extend(layers.values())
    return net


class NetSpec:
    """Tops by attribute (n.conv1 = ...) or item (n['conv1'] = ...), in
    assignment order; to_proto() names each after its attribute."""

    def __init__(self):
        super().__setattr__("tops", collections.OrderedDict())

    def __setattr__(self, name, value):
        self.tops[name] = value

    def __getattr__(self, name):
        try:
            return self.tops[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setitem__(self, key, value):
        self.tops[key] = value

    def __getitem__(self, key):
        return self.tops[key]

    def __delitem__(self, key):
        del self.tops[key]

    def keys(self):
        return list(self.tops.keys())

    def to_proto(self):
        names = {top: name for name, top in self.tops.items()}
        autonames = collections.Counter()
        layers = collections.OrderedDict()
        for top in self.tops.values():
            top._to_proto(layers, names, autonames)
        net = _pb2().NetParameter()
        net.layer.extend(layers.values())
        return net


class Layers:
    """L.Convolution(bottom, ..., ntop=1): a Top (ntop 1), a tuple of Tops,
    or the layer itself (ntop 0)."""

    def __getattr__(self, type_name):
        if type_name.startswith("__"):
            raise AttributeError(type_name)

        def layer(*bottoms, **params):
            fn = Function(type_name, bottoms, params)
            if fn.ntop == 0:
                return fn
            return fn.tops[0] if fn.ntop == 1 else fn.tops
        return layer


class Parameters:
    """P.Pooling.MAX: caffe_pb2.PoolingParameter's enum values by name."""

    def __getattr__(self, type_name):
        if type_name.startswith("__"):
            raise AttributeError(type_name)
        message = getattr(_pb2(), type_name + "Parameter")

        class Values:
            def __getattr__(self, value_name):
                return getattr(message, value_name)
        return Values()


layers = Layers()
params = Parameters()
