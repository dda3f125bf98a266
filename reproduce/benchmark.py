"""How fast the training pipeline runs, per part, on CIFAR-10-shaped data (``--help``); the code
is :mod:`reproduce.tools.benchmark`."""
from reproduce.tools import benchmark

if __name__ == '__main__':
    benchmark.main()        # returns the result, not an exit status
