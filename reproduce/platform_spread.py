"""Record a table with how far its numbers move across CPU numerics settings (``--help``); the
code is :mod:`reproduce.tools.platform_spread`."""
import sys

from reproduce.tools import platform_spread

if __name__ == '__main__':
    sys.exit(platform_spread.main())
