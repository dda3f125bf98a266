"""The GPU acceptance check: tests, training, parity, speed and memory on a GPU machine
(``--help``); the code is :mod:`reproduce.tools.gpu_check`."""
import sys

from reproduce.tools import gpu_check

if __name__ == '__main__':
    sys.exit(gpu_check.main())
