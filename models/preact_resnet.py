"""Pre-activation ResNet for 32x32 images (the paper's "PreAct ResNet-32").

Layout (Tanaka et al.'s network; results/PROTOCOL.md):

* a 3x3 convolution (stride 1, pad 1, no bias) to ``widths[0]`` channels;
* one stage per entry of ``widths``, each of ``n_blocks`` pre-activation basic blocks
  (BN-ReLU-conv3x3-BN-ReLU-conv3x3). The first stage has stride 1, every later one stride 2
  (applied by the first block's first convolution);
* the first block of every stage, the first stage included, has a 1x1 projection shortcut with
  the stage's stride, applied to ``relu(bn1(x))``, the same pre-activation the residual branch
  starts from; the other blocks add ``x`` itself;
* a final BN + ReLU, global average pooling and a linear layer (with bias) to the class logits.

Convolutions have no bias and He-normal weights. The linear layer keeps Chainer's default
initialisation (LeCun-normal weights, zero bias).

Batch normalisation + ReLU are Chainer's own ``L.BatchNormalization`` and ``F.relu`` (cuDNN on a
GPU), per independent slice of the batch where ``groups`` > 1 (:func:`batch_norm_relu`). On a GPU
every layer is Chainer's own. On the CPU two nodes of this package remain, because the recorded
numbers were computed with them: every convolution hands batch normalisation a C-contiguous output
(Chainer's im2col path returns a transposed view, which batch normalisation sums in another order),
and global average pooling + the linear layer are one node (:func:`pool_linear`, exactly what
``F.mean`` + ``F.linear`` compute); their gain on the CPU is of uncertain size
(results/benchmarks/cpu_digits_layers.md)."""
import chainer
import chainer.functions as F
import numpy
import chainer.links as L
from chainer import function_node
from chainer.functions.connection import convolution_2d


def batch_norm_relu(link, x, groups=1):
    """``relu(link(x))`` for an ``L.BatchNormalization`` link; in training mode with ``groups``
    G > 1, each of G equal consecutive slices of the batch is normalised with its own statistics
    (and updates the running averages in turn): step 2's mixed and clean halves."""
    if groups == 1:
        return F.relu(link(x))
    if not chainer.config.train:
        raise ValueError('groups are a training-mode feature (test mode uses the running averages)')
    if x.shape[0] % groups:
        raise ValueError('a batch of {} does not split into {} equal groups'.format(
            x.shape[0], groups))
    slices = F.split_axis(x, groups, axis=0)
    return F.relu(F.concat([link(s) for s in slices], axis=0))


class _ContiguousConvolution2D(convolution_2d.Convolution2DFunction):
    """Chainer's convolution whose output is C-contiguous (one copy where it was a view)."""

    @property
    def label(self):
        return 'Convolution2DFunction'

    def forward(self, inputs):
        y, = super(_ContiguousConvolution2D, self).forward(inputs)
        return numpy.ascontiguousarray(y),


def chainers_own(link):
    """Whether ``link`` computes with Chainer's own nodes only: on a GPU (see the module text)."""
    return link.xp is not numpy


class ContiguousConvolution2D(L.Convolution2D):
    """``L.Convolution2D`` (same parameters, same snapshots) with a C-contiguous output on the
    CPU; Chainer's own on a GPU."""

    def forward(self, x):
        if chainers_own(self):
            return super(ContiguousConvolution2D, self).forward(x)
        if self.W.raw_array is None:
            self._initialize_params(x.shape[1])
        node = _ContiguousConvolution2D(self.stride, self.pad, dilate=self.dilate,
                                        groups=self.groups, cudnn_fast=self.cudnn_fast)
        return node.apply((x, self.W) if self.b is None else (x, self.W, self.b))[0]


class PoolLinear(function_node.FunctionNode):
    """Global average pooling then a linear layer, ``mean(h, (2, 3)) W^T + b``, as one function
    node whose gradients are computed with the same array operations as Chainer's ``Mean`` and
    ``LinearFunction`` (so the numbers are theirs)."""

    def forward(self, inputs):
        h, W, b = inputs
        self.retain_inputs((1,))               # W; of h only its shape is needed
        self._h_shape = h.shape
        self._hw = h.shape[2] * h.shape[3]
        self._pooled = pooled = h.mean(axis=(2, 3))
        y = pooled.dot(W.T).astype(h.dtype, copy=False)
        y += b
        return y,

    def backward(self, indexes, grad_outputs):
        W, = self.get_retained_inputs()
        gy = grad_outputs[0].array
        xp = chainer.backend.get_array_module(gy)
        grads = []
        if 0 in indexes:
            g_pooled = gy.dot(W.array).astype(gy.dtype, copy=False)
            g_pooled *= 1.0 / self._hw
            grads.append(chainer.Variable(xp.broadcast_to(
                g_pooled[:, :, None, None], self._h_shape)))
        if 1 in indexes:
            grads.append(chainer.Variable(gy.T.dot(self._pooled).astype(W.dtype, copy=False)))
        if 2 in indexes:
            grads.append(chainer.Variable(gy.sum(axis=0)))
        return tuple(grads)


def pool_linear(h, W, b):
    """Global average pooling of ``h`` (N, C, H, W) then ``x W^T + b``: (N, classes)."""
    return PoolLinear().apply((h, W, b))[0]


def _conv(in_channels, out_channels, ksize, stride):
    """A bias-free, He-normal convolution with 'same' padding for odd ``ksize`` and a
    C-contiguous output."""
    return ContiguousConvolution2D(in_channels, out_channels, ksize, stride=stride, pad=ksize // 2,
                                   nobias=True, initialW=chainer.initializers.HeNormal())


class PreActBlock(chainer.Chain):
    """One pre-activation basic block.

    Maps (N, in_channels, H, W) to (N, out_channels, H / stride, W / stride). With
    ``projection=True`` the shortcut is a 1x1 convolution of ``relu(bn1(x))``, otherwise it is
    ``x`` (which then needs ``in_channels == out_channels`` and ``stride == 1``)."""

    def __init__(self, in_channels, out_channels, stride=1, projection=False):
        super().__init__()
        if not projection and (in_channels != out_channels or stride != 1):
            raise ValueError('an identity shortcut needs equal widths and stride 1')
        self.projection = projection
        with self.init_scope():
            self.bn1 = L.BatchNormalization(in_channels)
            self.conv1 = _conv(in_channels, out_channels, 3, stride)
            self.bn2 = L.BatchNormalization(out_channels)
            self.conv2 = _conv(out_channels, out_channels, 3, 1)
            if projection:
                self.shortcut = _conv(in_channels, out_channels, 1, stride)

    def forward(self, x, groups=1):
        h = batch_norm_relu(self.bn1, x, groups)
        skip = self.shortcut(h) if self.projection else x
        h = self.conv1(h)
        h = self.conv2(batch_norm_relu(self.bn2, h, groups))
        return h + skip


class PreActResNet(chainer.Chain):
    """Pre-activation ResNet: ``n_blocks`` blocks per stage, one stage per entry of ``widths``.

    Args:
        n_blocks (int): blocks per stage.
        widths (sequence of int): output channels of each stage.
        n_classes (int): number of logits.
        in_channels (int): channels of the input images.

    ``forward(x)`` takes float images (N, in_channels, H, W) and returns logits (N, n_classes)."""

    def __init__(self, n_blocks, widths, n_classes, in_channels=3):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if n_blocks < 1 or not widths:
            raise ValueError('need at least one stage of at least one block')
        with self.init_scope():
            self.conv = _conv(in_channels, widths[0], 3, 1)
            self.blocks = chainer.ChainList()
            previous = widths[0]
            for stage, width in enumerate(widths):
                for b in range(n_blocks):
                    first = b == 0
                    stride = 2 if first and stage > 0 else 1
                    self.blocks.add_link(
                        PreActBlock(previous, width, stride=stride, projection=first))
                    previous = width
            self.bn = L.BatchNormalization(widths[-1])
            self.fc = L.Linear(widths[-1], n_classes)

    #: ``forward`` takes ``groups``: independent slices of the batch (:func:`batch_norm_relu`).
    supports_batch_groups = True

    def forward(self, x, groups=1):
        """Logits of ``x``; with ``groups`` G > 1 the batch is G equal slices whose batch
        normalisation statistics (and running-average updates) are their own, as if each slice
        went through the network by itself, one after the other."""
        h = self.conv(x)
        for block in self.blocks:
            h = block(h, groups)
        h = batch_norm_relu(self.bn, h, groups)
        if chainers_own(self):
            return self.fc(F.mean(h, axis=(2, 3)))
        return pool_linear(h, self.fc.W, self.fc.b)


def preact_resnet32(n_classes=10, in_channels=3):
    """The paper's PreAct ResNet-32: 3 stages x 5 blocks, widths 32/64/128 (the network of
    Tanaka et al.'s code, whose numbers the paper compares with)."""
    return PreActResNet(5, (32, 64, 128), n_classes, in_channels=in_channels)
