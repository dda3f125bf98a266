"""Make Chainer 7.8.1 importable, quietly, on today's Python and NumPy.

Import this module before the first ``import chainer`` (every package of this project does so
in its ``__init__``). It deals with three things Chainer 7.8.1 trips over today:

* ``chainer/_environment_check.py`` imports ``numpy.distutils.system_info``, which NumPy 1.26 no
  longer provides on Python >= 3.12. Chainer uses it only for a macOS BLAS check, so where the
  import fails a stand-in module whose ``get_info`` finds nothing is registered instead.
* On Python <= 3.11 the same import, and Chainer's ``pkg_resources`` import, print deprecation
  warnings that concern Chainer's own code; they are silenced for the duration of the import only.
* Chainer compares the installed CuPy with the 7.x series it was released with and warns about
  CuPy 13, which works (see DESIGN.md); ``CHAINER_WARN_VERSION_MISMATCH=0`` turns that warning off
  unless the user has set the variable.
"""
import importlib
import os
import sys
import types
import warnings


def _install_numpy_distutils_stand_in():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            importlib.import_module('numpy.distutils.system_info')
        return False
    except ImportError:
        package = types.ModuleType('numpy.distutils')
        package.__path__ = []
        system_info = types.ModuleType('numpy.distutils.system_info')
        system_info.get_info = lambda name, notfound_action=0: {}
        package.system_info = system_info
        sys.modules['numpy.distutils'] = package
        sys.modules['numpy.distutils.system_info'] = system_info
        return True


def _import_chainer():
    os.environ.setdefault('CHAINER_WARN_VERSION_MISMATCH', '0')
    _install_numpy_distutils_stand_in()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        warnings.simplefilter('ignore', PendingDeprecationWarning)
        warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
        import chainer  # noqa: F401
    return chainer


chainer = _import_chainer()
