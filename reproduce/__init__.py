"""Reproduction of "Improved Mix-up with KL-Entropy for Learning From Noisy Labels".

The commands sit here; the library in four subpackages whose imports run one way:
``run`` (one run) <- ``report`` (tables, figures, checks) <- ``batch`` (many runs) <- ``tools``
(benchmark, GPU check)."""
import os

import chainer_compat  # noqa: F401  (must precede the first chainer import)

#: The repository's root folder.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
