"""Compare a table JSON with a recorded one, trial by trial; exit 0 held, 1 moved, 2 bad input.

The code: :mod:`reproduce.report.regression`."""
import sys

from reproduce.report import regression

if __name__ == '__main__':
    sys.exit(regression.main())
