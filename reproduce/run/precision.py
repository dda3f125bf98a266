"""Float32 or TF32 on a GPU, decided by the environment before CUDA starts.

CuPy's ``CUPY_TF32`` reaches cuBLAS only; cuDNN 8 convolutions on Ampere and Hopper use TF32
unless ``NVIDIA_TF32_OVERRIDE=0`` is set before CUDA starts: float32 (the default) sets both,
``--tf32`` allows both. Call :func:`use_tf32` before the first GPU operation."""
import os

#: The variables, and their values in float32 mode.
FLOAT32 = {'CUPY_TF32': '0', 'NVIDIA_TF32_OVERRIDE': '0'}


def use_tf32(enabled, environ=None):
    """Float32 (``enabled`` False) or TF32 matrix products and convolutions for this process
    and its children, set in ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    if enabled:
        environ['CUPY_TF32'] = '1'
        environ.pop('NVIDIA_TF32_OVERRIDE', None)
    else:
        environ.update(FLOAT32)


def tf32_in_force(environ=None):
    """Whether the environment lets cuBLAS or cuDNN use TF32 (what the provenance records)."""
    environ = os.environ if environ is None else environ
    return environ.get('CUPY_TF32', '0') == '1' or environ.get('NVIDIA_TF32_OVERRIDE', '') != '0'
