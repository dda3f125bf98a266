"""Chainer reproduction of "Improved Mix-up with KL-Entropy for Learning From Noisy Labels".

Chainer 7.8.1 ships only as an sdist whose setup.py imports ``pkg_resources``; build it with
setuptools < 70 (``make install`` does: it installs the build tools first and builds Chainer
without build isolation). At run time Chainer needs numpy < 2 (it uses ``np.sctypes``) and
``pkg_resources`` (setuptools < 82).
"""
from setuptools import setup

setup(
    name='mixup-kl-noisy-labels',
    version='0.1.0',
    description=('Joint-optimisation label correction followed by mix-up + KL fine-tuning '
                 '(learning from noisy labels), reproduced in Chainer'),
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    license='MIT',
    python_requires='>=3.9,<3.13',
    py_modules=['chainer_compat', 'atomic_files'],
    packages=['datasets', 'models', 'updaters', 'reproduce', 'reproduce.run', 'reproduce.report',
              'reproduce.batch', 'reproduce.tools'],
    install_requires=[
        'chainer==7.8.1',
        'numpy>=1.21,<2',
        'setuptools<82',
        'pillow',
        'matplotlib',
        'scikit-learn',
    ],
    extras_require={
        # The CUDA 12 libraries CuPy 13 opens, from their wheels, so that a driver is all the
        # system needs: cuBLAS (0.6 GB), NVRTC, cuRAND, cuDNN 8.9 (0.7 GB). CuPy 13 does not look
        # in the wheels; chainer_compat loads them from there before Chainer imports CuPy
        'cuda12': ['cupy-cuda12x>=13,<14'] + [
            wheel + '; platform_system == "Linux" and platform_machine == "x86_64"' for wheel in (
                'nvidia-cublas-cu12>=12,<13', 'nvidia-cuda-nvrtc-cu12>=12,<13',
                'nvidia-curand-cu12>=10.3,<11', 'nvidia-cudnn-cu12>=8.9,<9')],
        'cuda13': ['cupy-cuda13x>=13.6,<14'],
        'test': ['pytest>=7'],
    },
)
