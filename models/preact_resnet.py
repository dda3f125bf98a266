"""Pre-activation ResNet for 32x32 images (the paper's "PreAct ResNet-32").

Layout (see DESIGN.md, "The network"):

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
"""
import chainer
import chainer.functions as F
import chainer.links as L


def _conv(in_channels, out_channels, ksize, stride):
    """A bias-free, He-normal convolution with 'same' padding for odd ``ksize``."""
    return L.Convolution2D(in_channels, out_channels, ksize, stride=stride, pad=ksize // 2,
                           nobias=True, initialW=chainer.initializers.HeNormal())


class PreActBlock(chainer.Chain):
    """One pre-activation basic block.

    Maps (N, in_channels, H, W) to (N, out_channels, H / stride, W / stride). With
    ``projection=True`` the shortcut is a 1x1 convolution of ``relu(bn1(x))``, otherwise it is
    ``x`` (which then needs ``in_channels == out_channels`` and ``stride == 1``).
    """

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

    def forward(self, x):
        h = F.relu(self.bn1(x))
        skip = self.shortcut(h) if self.projection else x
        h = self.conv1(h)
        h = self.conv2(F.relu(self.bn2(h)))
        return h + skip


class PreActResNet(chainer.Chain):
    """Pre-activation ResNet: ``n_blocks`` blocks per stage, one stage per entry of ``widths``.

    Args:
        n_blocks (int): blocks per stage.
        widths (sequence of int): output channels of each stage.
        n_classes (int): number of logits.
        in_channels (int): channels of the input images.

    ``forward(x)`` takes float images (N, in_channels, H, W) and returns logits (N, n_classes).
    """

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

    def forward(self, x):
        h = self.conv(x)
        for block in self.blocks:
            h = block(h)
        h = F.relu(self.bn(h))
        h = F.mean(h, axis=(2, 3))
        return self.fc(h)


def preact_resnet32(n_classes=10, in_channels=3):
    """The paper's PreAct ResNet-32: 3 stages x 5 blocks, widths 32/64/128 (the network of
    Tanaka et al.'s code, whose numbers the paper compares with)."""
    return PreActResNet(5, (32, 64, 128), n_classes, in_channels=in_channels)
