"""datasets."""
import chainer_compat  # noqa: F401  (must precede the first chainer import)
