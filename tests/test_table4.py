"""reproduce/table4.py end to end on a tiny Clothing1M-format directory (real annotation lines,
generated JPEGs), with the real ResNet-50 from random weights and one iteration per epoch (run
beside the session's other tests: tests/background.py)."""
import contextlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy
import pytest
from PIL import Image

import background
from reproduce.batch import tables

FIXTURES = Path(__file__).parent / 'fixtures' / 'clothing1m'


def _keys(name, n):
    return [line for line in (FIXTURES / name).read_text().split('\n') if line][:n]


def make_clothing(root):
    """A tiny Clothing1M-format directory at ``root``: 4 training images, 2 validation, 2 test."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / 'clean_label_kv.txt', root / 'clean_label_kv.txt')
    train, val, test = (_keys('clean_train_key_list.txt', 4), _keys('clean_val_key_list.txt', 2),
                        _keys('clean_test_key_list.txt', 2))
    (root / 'noisy_train_key_list.txt').write_text('\n'.join(train) + '\n')
    (root / 'noisy_label_kv.txt').write_text(
        ''.join('{} {}\n'.format(key, (5 * i) % 14) for i, key in enumerate(train)))
    (root / 'clean_val_key_list.txt').write_text('\n'.join(val) + '\n')
    (root / 'clean_test_key_list.txt').write_text('\n'.join(test) + '\n')
    rng = numpy.random.RandomState(0)
    for key in train + val + test:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.randint(0, 256, (30, 40, 3)).astype(numpy.uint8)).save(str(path))
    return root


@pytest.fixture(scope='module')
def clothing(tmp_path_factory):
    return make_clothing(tmp_path_factory.mktemp('clothing1m'))


def run_table4(folder):
    """The table script on the tiny directory: its exit status, its printed output and the
    folders of its runs and results."""
    out, res = os.path.join(folder, 'runs'), os.path.join(folder, 'results')
    argv = ['--data-dir', str(make_clothing(os.path.join(folder, 'clothing1m'))), '--weights',
            'none', '--iterations-per-epoch', '1', '--epochs-scale', '0.1', '--device', '@numpy',
            '--out', out, '--results', res, '--loader-threads', '2', '--methods',
            'cross_entropy,forward_t,pencil,ours']
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = tables.main(4, argv)
    return {'status': status, 'printed': printed.getvalue(), 'out': out, 'res': res}


table4_run = background.call('table4_run', 'test_table4', 'run_table4', cost=80)


@pytest.mark.slow
def test_table4_runs_the_computed_rows_and_quotes_the_others(table4_run):
    done = table4_run[1]
    out, res = done['out'], done['res']
    assert done['status'] == 0
    printed = done['printed']
    assert 'SUBSAMPLED' in printed and 'NOT PRE-TRAINED' in printed
    with open(os.path.join(res, 'table4.json')) as f:
        table = json.load(f)
    rows = {row['method']: row for row in table['rows']}
    assert rows['forward_t']['label'].endswith('(estimated T)')
    assert rows['forward_t']['best'][0]['paper'] == 69.84
    assert rows['pencil']['best'][0]['paper'] == 73.49
    run_dir = os.path.join(out, 'clothing1m-x0.1-i1', 'real', 'trial0')
    assert rows['tanaka']['status'] == 'not run'       # left out to keep the test short
    for method in ('cross_entropy', 'forward_t', 'pencil', 'ours'):
        assert rows[method]['status'] == 'computed'
        cell = rows[method]['best'][0]
        with open(os.path.join(run_dir, method, 'result.json')) as f:
            result = json.load(f)
        assert cell['n'] == 1 and cell['mean'] == pytest.approx(100 * result['best_test'])
        assert cell['paper'] is not None and cell['diff'] == pytest.approx(
            cell['mean'] - cell['paper'])
        assert result['config']['iterations_per_epoch'] == 1
        assert result['epochs'] == (3 if method == 'pencil' else 1)   # PENCIL: 5/10/10 x 0.1
    # Forward T's matrix: estimated from the cross-entropy network, saved, and trained with
    with open(os.path.join(run_dir, 'forward_t', 'result.json')) as f:
        transition = json.load(f)['transition']
    saved = numpy.load(os.path.join(run_dir, 'forward_t', 'transition.npy'))
    assert transition['source'] == 'estimated' and saved.shape == (14, 14)
    numpy.testing.assert_allclose(transition['matrix'], saved)
    numpy.testing.assert_allclose(saved.sum(axis=1), 1, rtol=1e-5)
    assert (saved >= 0).all()
    with numpy.load(os.path.join(run_dir, 'pencil', 'labels.npz')) as f:
        assert f['soft'].shape == (4, 14)
    with open(os.path.join(run_dir, 'step1', 'result.json')) as f:
        labels = json.load(f)['labels']
    assert 0 <= labels['noisy_accuracy'] <= 1      # all 4 training images have a clean label
    assert table['provenance']['iterations_per_epoch'] == 1
    assert table['provenance']['pretrained_weights'] is False


def test_table4_names_a_missing_file_in_one_line(clothing, tmp_path, capsys):
    argv = ['--data-dir', str(tmp_path), '--weights', 'none', '--out', str(tmp_path / 'runs')]
    assert tables.main(4, argv) == 2
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and 'does not exist' not in error
    assert 'annotation file' in error
    argv = ['--data-dir', str(clothing), '--weights', str(tmp_path / 'r50.npz'),
            '--out', str(tmp_path / 'runs')]
    assert tables.main(4, argv) == 2
    assert 'ResNet-50 weights file' in capsys.readouterr().err


def test_table4_refuses_a_true_matrix_and_unknown_settings(clothing, tmp_path, capsys):
    argv = ['--data-dir', str(clothing), '--weights', 'none', '--out', str(tmp_path / 'runs')]
    assert tables.main(4, argv + ['--methods', 'forward_t', '--transition', 'true']) == 2
    assert 'no true noise transition matrix' in capsys.readouterr().err
    assert tables.main(4, argv + ['--set', 'pencil.label_rate=3000']) == 2
    error = capsys.readouterr().err
    assert 'unknown pencil setting(s) label_rate' in error and 'label_lr' in error
    with pytest.raises(SystemExit) as exit_info:         # argparse: one line and a hint
        tables.main(4, argv + ['--set', 'pencil.label_lr'])
    assert exit_info.value.code == 2
    assert 'PART.KEY=VALUE' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'runs')   # nothing started
