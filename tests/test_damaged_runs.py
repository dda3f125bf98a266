"""Damaged run folders (issue 25): every file a run folder holds, truncated, empty, garbage or of
another run or part, costs one line: a one-line refusal (exit 2) where nothing can start safely,
else the file moved aside (renamed, never deleted) and the part started or finished again; and
gathering skips a damaged run in one line, never replacing a fuller table."""
import glob
import json
import os
import shutil

import numpy
import pytest

import background
from reproduce import experiment
from reproduce.batch import tables
from reproduce.run import rundir

pytestmark = pytest.mark.slow

#: A tiny run of every part a damaged file can touch: two batches an epoch.
RATE, METHODS = 0.4, 'cross_entropy,tanaka,ours,forward_t'
SETTINGS = ['--set', 'step1.epochs=3', '--set', 'step1.begin=2', '--set', 'step1.window=1',
            '--set', 'step2.epochs=2', '--set', 'step2.milestones=[1]']
OPTIONS = ['--dataset', 'digits', '--noise', 'symmetric', '--iterations-per-epoch', '2',
           '--transition', 'estimate', '--quiet', '--device', '@numpy'] + SETTINGS
STATES = ('truncated', 'empty', 'garbage', 'other')


def run(out, capsys, *extra):
    """``python -m reproduce.experiment`` on ``out``: (exit status, stderr lines)."""
    try:
        experiment.main(OPTIONS + ['--rate', str(RATE), '--methods', METHODS, '--out', out]
                        + list(extra))
        status = 0
    except SystemExit as stop:
        status = stop.code if isinstance(stop.code, int) else 1
        if isinstance(stop.code, str):
            print(stop.code, file=__import__('sys').stderr)
    return status, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def train_runs(base):
    """One finished run of every part above (trial 0) and, for 'of another run', the same
    configuration's run at another rate: [its folder, the other's]."""
    out, other = os.path.join(base, 'finished'), os.path.join(base, 'other')
    for where, rate in ((out, RATE), (other, 0.2)):
        experiment.main(OPTIONS + ['--rate', str(rate), '--methods', METHODS, '--out', where])
    return [out, other]


# trained beside the session's other tests (tests/background.py); the tests change copies
damaged_runs = background.call('damaged_runs', 'test_damaged_runs', 'train_runs', cost=12)


@pytest.fixture
def finished(damaged_runs):
    return damaged_runs[1]


def copy_of(finished, tmp_path):
    out = str(tmp_path / 'run')
    shutil.copytree(finished[0], out)
    return out


def damage(path, state, source=None):
    """Damages ``path`` in ``state``; ``source``: the file of another run or part for 'other'."""
    if state == 'truncated':
        with open(path, 'rb') as f:
            data = f.read()
        with open(path, 'wb') as f:
            f.write(data[:len(data) // 2])
    elif state == 'empty':
        open(path, 'wb').close()
    elif state == 'garbage':
        with open(path, 'wb') as f:
            f.write(b'\x00\xffnot what it should be\n' * 40)
    else:
        shutil.copyfile(source, path)


def aside(path):
    """The files ``path`` was moved aside to."""
    return glob.glob(path + '.damaged-*')


def result(out, part):
    with open(os.path.join(out, part, rundir.RESULT)) as f:
        return json.load(f)


# ----------------------------------------------------------------------------------------------
# The settings file: never replaced; damaged or another run's, the run is refused in one line


@pytest.mark.parametrize('state', STATES)
def test_a_damaged_settings_file_is_refused_in_one_line_and_left_alone(finished, tmp_path,
                                                                       capsys, state):
    out = copy_of(finished, tmp_path)
    path = os.path.join(out, rundir.CONFIG)
    damage(path, state, os.path.join(finished[1], rundir.CONFIG))
    with open(path, 'rb') as f:
        before = f.read()
    status, err = run(out, capsys)
    assert status == 2 and len(err) == 1 and 'Traceback' not in err[0], err
    assert path in err[0]
    assert ('other settings' if state == 'other' else 'is damaged') in err[0], err
    with open(path, 'rb') as f:
        assert f.read() == before                            # never replaced
    if state == 'other':      # another run's whole settings file is that run's: --config
        return                # starts that run (its results here, stamped, are not its own)
    for start in (['--config', path, '--methods', 'ours'],):   # the cluster command too
        try:
            experiment.main(start)
            status = 0
        except SystemExit as stop:
            status = stop.code
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert status == 2 and len(lines) == 1 and path in lines[0], lines


# ----------------------------------------------------------------------------------------------
# Starting and resuming: a part that can start again does, its damaged file moved aside


CASES = [
    # (file, state of its part: 'finished' or 'unfinished', what is said, the part that reruns)
    ('step1/result.json', 'finished', 'finishes again from its snapshot', 'step1'),
    ('ours/result.json', 'finished', 'finishes again from its snapshot', 'ours'),
    ('step1/labels.npz', 'finished', 'finishes again from its snapshot', 'step1'),
    ('cross_entropy/model.npz', 'finished', 'finishes again from its snapshot', 'cross_entropy'),
    ('forward_t/transition.npy', 'finished', 'finishes again from its snapshot', 'forward_t'),
    ('ours/snapshot.npz', 'unfinished', 'starts again from its first epoch', 'ours'),
    ('step1/snapshot.npz', 'unfinished', 'starts again from its first epoch', 'step1'),
    ('ours/log.json', 'unfinished', 'written again', 'ours'),
    ('ours/accuracy.json', 'unfinished', 'written again', 'ours'),
    ('step1/label_accuracy.json', 'unfinished', 'written again', 'step1'),
]
#: The file of another part or run that stands for 'of another run'.
OTHER = {'step1/result.json': 'finished:cross_entropy/result.json',
         'ours/result.json': 'finished:tanaka/result.json',
         'step1/labels.npz': 'finished:cross_entropy/model.npz',
         'cross_entropy/model.npz': 'finished:step1/labels.npz',
         'forward_t/transition.npy': 'finished:step1/labels.npz',
         'ours/snapshot.npz': 'finished:cross_entropy/snapshot.npz',
         'step1/snapshot.npz': 'other:step1/snapshot.npz',
         'ours/log.json': 'finished:ours/accuracy.json',
         'ours/accuracy.json': 'finished:ours/log.json',
         'step1/label_accuracy.json': 'finished:step1/log.json'}


@pytest.mark.parametrize('state', STATES)
@pytest.mark.parametrize('name, kind, said, rerun', CASES, ids=[c[0] for c in CASES])
def test_a_damaged_file_is_moved_aside_and_its_part_runs_again(finished, tmp_path, capsys,
                                                               name, kind, said, rerun, state):
    out = copy_of(finished, tmp_path)
    path = os.path.join(out, name)
    if kind == 'unfinished':                   # the part was stopped: no result yet
        os.remove(os.path.join(out, rerun, rundir.RESULT))
    which, source = OTHER[name].split(':')
    damage(path, state, os.path.join(finished[0] if which == 'finished' else finished[1],
                                     source))
    with open(path, 'rb') as f:
        damaged = f.read()
    kept = {p: result(finished[0], p) for p in ('step1', 'cross_entropy', 'tanaka', 'ours',
                                                'forward_t')}
    status, err = run(out, capsys)
    assert status == 0, err
    notes = [line for line in err if line.startswith('note: ')]
    assert err == notes and len(notes) >= 1, err               # one line per file moved
    assert any(name.split('/')[1] in line and said in line for line in notes), notes
    moved = aside(path)
    assert len(moved) == 1
    with open(moved[0], 'rb') as f:
        assert f.read() == damaged                             # renamed, never deleted
    assert rundir.problem(path) is None and rundir.read_result(os.path.join(out, rerun))
    for part, before in kept.items():                          # numbers as before
        if part == rerun and said.startswith('starts again'):
            assert result(out, part)['epochs'] == before['epochs']
        else:
            assert result(out, part)['best_test'] == before['best_test'], part


def test_a_lock_file_with_anything_in_it_does_not_stop_a_run(finished, tmp_path, capsys):
    out = copy_of(finished, tmp_path)
    os.remove(os.path.join(out, 'ours', rundir.RESULT))
    for state, part in zip(STATES[1:3], ('ours', 'tanaka')):
        damage(os.path.join(out, part, rundir.LOCK), state)
    status, err = run(out, capsys)
    assert status == 0 and err == [line for line in err if 'snapshot' in line] == [], err
    assert rundir.read_result(os.path.join(out, 'ours'))


def test_the_table_script_reruns_a_unit_whose_result_is_damaged(finished, tmp_path, capsys):
    """The runner counts a damaged result as unfinished, so the table script starts that unit,
    whose run moves the file aside and finishes the part again."""
    root = str(tmp_path / 'runs')
    argv = table_argv(root, str(tmp_path / 'results'))
    folder = os.path.join(root, config_name())
    shutil.copytree(finished[0], folder)
    damage(os.path.join(folder, 'ours', rundir.RESULT), 'truncated')
    assert tables.main(2, argv) == 0
    printed = capsys.readouterr().out
    assert '1 to run' in printed
    assert aside(os.path.join(folder, 'ours', rundir.RESULT))


# ----------------------------------------------------------------------------------------------
# Gathering: a damaged run is skipped in one line, a fuller table is never replaced


def config_name():
    config, _, _ = experiment.parse(OPTIONS + ['--rate', str(RATE), '--out', 'x'])
    return config.name()


def table_argv(root, results, rates=True):
    return ((['--rates', str(RATE)] if rates else []) +
            ['--trials', '1', '--methods', METHODS, '--out', root, '--results', results] +
            [w for w in OPTIONS if w not in ('--quiet', '--noise', 'symmetric')])


@pytest.mark.parametrize('state', STATES[:3])
def test_gathering_skips_a_damaged_result_in_one_line_and_keeps_the_fuller_table(
        finished, tmp_path, capsys, state):
    root, results = str(tmp_path / 'runs'), str(tmp_path / 'results')
    folder = os.path.join(root, config_name())
    shutil.copytree(finished[0], folder)
    argv = table_argv(root, results) + ['--gather-only']
    assert tables.main(2, argv) == 0
    capsys.readouterr()
    with open(os.path.join(results, 'table2.json')) as f:
        fuller = f.read()
    damage(os.path.join(folder, 'ours', rundir.RESULT), state)
    assert tables.main(2, argv) == 0
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if 'result.json' in line]
    assert len(skipped) == 1 and 'skipped' in skipped[0] and 'ours' in skipped[0], captured.err
    assert 'Traceback' not in captured.err
    with open(os.path.join(results, 'table2.json')) as f:
        assert f.read() == fuller                              # kept
    assert os.path.exists(os.path.join(results, 'table2.partial.json'))
    assert not aside(os.path.join(folder, 'ours', rundir.RESULT))   # gathering moves nothing


@pytest.mark.parametrize('name', ['ours/accuracy.json', 'step1/label_accuracy.json',
                                  'step1/labels.npz'])
def test_figures_skip_a_damaged_curve_or_label_file_in_one_line(finished, tmp_path, capsys,
                                                                name):
    from reproduce import figure3
    root, results = str(tmp_path / 'runs'), str(tmp_path / 'results')
    folder = os.path.join(root, config_name())
    shutil.copytree(finished[0], folder)
    damage(os.path.join(folder, name), 'garbage')
    argv = table_argv(root, results, rates=False) + [
        '--gather-only', '--symmetric-rate', str(RATE), '--asymmetric-rate', 'none']
    assert figure3.main(argv) == 0
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if name.split('/')[1] in line]
    assert len(skipped) == 1 and 'skipped' in skipped[0], err
    assert 'Traceback' not in err


def test_the_report_skips_a_damaged_table_file_in_one_line(tmp_path, capsys):
    from reproduce.report import page
    shutil.copyfile(os.path.join(os.path.dirname(__file__), '..', 'results', 'recorded', 'demo',
                                 'table2.json'), str(tmp_path / 'table2.json'))
    damage(str(tmp_path / 'table3.json'), 'garbage')
    assert page.main([str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'skipped' in err and 'table3.json' in err, err
    with open(str(tmp_path / page.NAME)) as f:
        assert '## Table 2' in f.read()


def test_summarize_skips_a_damaged_result_in_one_line(finished, tmp_path, capsys):
    from reproduce import summarize
    out = copy_of(finished, tmp_path)
    damage(os.path.join(out, 'tanaka', rundir.RESULT), 'truncated')
    summarize.main([out, '--name', 'summary', '--dest', str(tmp_path)])
    err = capsys.readouterr().err
    skipped = [line for line in err.splitlines() if 'skipped' in line]
    assert len(skipped) == 1 and 'tanaka' in skipped[0] and 'result.json' in skipped[0], err
    with open(str(tmp_path / 'summary.json')) as f:
        text = f.read()
    assert 'ours' in text and 'Traceback' not in err


def test_a_finished_part_missing_an_output_finishes_again_from_its_snapshot(finished, tmp_path,
                                                                            capsys):
    """A copy cut short: step 1's labels are gone though its result is there."""
    out = copy_of(finished, tmp_path)
    labels = os.path.join(out, 'step1', rundir.LABELS)
    os.remove(labels)
    status, err = run(out, capsys)
    assert status == 0 and len(err) == 1 and 'is missing' in err[0] and labels in err[0], err
    assert rundir.problem(labels) is None and os.path.exists(labels)
    assert result(out, 'ours')['best_test'] == result(finished[0], 'ours')['best_test']


def test_two_missing_outputs_of_a_finished_part_move_its_result_aside_once(tmp_path,
                                                                          monkeypatch):
    """A finished step 1 whose labels.npz and model.npz are both missing (a copy cut short):
    its result is moved aside once, and the part finishes again from its snapshot."""
    part = tmp_path / 'step1'
    part.mkdir()
    (part / rundir.RESULT).write_text('{}')
    (part / rundir.SNAPSHOT).write_bytes(b'')
    monkeypatch.setattr(rundir, 'result_problem', lambda *args: None)
    monkeypatch.setattr(rundir, 'problem', lambda path: None)
    missing = [n for n in rundir.OUTPUTS if n in rundir.NEEDED['step1']]
    assert len(missing) >= 2
    notes = rundir.repair_part(str(part), {}, 'step1')
    assert len(notes) == 1 and 'is missing (a copy cut short?)' in notes[0]
    assert not (part / rundir.RESULT).exists() and (part / rundir.SNAPSHOT).exists()
