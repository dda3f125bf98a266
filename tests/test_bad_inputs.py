"""Every bad input tried as a new user would, with the exit status and the one line it must give
(2: bad input, nothing ran or was created; 1: something failed while running, what was computed
is kept; 130: interrupted), and never a traceback. Then the rules that keep computed numbers: a
table is not replaced by an emptier one, files get the usual permissions, planning needs no data.
"""
import errno
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import time

import pytest

from reproduce import experiment, figure3, summarize
from reproduce.batch import tables
from reproduce.run import launch, preflight
from reproduce.tools import gpu_check
import atomic_files as atomic

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ['--dataset', 'digits', '--trials', '1', '--epochs-scale', '0.05', '--device', '@numpy']
#: ... where runs finish and nothing asserted needs a trained network: two batches an epoch.
SHORT = ['--iterations-per-epoch', '2']


def table2(argv):
    """``reproduce/table2.py argv`` in this process: (exit status, stderr lines, stdout)."""
    return tables.main(2, argv)


def _status(call, capsys):
    """Runs ``call`` (a main function); returns (exit status, stderr, stdout)."""
    try:
        status = call()
    except SystemExit as exit_info:
        status = exit_info.code if isinstance(exit_info.code, int) else 1
        if isinstance(exit_info.code, str):
            sys.stderr.write(exit_info.code + '\n')
    captured = capsys.readouterr()
    return status, captured.err, captured.out


#: (what is wrong, command, arguments, exit status, the one line: a regular expression)
BAD_INPUTS = [
    ('a rate of 1 without %', 'table2', ['--rates', '1'], 2,
     r'argument --rates: 1: give 0\.01 or 1% \(a fraction in \[0, 1\) or a percentage\)'),
    ('a percentage without %', 'table2', ['--rates', '0.5,50'], 2,
     r'argument --rates: 50: give 0\.5 or 50% \(a fraction in \[0, 1\) or a percentage\)'),
    ('a rate of 100 % or more', 'table2', ['--rates', '0.5,150'], 2,
     r'argument --rates: 150 is outside \[0, 1\) as a fraction and \[0%, 100%\) as a '
     r'percentage'),
    ('a percentage of 100 or more', 'table2', ['--rates', '100%'], 2,
     r'argument --rates: 100% is outside \[0, 1\) as a fraction and \[0%, 100%\)'),
    ('no rates', 'table2', ['--rates', ''], 2,
     r"argument --rates: takes comma-separated noise rates, got ''"),
    ('no methods', 'table2', ['--methods', ''], 2,
     r"argument --methods: takes a comma-separated list, got ''"),
    ('an unknown method', 'table2', ['--methods', 'ours,pencil2'], 2,
     r'argument --methods: unknown method\(s\) pencil2: this code computes cross_entropy, '),
    ('an unknown data set', 'table2', ['--dataset', 'mnist'], 2,
     r"argument --dataset: invalid choice: 'mnist'"),
    ('a bad device', 'table2', ['--device', '@nowhere'], 2,
     r"error: cannot use device '@nowhere' \(.*\): use '@numpy', '@cupy:<id>' or auto"),
    ('a bad device among several', 'table2', ['--devices', '@numpy,@bogus'], 2,
     r"error: cannot use device '@bogus'"),
    ('a negative epoch count', 'table2', ['--set', 'step1.epochs=-5'], 2,
     r'error: --set step1\.epochs must be in \[1, \.\.\.\), got -5'),
    ('a word for a number', 'table2', ['--set', 'step1.lr=fast'], 2,
     r'error: --set step1\.lr takes a number, got "fast"'),
    ('a setting that does not exist', 'table2', ['--set', 'step1.learning_rate=0.1'], 2,
     r'error: --set: unknown step1 setting\(s\) learning_rate: the step1 settings are '),
    ('a malformed setting', 'table2', ['--set', 'step1.lr'], 2,
     r'argument --set: takes PART\.KEY=VALUE with PART one of step1, step2, pencil'),
    ('a transition that is neither a name nor a file', 'table2', ['--transition', 'foo'], 2,
     r"error: --transition takes true, estimate or an existing \.npy file, got 'foo'"),
    ('a mix-up weight of 0', 'table2', ['--mixup-weight', '0'], 2,
     r'error: --mixup-weight must be positive, got 0: with weight 0 "ours" is exactly'),
    ('no trials', 'table2', ['--trials', '0'], 2, r'argument --trials: must be at least 1, got 0'),
    ('an empty output root (the current folder)', 'table2', ['--out', ''], 2,
     r"argument --out: takes a path, got ''"),
    ('an empty results folder', 'table2', ['--results', ' '], 2,
     r"argument --results: takes a path, got ' '"),
    ('an empty data folder (would download)', 'table2', ['--data-dir', ''], 2,
     r"argument --data-dir: takes a path, got ''"),
    ('an empty check file', 'table2', ['--check', ''], 2,
     r"argument --check: takes a path, got ''"),
    ('an empty run directory', 'experiment', ['--out', ''], 2,
     r"argument --out: takes a path, got ''"),
    ('a negative trial', 'experiment', ['--trial', '-1'], 2,
     r'argument --trial: must be at least 0, got -1'),
    ('a word for a number', 'experiment', ['--epochs-scale', 'fast'], 2,
     r"argument --epochs-scale: takes a number, got 'fast'"),
    ('real noise on synthetic data', 'experiment', ['--noise', 'real'], 2,
     r'error: digits takes symmetric or asymmetric noise, not .real.'),
    ('Clothing1M without its files', 'experiment', ['--dataset', 'clothing1m'], 2,
     r'error: clothing1m needs --data-dir: '),
    ('neither --out nor --root', 'experiment:noplace', [], 2,
     r'error: give one of --out \(the run directory\), --root'),
    ('a bad figure rate', 'figure3', ['--symmetric-rate', '1.2'], 2,
     r'argument --symmetric-rate: 1\.2: give 0\.012 or 1\.2% \(a fraction'),
    ('two empty figure panels', 'figure3', ['--symmetric-rate', 'none', '--asymmetric-rate',
                                            'none'], 2,
     r'--symmetric-rate and --asymmetric-rate are both none'),
    ('a settings file that is not one', 'experiment:noplace', ['--config', __file__], 2,
     r"error: .*test_bad_inputs.py is not a run's settings file"),
    ('a missing settings file', 'experiment:noplace', ['--config', 'missing/config.json'], 2,
     r'error: missing/config.json does not exist'),
    ('an unknown step to skip', 'gpu_check', ['--smoke', '--skip', 'tests,bogus'], 2,
     r'error: unknown step\(s\) bogus in --skip'),
]


@pytest.mark.parametrize('what, command, argv, code, line', BAD_INPUTS,
                         ids=[case[0] for case in BAD_INPUTS])
def test_a_bad_input_gives_one_line_and_its_status(what, command, argv, code, line, tmp_path,
                                                   capsys):
    out = str(tmp_path / 'runs')
    calls = {
        'table2': lambda: table2(TINY + ['--out', out, '--rates', '0.5'] + argv),
        'figure3': lambda: figure3.main(TINY + ['--out', out] + argv),
        'experiment': lambda: experiment.main(['--dataset', 'digits', '--out', out] + argv),
        'experiment:noplace': lambda: experiment.main(argv),
        'gpu_check': lambda: gpu_check.main(['--out', out, '--results', out] + argv),
    }
    status, err, _ = _status(calls[command], capsys)
    lines = [entry for entry in err.splitlines() if not entry.startswith('note:')]
    assert status == code, err
    assert len(lines) == 1 and re.search(line, lines[0]), err
    assert 'Traceback' not in err
    assert not os.path.exists(out)                     # nothing was created


def test_the_same_inputs_on_the_real_command_lines_give_no_traceback(tmp_path):
    """A few of the cases above, as subprocesses of the scripts users type (started together:
    each spends its time importing)."""
    started = [(script, subprocess.Popen(
        [sys.executable, os.path.join(ROOT, 'reproduce', script)] + argv, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))) for script, argv in (
            ('table2.py', ['--rates', '1']), ('table3.py', ['--set', 'step2.lr=0']),
            ('table4.py', ['--weights', 'none']),
            ('figure3.py', ['--methods', '']),
            ('experiment.py', ['--trial', '-1', '--out', str(tmp_path / 'x')]),
            ('benchmark.py', ['--warmup', 'x']),
            ('summarize.py', ['--name', 'x']),
            ('platform_spread.py', ['--table', '5', '--name', 'x']))]
    for script, process in started:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, (script, stderr)
        assert stderr.count('\n') == 1 and 'Traceback' not in stderr, stderr
        assert stderr.rstrip().endswith('(see --help)') or 'error:' in stderr
    assert not os.path.exists(tmp_path / 'x')


@pytest.mark.skipif(os.geteuid() == 0, reason='root writes into read-only folders')
def test_a_read_only_output_folder_is_named(tmp_path, capsys):
    locked = tmp_path / 'locked'
    locked.mkdir()
    locked.chmod(0o555)
    status, err, _ = _status(lambda: table2(TINY + ['--rates', '0.5', '--out', str(
        locked / 'runs')]), capsys)
    assert status == 2 and 'is not writable' in err and str(locked) in err


@pytest.mark.parametrize('option, path, cause', [
    ('--results', '/proc/x', 'is not writable'), ('--out', '/proc/foo', 'is not writable'),
    ('--out', '/sys/kernel/x', 'is not writable'),
    ('--results', '{file}/results', 'cannot be a folder: it lies inside the file')])
def test_every_place_written_is_tried_before_anything_runs(option, path, cause, tmp_path,
                                                            capsys):
    """Each command's output folders are tried (a folder made and removed: so also as root,
    where /proc and /sys refuse one) before the plan: one line naming the option, exit 2."""
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    path = path.format(file=a_file)
    places = {'--out': str(tmp_path / 'runs'), '--results': str(tmp_path / 'results')}
    places[option] = path
    argv = TINY + SHORT + [w for o, p in places.items() for w in (o, p)]
    for call in (lambda: table2(argv + ['--rates', '0.5']), lambda: figure3.main(argv)):
        status, err, out = _status(call, capsys)
        assert status == 2 and out == '', out              # not even the plan
        assert err.count('\n') == 1 and err.startswith('error: {} {} '.format(option, path))
        assert cause in err, err
    assert sorted(os.listdir(tmp_path)) == ['a_file']      # nothing made, nothing left


def test_figure3_stops_where_out_holds_none_of_its_runs(tmp_path, capsys):
    out = tmp_path / 'runs'
    argv = TINY + SHORT + ['--out', str(out), '--results', str(tmp_path / 'results'),
                           '--symmetric-rate', '0.5', '--asymmetric-rate', 'none']
    status, err, printed = _status(lambda: figure3.main(argv), capsys)
    assert status == 2 and printed == '' and err == (
        'error: --out {} holds none of the runs figure3.py draws: run table2.py and table3.py '
        'first (same options), or pass --train\n'.format(out))
    assert not out.exists()
    assert _status(lambda: figure3.main(argv + ['--plan']), capsys)[0] == 0   # trains nothing
    status, _, printed = _status(lambda: figure3.main(argv + ['--methods', 'cross_entropy',
                                                             '--train', '--out', str(
                                                                 tmp_path / 'trained')]), capsys)
    assert status == 0 and '1 runs: 0 finished already, 1 to run' in printed
    # one of its runs there (the table's, with --methods): it trains the rest, as --train does
    assert _status(lambda: table2(TINY + SHORT + ['--out', str(out), '--results', str(
        tmp_path / 'results'), '--rates', '0.5', '--methods', 'cross_entropy']), capsys)[0] == 0
    status, _, printed = _status(lambda: figure3.main(argv + ['--methods',
                                                             'cross_entropy,pencil']), capsys)
    assert status == 0 and '2 runs: 1 finished already, 1 to run' in printed


def test_an_out_or_results_that_cannot_be_a_folder_is_named(tmp_path, capsys):
    a_file = tmp_path / 'a_file'
    a_file.write_text('x')
    status, err, _ = _status(lambda: table2(TINY + ['--rates', '0.5', '--out', str(a_file)]),
                             capsys)
    assert status == 2 and err == 'error: --out {} cannot be a folder: it is a file\n'.format(
        a_file)
    status, err, _ = _status(lambda: table2(TINY + ['--rates', '0.5', '--out', str(
        tmp_path / 'runs'), '--results', str(a_file / 'results')]), capsys)
    assert status == 2 and 'lies inside the file {}'.format(a_file) in err
    status, err, _ = _status(lambda: experiment.main(['--dataset', 'digits', '--out', str(
        a_file / 'run')]), capsys)
    assert status == 2 and 'lies inside the file' in err
    assert not os.path.exists(tmp_path / 'runs')


def test_duplicates_are_merged_with_a_note(tmp_path, capsys):
    argv = TINY + ['--out', str(tmp_path / 'runs'), '--print-commands']
    status, err, out = _status(lambda: table2(argv + ['--rates', '0.5,50%', '--methods',
                                                       'ours,ours,tanaka']), capsys)
    assert status == 0
    assert 'note: --rates 0.5 repeated an entry; each is counted once: 0.5' in err
    assert 'note: --methods ours repeated an entry; each is counted once: ours,tanaka' in err
    assert len(out.splitlines()) == 1            # one rate, one step-1 chain


def test_printed_commands_keep_the_device_as_given(tmp_path, capsys):
    status, _, out = _status(lambda: table2(
        ['--dataset', 'digits', '--trials', '1', '--rates', '0.5', '--out',
         str(tmp_path / 'runs'), '--print-commands']), capsys)
    assert status == 0
    for line in out.splitlines():
        words = shlex.split(line)
        assert words[words.index('--device') + 1] == 'auto'


def test_planning_cifar10_needs_no_data_and_no_network(tmp_path, capsys, monkeypatch):
    """--print-commands for CIFAR-10 works where the data are absent and nothing can be
    downloaded; running the table then says in one line where to put the data."""
    import chainer
    import urllib.error

    def offline(*args, **kwargs):
        raise urllib.error.URLError('no network here')
    monkeypatch.setattr(chainer.dataset.download, 'cached_download', offline)
    monkeypatch.setenv('CHAINER_DATASET_ROOT', str(tmp_path / 'dataset-root'))
    chainer.dataset.set_dataset_root(str(tmp_path / 'dataset-root'))
    argv = ['--trials', '1', '--rates', '0.5', '--out', str(tmp_path / 'runs')]
    printed = ['--trials', '1', '--rates', '0.5', '--out', str(tmp_path / 'printed')]
    status, _, out = _status(lambda: table2(printed + ['--print-commands']), capsys)
    assert status == 0 and len(out.splitlines()) == 3   # Table 2's rows: step 1 chain, CE, PENCIL
    for line in out.splitlines():           # each starts its run from the config.json written
        words = shlex.split(line)
        assert os.path.isfile(words[words.index('--config') + 1])
    status, _, out = _status(lambda: figure3.main(['--trials', '1', '--out', str(
        tmp_path / 'printed'), '--print-commands']), capsys)
    assert status == 0 and len(out.splitlines()) == 7   # and Table 3's, with Forward T
    status, err, _ = _status(lambda: table2(argv + ['--device', '@numpy']), capsys)
    assert status == 2 and err.count('\n') == 1
    assert 'could not be downloaded' in err and 'no network here' in err
    assert 'give the folder that holds it with --data-dir' in err
    assert not os.path.exists(tmp_path / 'runs')


def test_cifar10_errors_speak_of_the_command_line(tmp_path, capsys):
    status, err, _ = _status(lambda: table2(['--data-dir', str(tmp_path), '--trials', '1',
                                             '--rates', '0.5', '--out', str(tmp_path / 'r')]),
                             capsys)
    assert status == 2 and '--data-dir' in err and 'data_dir=None in Python' in err


def test_help_states_every_default_once_and_readably():
    for parser in (tables.parser(2), figure3.parser(), experiment.parser()):
        text = parser.format_help()
        assert text.count('(default: None)') == 0
        for block in re.split(r'\n  (?=-)', text):
            assert block.count('(default:') <= 1, block
    assert "(default: all; a table script: the paper's rows" in ' '.join(
        tables.parser(2).format_help().split())
    assert "('cross_entropy'" not in tables.parser(2).format_help()


def test_a_disk_that_fills_up_is_one_line_and_the_table_on_disk_stays(tmp_path, capsys,
                                                                      monkeypatch):
    results = tmp_path / 'results'
    results.mkdir()
    (results / 'table2.json').write_text('{"kept": true}')

    def full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    monkeypatch.setattr(atomic, 'write_json', full)
    monkeypatch.setattr(tables, 'finished_results', lambda table: 1)   # as if a run had finished
    status, err, _ = _status(lambda: table2(TINY + ['--rates', '0.5', '--out', str(
        tmp_path / 'runs'), '--results', str(results), '--gather-only']), capsys)
    assert status == 1 and err.count('\n') == 1
    assert 'table2.json: No space left on device: free some space' in err
    assert json.loads((results / 'table2.json').read_text()) == {'kept': True}


def test_a_table_is_never_replaced_by_an_emptier_one(tmp_path, capsys):
    results = tmp_path / 'results'
    argv = TINY + SHORT + ['--rates', '0.5', '--out', str(tmp_path / 'runs'), '--results',
                           str(results)]
    # nothing finished: nothing written, and the missing runs counted
    status, err, out = _status(lambda: table2(argv + ['--gather-only']), capsys)
    assert status == 1 and 'nothing written: no run has finished yet' in out
    assert '3 of 3 planned runs are not finished' in out
    assert not results.exists()
    # a table with more trial results on disk is kept; this one goes beside it
    status, _, out = _status(lambda: table2(argv + ['--methods', 'cross_entropy']), capsys)
    assert status == 0 and (results / 'table2.json').exists()
    before = (results / 'table2.json').read_text()
    (tmp_path / 'runs' / 'digits-x0.05-i2' / 'symmetric-50' / 'trial0' / 'cross_entropy' /
     'result.json').unlink()
    status, _, out = _status(lambda: table2(argv + ['--methods', 'cross_entropy',
                                                    '--gather-only']), capsys)
    assert 'nothing written' in out and (results / 'table2.json').read_text() == before
    mode = stat.S_IMODE(os.stat(results / 'table2.json').st_mode)
    assert mode == 0o666 & ~_umask()                   # 0644 under the usual umask


def test_a_richer_table_on_disk_is_kept_and_the_new_one_written_beside_it(tmp_path, capsys):
    results = tmp_path / 'results'
    argv = TINY + SHORT + ['--rates', '0.5', '--out', str(tmp_path / 'runs'), '--results',
                           str(results)]
    assert _status(lambda: table2(argv + ['--methods', 'cross_entropy,forward_t', '--jobs', '2']),
                   capsys)[0] == 0
    before = (results / 'table2.json').read_text()
    ce = tmp_path / 'runs' / 'digits-x0.05-i2' / 'symmetric-50' / 'trial0' / 'cross_entropy'
    (ce / 'result.json').unlink()
    status, _, out = _status(lambda: table2(argv + ['--methods', 'cross_entropy,forward_t',
                                                    '--gather-only']), capsys)
    assert status == 0 and (results / 'table2.json').read_text() == before
    assert 'holds 4 trial results, this table 2: it was kept' in out
    assert (results / 'table2.partial.json').exists() and (results / 'table2.partial.md').exists()
    # the complete table again: its partial files go, and report.md lists the complete one
    assert _status(lambda: table2(argv + ['--methods', 'cross_entropy,forward_t']),
                   capsys)[0] == 0
    assert not [name for name in os.listdir(results) if '.partial' in name]
    assert 'table2.partial' not in (results / 'report.md').read_text()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_ctrl_c_in_a_single_run_stops_cleanly_with_the_command_that_resumes_it(tmp_path):
    out = tmp_path / 'run'
    command = [sys.executable, os.path.join(ROOT, 'reproduce', 'experiment.py'), '--dataset',
               'digits', '--methods', 'cross_entropy', '--device', '@numpy', '--out', str(out),
               '--iterations-per-epoch', '20']   # 30 epochs of 20 batches: a minute or more,
    # so that the signal comes first even on a loaded machine (it comes after the first epoch);
    # SIGINT at its default in the run, even where this test's shell ignores it (a background job)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    snapshot = out / 'cross_entropy' / 'snapshot.npz'
    deadline = time.time() + 120
    while not snapshot.exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    seen = snapshot.exists()
    process.send_signal(signal.SIGINT)
    out_text, err = process.communicate(timeout=120)
    assert process.returncode == 130 and 'Traceback' not in err, (
        'exit {}, snapshot seen before the signal: {}\nstdout: {}\nstderr: {}'.format(
            process.returncode, seen, out_text[-1500:], err))
    assert 'interrupted: every finished epoch is in its snapshot under {}'.format(out) in err
    resume = shlex.split(err.strip().splitlines()[-1])
    assert resume[:2] == [sys.executable, os.path.join(ROOT, 'reproduce', 'experiment.py')]
    assert resume[resume.index('--out') + 1] == str(out) and snapshot.exists()


def test_summarize_refuses_a_folder_without_runs_in_one_line(tmp_path, capsys):
    status, err, _ = _status(lambda: summarize.main([str(tmp_path), '--name', 'x', '--dest',
                                                     str(tmp_path / 'd')]), capsys)
    assert status == 1 and err.count('\n') == 1 and 'holds no finished run' in err


def test_the_step1_figure_draws_the_planned_runs_only(tmp_path):
    from reproduce.batch import runner
    base = dict(dataset='digits', noise='symmetric', epochs_scale=0.05, progress=False)
    units = runner.plan(base, [0.5], [0], ('ours',), str(tmp_path))
    history = {'epoch': [1, 2], 'accuracy': [0.6, 0.7], 'fixed': [0, 0], 'broken': [0, 0]}
    planned = os.path.join(units[0].run_dir, 'step1')
    stray = os.path.join(str(tmp_path), 'digits-x0.05', 'symmetric-80', 'trial3', 'step1')
    for folder in (planned, stray):
        atomic.write_json(os.path.join(folder, 'label_accuracy.json'), history)
    assert list(figure3.label_accuracy_series(units)) == ['symmetric 50%']


def test_each_attempt_in_a_run_log_is_marked(tmp_path):
    from reproduce.batch import runner
    base = dict(dataset='digits', noise='symmetric', epochs_scale=0.05, progress=False,
                device='@numpy', iterations_per_epoch=2)
    units = runner.plan(base, [0.5], [0], ('cross_entropy', 'pencil'), str(tmp_path))
    for _ in range(2):
        assert runner.execute(units, jobs=2, stream=open(os.devnull, 'w')) == []
        for unit in units:                   # run again from the start: a second attempt
            os.remove(os.path.join(unit.run_dir, unit.parts[0], 'result.json'))
    text = open(units[0].log_path).read()
    assert text.count('=== attempt started') == 2 and '--methods cross_entropy' in text


def test_a_resumed_part_is_named_as_the_user_knows_it(tmp_path, capsys):
    config = experiment.RunConfig(dataset='digits', rate=0.4, epochs_scale=0.05,
                                  iterations_per_epoch=2)
    out = str(tmp_path / 'run')
    launch.run(config, out, methods=['tanaka'])
    os.remove(os.path.join(out, 'step1', 'result.json'))
    capsys.readouterr()
    launch.run(config, out, methods=['tanaka'])
    assert 'step1 (for tanaka and ours): resuming after epoch 2 of 2' in capsys.readouterr().out


def test_summarize_refuses_a_bad_name_or_destination_and_keeps_an_existing_summary(
        tmp_path, capsys):
    runs = tmp_path / 'runs'
    runs.mkdir()
    for name in ('', 'a/b', '.hidden'):
        status, err, _ = _status(lambda: summarize.main([str(runs), '--name', name, '--dest',
                                                         str(tmp_path / 'd')]), capsys)
        assert status == 2 and err.count('\n') == 1
        assert 'argument --name: takes a plain file name' in err
    (tmp_path / 'file').write_text('x')
    status, err, _ = _status(lambda: summarize.main([str(runs), '--name', 'x', '--dest',
                                                     str(tmp_path / 'file')]), capsys)
    assert status == 2 and err == 'error: --dest {} cannot be a folder: it is a file\n'.format(
        tmp_path / 'file')
    dest = tmp_path / 'd'
    dest.mkdir()
    (dest / 'x.json').write_text('{"kept": true}')
    status, err, _ = _status(lambda: summarize.main([str(runs), '--name', 'x', '--dest',
                                                     str(dest)]), capsys)
    assert status == 2 and err.count('\n') == 1 and 'x.json exists and is kept' in err
    assert (dest / 'x.json').read_text() == '{"kept": true}' and not (dest / 'x.md').exists()
    assert not (tmp_path / 'd' / '.json').exists()


def test_a_missing_data_folder_is_the_one_line_before_any_plan(tmp_path, capsys):
    """Table 4 with a Clothing1M folder that does not exist: the error, no plan above it (the
    plan alone, --plan, needs no data)."""
    argv = ['--data-dir', str(tmp_path / 'nowhere'), '--weights', 'none', '--device', '@numpy',
            '--out', str(tmp_path / 'runs'), '--results', str(tmp_path / 'results')]
    status, err, out = _status(lambda: tables.main(4, argv), capsys)
    assert status == 2 and err.count('\n') == 1 and 'does not exist' in err, err
    assert out == ''
    status, err, out = _status(lambda: tables.main(4, argv + ['--plan']), capsys)
    assert status == 0 and out.startswith('rows: ') and '\nplan: ' in out and err == ''
    assert not os.path.exists(tmp_path / 'runs')


def test_paths_are_shown_relative_only_below_the_working_folder():
    assert preflight.shown(os.path.join(os.getcwd(), 'results', 'table2.json')) == os.path.join(
        'results', 'table2.json')
    outside = os.path.dirname(os.getcwd()) + os.sep + 'elsewhere'
    assert preflight.shown(outside) == outside        # not ../elsewhere
