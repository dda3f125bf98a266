"""Table 2 of the paper: test accuracy on CIFAR-10 with symmetric label noise.

    python reproduce/table2.py                      # the paper's rates, 5 trials (device auto)
    python reproduce/table2.py --device @cupy:0     # the same on a GPU
    python reproduce/table2.py --dataset digits --epochs-scale 0.3 --rates 0.3,0.5 --trials 1

The paper's rows (no Forward T: add it with --methods): prints the plan, runs what is not
finished, prints the table beside the published numbers and writes it under results/; the code is
:mod:`reproduce.batch.tables`.
"""
import sys

from reproduce.batch import tables

if __name__ == '__main__':
    sys.exit(tables.main(2))
