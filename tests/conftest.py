"""Test configuration: Chainer is imported through the package's guard first, float32 is in
force on a GPU, and the markers that Chainer's testing helpers use are registered. The work of
the selected tests that runs in processes of its own (tests/background.py) starts with the
session; OpenBLAS runs one thread in this process and the processes it starts (unless the
environment says otherwise), since the tests use the cores by running beside each other."""
import os

# Before numpy loads: OpenBLAS's idle threads would spin on the core that the work beside them
# needs (a run does not train faster on the CPU with a second thread, measured).
os.environ.setdefault('OPENBLAS_NUM_THREADS', '1')

import chainer_compat  # noqa: E402,F401  (before any chainer import)

import pytest  # noqa: E402

import background  # noqa: E402
from reproduce.run import precision  # noqa: E402

# The GPU tests compare float32 numbers: no TF32 in cuBLAS or cuDNN (set before CUDA starts).
precision.use_tf32(False)


def pytest_configure(config):
    config.addinivalue_line('markers', 'gpu: needs CuPy and a GPU (skipped without them)')
    config.addinivalue_line('markers', 'slow: end-to-end runs, left out of a plain `pytest tests` '
                                       '(pytest.ini); make test runs them with -m slow')
    config.addinivalue_line('markers', 'regression: compares a trained configuration with '
                                       'recorded numbers (make test runs it under two kernels)')


@pytest.fixture(scope='session', autouse=True)
def background_work(request, tmp_path_factory):
    """Starts, before the first test, the background work (tests/background.py) of the selected
    tests; work still running when the session ends is stopped."""
    queue = background.Queue(background.in_order_to_start(request.session.items),
                             tmp_path_factory)
    yield queue
    queue.stop()
