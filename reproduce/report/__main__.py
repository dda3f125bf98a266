"""``python -m reproduce.report``: report.md of a results folder, or README's results blocks
(``--readme [--check]``); the code is :mod:`reproduce.report.page`."""
import sys

from reproduce.report import page

sys.exit(page.main())
