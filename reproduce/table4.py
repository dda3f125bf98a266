"""Table 4 of the paper: test accuracy on Clothing1M (real label noise), ResNet-50 pre-trained on
ImageNet, the paper's settings (reproduce/run/hparams.py).

    python reproduce/table4.py --data-dir DATA/clothing1m --weights resnet50_imagenet.npz \
        --device @cupy:0
    python reproduce/table4.py ... --iterations-per-epoch 2000   # a random subset per epoch

Trains on the noisy set only and reports the clean test accuracy at the best clean validation
epoch ("best"; "last" too, which the paper lacks). Rows this code does not compute are quoted from
the paper and marked. Preparing the files: datasets/README.md.
"""
import sys

from reproduce.batch import tables

if __name__ == '__main__':
    sys.exit(tables.main(4))
