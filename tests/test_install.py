import subprocess
import sys


def test_chainer_imports_quietly_from_every_package():
    code = ('import warnings; warnings.simplefilter("error");'
            'import datasets, models, updaters, reproduce, chainer;'
            'print(chainer.__version__)')
    out = subprocess.run([sys.executable, '-W', 'error', '-c', code],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '7.8.1'
    assert out.stderr == ''
