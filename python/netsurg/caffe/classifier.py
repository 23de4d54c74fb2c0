"""pycaffe's Classifier: images in, class probabilities out, optionally
averaged over ten crops (caffe.io.oversample)."""
import numpy as np

from . import io
from .._core import TEST
from .net import Net


class Classifier(Net):
    def __init__(self, model_file, pretrained_file, image_dims=None, mean=None,
                 input_scale=None, raw_scale=None, channel_swap=None):
        super().__init__(model_file, pretrained_file, TEST)
        in_ = self.inputs[0]
        self.transformer = io.Transformer({in_: self.blobs[in_].data.shape})
        self.transformer.set_transpose(in_, (2, 0, 1))
        if mean is not None:
            self.transformer.set_mean(in_, mean)
        if input_scale is not None:
            self.transformer.set_input_scale(in_, input_scale)
        if raw_scale is not None:
            self.transformer.set_raw_scale(in_, raw_scale)
        if channel_swap is not None:
            self.transformer.set_channel_swap(in_, channel_swap)
        self.crop_dims = np.array(self.blobs[in_].data.shape[2:])
        self.image_dims = np.array(image_dims if image_dims is not None else self.crop_dims)

    def predict(self, inputs, oversample=True):
        """inputs: H x W x K images; returns N x classes (the first
        output), averaged over the ten crops with oversample."""
        in_ = self.inputs[0]
        resized = np.zeros((len(inputs),) + tuple(self.image_dims) + (inputs[0].shape[2],),
                           np.float32)
        for i, im in enumerate(inputs):
            im = np.asarray(im, np.float32)
            same = tuple(im.shape[:2]) == tuple(self.image_dims)
            resized[i] = im if same else io.resize_image(im, self.image_dims)
        if oversample:
            crops = io.oversample(resized, self.crop_dims)
        else:
            top = (self.image_dims / 2.0 - self.crop_dims / 2.0).astype(int)
            bottom = top + self.crop_dims
            crops = resized[:, top[0]:bottom[0], top[1]:bottom[1], :]
        caffe_in = np.asarray([self.transformer.preprocess(in_, c) for c in crops])
        predictions = self.forward_all(**{in_: caffe_in})[self.outputs[0]]
        if oversample:
            predictions = predictions.reshape((len(predictions) // 10, 10, -1)).mean(1)
        return predictions
