"""Table 4 of the paper: test accuracy on Clothing1M (real label noise), ResNet-50 pre-trained on
ImageNet, the paper's settings (reproduce/hparams.py).

    python reproduce/table4.py --data-dir DATA/clothing1m --weights resnet50_imagenet.npz \
        --device @cupy:0
    python reproduce/table4.py ... --iterations-per-epoch 2000   # a random subset per epoch

Trains on the noisy set only, selects the epoch by the clean validation set and reports the clean
test accuracy ("best"; "last" is shown too, the paper gives only best). The rows this code does
not compute are quoted from the paper and marked. See README, "Clothing1M", for the files.
"""
import os
import sys

if __package__ in (None, ''):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chainer_compat  # noqa: F401,E402  (before chainer)
from reproduce import tables  # noqa: E402

if __name__ == '__main__':
    sys.exit(tables.main(4))
