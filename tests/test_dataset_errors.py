"""A damaged data file stops a command with one line naming the file (and its entry), not a
traceback: the loaders raise datasets.errors.DataError (a ValueError) or FileNotFoundError, and
the commands print both as one ``error:`` line."""
import numpy
import pytest
from PIL import Image

from datasets import clothing1m
from datasets.errors import DataError
from reproduce import experiment
from reproduce.run import preflight


def _run(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(argv)
    return exit_info.value.code, capsys.readouterr().err


def test_a_damaged_cifar10_batch_is_one_line_naming_it(tmp_path, capsys):
    folder = tmp_path / 'cifar-10-batches-py'
    folder.mkdir()
    for name in ('data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5',
                 'test_batch', 'batches.meta'):
        (folder / name).write_bytes(b'\x80\x02}q\x00')          # a pickle cut short
    status, err = _run(['--dataset', 'cifar10', '--data-dir', str(tmp_path), '--device',
                        '@numpy', '--out', str(tmp_path / 'runs')], capsys)
    assert status == 2 and err.count('\n') == 1 and 'Traceback' not in err
    assert err.startswith('error: CIFAR-10 file {}'.format(folder / 'data_batch_1'))


def test_an_image_damaged_mid_run_is_one_line_naming_it_and_its_entry(tmp_path, capsys,
                                                                      monkeypatch):
    key = 'images/0/00/1,2.jpg'
    (tmp_path / 'images/0/00').mkdir(parents=True)
    Image.fromarray(numpy.zeros((40, 30, 3), numpy.uint8)).save(str(tmp_path / key), 'JPEG')
    content = (tmp_path / key).read_bytes()
    (tmp_path / key).write_bytes(content[:len(content) // 2])
    data = clothing1m.Clothing1MDataset(str(tmp_path), [key], [3], train=True,
                                        source=str(tmp_path / 'noisy_train_key_list.txt'))
    monkeypatch.setattr(experiment.launch, 'run', lambda *args, **kwargs: data[0])
    status, err = _run(['--dataset', 'digits', '--device', '@numpy', '--out',
                        str(tmp_path / 'runs')], capsys)
    assert err.count('\n') == 1 and 'Traceback' not in err and status != 0
    assert err.startswith('error: Clothing1M image {} (entry 0 of this split, listed in {}) '
                          'cannot be decoded'.format(tmp_path / key,
                                                     tmp_path / 'noisy_train_key_list.txt'))


@pytest.mark.parametrize('error', [DataError('f.txt, line 3: label 14 is outside 0-13'),
                                   FileNotFoundError('Clothing1M image x.jpg not found')])
def test_the_table_scripts_print_data_errors_as_one_line(error, capsys):
    def work():
        raise error
    status, result = preflight.guarded(work)
    assert (status, result) == (2, None)
    assert capsys.readouterr().err == 'error: {}\n'.format(error)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError) and not issubclass(DataError, OSError)
