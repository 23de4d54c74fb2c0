"""Our script making the pycaffe calls of BVLC Caffe's 00-classification
and net_surgery notebooks, in the order the notebooks make them and with
the same arguments (Python 3, model and data paths pointed at files
netsurg made, the IPython-only and GPU steps left out), through whatever
`import caffe` finds (netsurg's python/caffe_shim). The calls are the API
facts under test; the text around them is ours, not the notebooks'.
tests/slow/test_pycaffe_notebooks.py runs it and checks what it prints
against the CLI.

Usage: pycaffe_notebooks_code.py MODELS_DIR DATA_DIR DESIGNER_PROTOTXT
MODELS_DIR holds deploy.prototxt, caffenet.caffemodel, labels.txt and
bvlc_caffenet_full_conv.prototxt."""
import sys

import numpy as np
import matplotlib.pyplot as plt

import caffe

models, data, designer_prototxt = sys.argv[1:4]

# ---- 00-classification.ipynb -------------------------------------------
caffe.set_mode_cpu()

model_def = models + '/deploy.prototxt'
model_weights = models + '/caffenet.caffemodel'

net = caffe.Net(model_def,
                model_weights,
                caffe.TEST)

mu = np.load(data + '/ilsvrc_2012_mean.npy')
mu = mu.mean(1).mean(1)
print('mean-subtracted values:', list(zip('BGR', mu)))

transformer = caffe.io.Transformer({'data': net.blobs['data'].data.shape})

transformer.set_transpose('data', (2, 0, 1))
transformer.set_mean('data', mu)
transformer.set_raw_scale('data', 255)
transformer.set_channel_swap('data', (2, 1, 0))

net.blobs['data'].reshape(50,
                          3,
                          227, 227)

image = caffe.io.load_image(data + '/cat.jpg')
transformed_image = transformer.preprocess('data', image)
plt.imshow(image)

net.blobs['data'].data[...] = transformed_image

output = net.forward()

output_prob = output['prob'][0]

print('predicted class is:', output_prob.argmax())

labels_file = models + '/labels.txt'
labels = np.loadtxt(labels_file, str, delimiter='\t')

print('output label:', labels[output_prob.argmax()])

top_inds = output_prob.argsort()[::-1][:5]

print('probabilities and labels:')
print(list(zip(output_prob[top_inds], labels[top_inds])))

for layer_name, blob in net.blobs.items():
    print(layer_name + '\t' + str(blob.data.shape))

for layer_name, param in net.params.items():
    print(layer_name + '\t' + str(param[0].data.shape), str(param[1].data.shape))


def vis_square(data):
    """Shows (n, h, w[, 3]) maps as one picture: scaled to [0, 1], laid out
    on a ceil(sqrt(n)) square grid with a one-pixel white seam."""
    data = (data - data.min()) / (data.max() - data.min())
    side = int(np.ceil(np.sqrt(data.shape[0])))
    h, w = data.shape[1:3]
    sheet = np.ones((side * (h + 1), side * (w + 1)) + data.shape[3:], data.dtype)
    for k in range(data.shape[0]):
        r, c = divmod(k, side)
        sheet[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = data[k]
    plt.imshow(sheet)
    plt.axis('off')


filters = net.params['conv1'][0].data
vis_square(filters.transpose(0, 2, 3, 1))

feat = net.blobs['conv1'].data[0, :36]
vis_square(feat)

feat = net.blobs['pool5'].data[0]
vis_square(feat)

feat = net.blobs['fc6'].data[0]
plt.subplot(2, 1, 1)
plt.plot(feat.flat)
plt.subplot(2, 1, 2)
_ = plt.hist(feat.flat[feat.flat > 0], bins=100)

feat = net.blobs['prob'].data[0]
plt.figure(figsize=(15, 3))
plt.plot(feat.flat)

image = caffe.io.load_image(data + '/cat.jpg')
net.blobs['data'].data[...] = transformer.preprocess('data', image)

net.forward()

output_prob = net.blobs['prob'].data[0]

top_inds = output_prob.argsort()[::-1][:5]

plt.imshow(image)

print('probabilities and labels:')
print(list(zip(output_prob[top_inds], labels[top_inds])))

# ---- net_surgery.ipynb: designer filters -------------------------------
caffe.set_mode_cpu()
net = caffe.Net(designer_prototxt, caffe.TEST)
print("blobs {}\nparams {}".format(net.blobs.keys(), net.params.keys()))

im = np.array(caffe.io.load_image(data + '/cat_gray.jpg', color=False)).squeeze()
plt.title("original image")
plt.imshow(im)
plt.axis('off')

im_input = im[np.newaxis, np.newaxis, :, :]
net.blobs['data'].reshape(*im_input.shape)
net.blobs['data'].data[...] = im_input


def show_filters(net):
    net.forward()
    plt.figure()
    filt_min, filt_max = net.blobs['conv'].data.min(), net.blobs['conv'].data.max()
    for i in range(3):
        plt.subplot(1, 4, i + 2)
        plt.title("filter #{} output".format(i))
        plt.imshow(net.blobs['conv'].data[0, i], vmin=filt_min, vmax=filt_max)
        plt.tight_layout()
        plt.axis('off')


show_filters(net)

conv0 = net.blobs['conv'].data[0, 0]
print("pre-surgery output mean {:.2f}".format(conv0.mean()))
net.params['conv'][1].data[0] = 1.
net.forward()
print("post-surgery output mean {:.2f}".format(conv0.mean()))

ksize = net.params['conv'][0].data.shape[2:]
sigma = 1.
y, x = np.mgrid[-ksize[0] // 2 + 1:ksize[0] // 2 + 1, -ksize[1] // 2 + 1:ksize[1] // 2 + 1]
g = np.exp(-((x ** 2 + y ** 2) / (2.0 * sigma ** 2)))
gaussian = (g / g.sum()).astype(np.float32)
net.params['conv'][0].data[0] = gaussian

net.params['conv'][0].data[1:] = 0.
sobel = np.array((-1, -2, -1, 0, 0, 0, 1, 2, 1), dtype=np.float32).reshape((3, 3))
net.params['conv'][0].data[1, 0, 1:-1, 1:-1] = sobel
net.params['conv'][0].data[2, 0, 1:-1, 1:-1] = sobel.T
show_filters(net)

# ---- net_surgery.ipynb: casting a classifier ---------------------------
net = caffe.Net(models + '/deploy.prototxt',
                models + '/caffenet.caffemodel',
                caffe.TEST)
params = ['fc6', 'fc7', 'fc8']
fc_params = {pr: (net.params[pr][0].data, net.params[pr][1].data) for pr in params}

for fc in params:
    print('{} weights are {} dimensional and biases are {} dimensional'.format(fc, fc_params[fc][0].shape, fc_params[fc][1].shape))

net_full_conv = caffe.Net(models + '/bvlc_caffenet_full_conv.prototxt',
                          models + '/caffenet.caffemodel',
                          caffe.TEST)
params_full_conv = ['fc6-conv', 'fc7-conv', 'fc8-conv']
conv_params = {pr: (net_full_conv.params[pr][0].data, net_full_conv.params[pr][1].data) for pr in params_full_conv}

for conv in params_full_conv:
    print('{} weights are {} dimensional and biases are {} dimensional'.format(conv, conv_params[conv][0].shape, conv_params[conv][1].shape))

for pr, pr_conv in zip(params, params_full_conv):
    conv_params[pr_conv][0].flat = fc_params[pr][0].flat
    conv_params[pr_conv][1][...] = fc_params[pr][1]

net_full_conv.save(models + '/bvlc_caffenet_full_conv.caffemodel')

im = caffe.io.load_image(data + '/cat.jpg')
transformer = caffe.io.Transformer({'data': net_full_conv.blobs['data'].data.shape})
transformer.set_mean('data', np.load(data + '/ilsvrc_2012_mean.npy').mean(1).mean(1))
transformer.set_transpose('data', (2, 0, 1))
transformer.set_channel_swap('data', (2, 1, 0))
transformer.set_raw_scale('data', 255.0)
out = net_full_conv.forward_all(data=np.asarray([transformer.preprocess('data', im)]))
print(out['prob'][0].argmax(axis=0))
plt.subplot(1, 2, 1)
plt.imshow(transformer.deprocess('data', net_full_conv.blobs['data'].data[0]))
plt.subplot(1, 2, 2)
plt.imshow(out['prob'][0, 281])
