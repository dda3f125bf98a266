"""Table 3 of the paper: test accuracy on CIFAR-10 with asymmetric label noise.

    python reproduce/table3.py                      # the paper's rates, 5 trials (device auto)
    python reproduce/table3.py --device @cupy:0     # the same on a GPU
    python reproduce/table3.py --dataset digits --epochs-scale 0.3 --rates 0.3,0.5 --trials 1

Prints the plan, runs what is not finished yet (step 1 once per rate and trial, both step-2
forks from it, and the baselines), then prints the table beside the published numbers and
writes it under results/ (JSON, Markdown, LaTeX, CSV, accuracy against noise rate, report.md).
See ``--help`` and :mod:`reproduce.tables`.
"""
import os
import sys

if __package__ in (None, ''):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chainer_compat  # noqa: F401,E402  (before chainer)
from reproduce import tables  # noqa: E402

if __name__ == '__main__':
    sys.exit(tables.main(3))
