"""Test configuration: Chainer is imported through the package's guard first, float32 is in
force on a GPU, and the markers that Chainer's testing helpers use are registered."""
import chainer_compat  # noqa: F401  (before any chainer import)

from reproduce.run import precision

# The GPU tests compare float32 numbers: no TF32 in cuBLAS or cuDNN (set before CUDA starts).
precision.use_tf32(False)


def pytest_configure(config):
    config.addinivalue_line('markers', 'gpu: needs CuPy and a GPU (skipped without them)')
    config.addinivalue_line('markers', 'slow: end-to-end runs, left out of a plain `pytest tests` '
                                       '(pytest.ini); make test runs them with -m slow')
    config.addinivalue_line('markers', 'regression: compares a trained configuration with '
                                       'recorded numbers (make test runs it under two kernels)')
