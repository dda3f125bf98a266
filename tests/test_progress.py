"""Progress output is plain text where no terminal reads it (a piped log, a cluster job)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_piped_run_prints_no_escape_codes(tmp_path):
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'reproduce', 'experiment.py'), '--dataset', 'digits',
         '--methods', 'cross_entropy', '--epochs-scale', '0.1', '--iterations-per-epoch', '2',
         '--device', '@numpy', '--out', str(tmp_path / 'run')],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert 'main/loss' in done.stdout                  # the per-epoch table is still printed
    assert '\x1b[' not in done.stdout
