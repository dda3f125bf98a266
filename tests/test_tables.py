"""The table and figure scripts end to end on the digits data with tiny schedules: runs, skip,
the cluster route (--print-commands, then gathering), regression checks and bad input. The
tables' runs go on beside the session's other tests (tests/background.py)."""
import dataclasses
import json
import os
import shlex
import subprocess
import sys

import numpy
import pytest

import background
from datasets import noise as noise_lib
from reproduce import experiment, figure3
from reproduce.batch import plan as plan_lib, runner, tables
from reproduce.report import aggregate
from reproduce.run import data, methods, rundir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: A tiny seeded configuration: two epochs per step, each of five random batches.
TINY = ['--dataset', 'digits', '--trials', '1', '--epochs-scale', '0.05', '--device', '@numpy',
        '--iterations-per-epoch', '5']
#: The runs' folder under --out: the data set, the epochs scale and the batches an epoch.
NAME = 'digits-x0.05-i5'


def read(path):
    with open(path) as f:
        return json.load(f)


def make_tables(base):
    """Table 2 (90 % symmetric) run by the script with two jobs; Table 3 (30 % asymmetric) run
    the cluster way: its printed commands run (all at once, as on a cluster), then the script
    only gathers."""
    out, res = os.path.join(base, 'runs'), os.path.join(base, 'results')
    common = TINY + ['--out', out, '--results', res]
    status2 = tables.main(2, common + ['--rates', '0.9', '--jobs', '2'])
    listing = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'reproduce', 'table3.py')] + common
        + ['--rates', '30%', '--print-commands'], capture_output=True, text=True, check=True)
    commands = [shlex.split(line) for line in listing.stdout.splitlines()]
    started = []
    for command in commands:
        assert command[0] == 'env' and runner.EXPERIMENT in command
        # as printed, from another folder, the environment not activated, two threads in it
        started.append(subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=base,
            env=dict({k: v for k, v in os.environ.items() if k != 'VIRTUAL_ENV'},
                     OPENBLAS_NUM_THREADS='2', OMP_NUM_THREADS='2')))
    for command, process in zip(commands, started):
        stderr = process.communicate()[1]
        assert process.returncode == 0, (command, stderr)
    gather = listing.stderr.splitlines()[-1].split('# afterwards, gather: ')[1]
    status3 = subprocess.run(shlex.split(gather), cwd=base).returncode   # as printed
    return {'out': out, 'res': res, 'common': common, 'status': [status2, status3],
            'commands': commands}


tables_run = background.call('tables_run', 'test_tables', 'make_tables', cost=50)


@pytest.fixture
def tables_done(tables_run):
    return tables_run[1]


def computed_cells(table):
    return {(row['method'], kind, cell['rate']): cell for row in table['rows']
            if row['status'] == 'computed' for kind in tables.KINDS for cell in row[kind]}


@pytest.mark.slow
def test_tables_hold_every_computed_cell_from_the_run_results(tables_done):
    assert tables_done['status'] == [0, 0]
    assert len(tables_done['commands']) == 4   # the step-1 chain, CE, Forward T, PENCIL
    for number, noise, rate in ((2, 'symmetric', 0.9), (3, 'asymmetric', 0.3)):
        table = read(os.path.join(tables_done['res'], 'table{}.json'.format(number)))
        assert not table['compared_with_paper'] and table['rates'] == [rate]
        assert [r['method'] for r in table['rows']] == ['cross_entropy', 'forward_t', 'tanaka',
                                                        'pencil', 'ours']
        # by default the paper's rows: Table 2 has no Forward T
        assert table['rows'][1]['status'] == ('not run' if number == 2 else 'computed')
        assert table['rows'][1]['label'].endswith('(true T)') == (number == 3)
        run_dir = os.path.join(tables_done['out'], NAME,
                               '{}-{:g}'.format(noise, 100 * rate), 'trial0')
        for (method, kind, _), cell in computed_cells(table).items():
            result = read(os.path.join(run_dir, method, 'result.json'))
            assert cell['n'] == 1
            assert cell['mean'] == pytest.approx(100 * result[kind + '_test'])
            assert result['epochs'] == (3 if method == 'pencil' else 2)
            assert result['config']['epochs_scale'] == 0.05
        step1 = read(os.path.join(run_dir, 'step1', 'result.json'))
        assert table['labels'][0]['corrected']['mean'] == pytest.approx(
            100 * step1['labels']['corrected_accuracy'])
        assert table['provenance']['epochs'] == {'step1': 2, 'step2': 2, 'pencil': 3}
        assert table['provenance']['commits'] and table['provenance']['devices'][0].startswith('CPU')
        # the --jobs runs of Table 2 and the printed commands of Table 3 ran one BLAS thread
        assert {b['num_threads'] for run in table['runs'] for b in run['provenance'][
            'platform']['blas']} == {1}
        markdown = open(os.path.join(tables_done['res'], 'table{}.md'.format(number))).read()
        assert 'SHORTENED' in markdown and '**' in markdown
        for name in ('table{}.tex', 'table{}.csv', 'table{}_noise.png', 'table{}_noise.pdf'):
            assert os.path.getsize(os.path.join(tables_done['res'], name.format(number))) > 100
        # one trial: no p-value, and the caption says why
        assert computed_cells(table)[('cross_entropy', 'best', rate)]['versus_ours']['note'] == \
            'too few trials'
        assert 'No cell can be marked' in markdown
    report = open(os.path.join(tables_done['res'], 'report.md')).read()
    assert '## table2' in report and '## table3' in report


def test_terminal_table_lays_out_the_paper_rows_with_differences():
    """CIFAR-10 layout from fabricated cells: paper / this code / difference, quoted rows."""
    published = tables.paper.load_paper_table(3)
    table = {'table': 3, 'title': published['title'], 'compared_with_paper': True,
             'noise': 'asymmetric', 'rates': [0.1, 0.2], 'labels': [],
             'provenance': {'epochs_scale': 1.0, 'epochs': {'step1': 200, 'step2': 120},
                            'trials_requested': [0, 1], 'devices': []}, 'rows': []}
    for row in published['rows']:
        status = 'computed' if row['method'] == 'ours' else 'quoted'
        entry = {'number': row['number'], 'method': row['method'], 'label': row['label'],
                 'status': status}
        for kind in tables.KINDS:
            entry[kind] = []
            for k, rate in enumerate(table['rates']):
                cell = {'rate': rate, 'paper': row[kind][k], 'paper_decimals': row['decimals'],
                        **aggregate.stats([90.0, 91.0] if status == 'computed' else [])}
                cell['diff'] = cell['mean'] - cell['paper'] if cell['mean'] else None
                entry[kind].append(cell)
        table['rows'].append(entry)
    text = tables.format_terminal(table)
    ours = [line for line in text.splitlines() if 'Our method' in line][0]
    assert '93.32' in ours                                # the paper's best at 10 %
    assert '90.50±0.71 (2)' in text                      # the sample std of 90 and 91 and '{:+.2f}'.format(90.5 - 93.32) in text
    assert 'best quoted' in [line for line in text.splitlines() if 'CNN-CRF' in line][0]
    assert '92.70' in text                                # printed precision kept


@pytest.mark.slow
def test_running_again_skips_finished_runs(tables_done, capsys):
    before = read(os.path.join(tables_done['res'], 'table2.json'))
    assert tables.main(2, tables_done['common'] + ['--rates', '0.9']) == 0
    printed = capsys.readouterr().out
    assert '3 runs: 3 finished already, 0 to run' in printed
    after = read(os.path.join(tables_done['res'], 'table2.json'))
    assert computed_cells(after) == computed_cells(before)
    assert 'Cross Entropy' in printed and 'step-1 labels right' in printed


@pytest.mark.slow
def test_gathering_says_what_it_found(tables_done, tmp_path, capsys):
    """Gathering with other options than the runs': exit 1, nothing written, and the folders of
    runs found with the command that gathers them; a trial that never ran marks its cells."""
    out = tables_done['out']
    assert tables.main(2, ['--out', out, '--results', str(tmp_path / 'a'), '--gather-only']) == 1
    said = capsys.readouterr().out
    assert 'nothing written' in said and not (tmp_path / 'a').exists()
    found = sorted(line for line in said.splitlines() if 'of another configuration' in line)
    assert [line.split(' holds ')[0] for line in found] == [os.path.join(out, NAME)] * 2
    assert '(asymmetric noise, trials 0): python reproduce/table3.py ' in found[0]
    command = found[1].split(': python reproduce/table2.py ')[1]
    assert command == shlex.join(['--out', os.path.abspath(out), '--dataset', 'digits',
                                  '--epochs-scale', '0.05', '--iterations-per-epoch', '5',
                                  '--rates', '0.9', '--methods', 'cross_entropy,tanaka,pencil,ours',
                                  '--trials', '1', '--gather-only'])
    results = tmp_path / 'b'
    assert tables.main(2, shlex.split(command) + ['--results', str(results)]) == 0
    assert read(results / 'table2.json')['rows'] == read(os.path.join(
        tables_done['res'], 'table2.json'))['rows']
    capsys.readouterr()
    assert tables.main(2, tables_done['common'] + ['--rates', '0.9', '--trials', '2',
                                                  '--gather-only', '--results', str(results)]) == 0
    said = capsys.readouterr().out
    assert '3 of 6 planned runs are not finished' in said and '3 never trained an epoch' in said
    assert '(1 of 2)' in said and '(1 of 2)' in (results / 'table2.md').read_text()


@pytest.mark.slow
def test_figure3_reuses_the_table_runs_and_draws_three_figures(tables_done, capsys,
                                                                monkeypatch):
    from reproduce.report import plots
    titles, save = {}, plots._save

    def keep_title(fig, path_stem):
        titles[os.path.basename(path_stem)] = fig._suptitle.get_text() if fig._suptitle else \
            fig.axes[0].get_title()
        return save(fig, path_stem)

    monkeypatch.setattr(plots, '_save', keep_title)
    argv = tables_done['common'] + ['--symmetric-rate', '0.9', '--asymmetric-rate', '0.3']
    assert figure3.main(argv) == 0
    printed = capsys.readouterr().out
    assert '7 runs: 7 finished already, 0 to run' in printed   # Table 2's rows, Table 3's
    assert sorted(titles) == ['figure3', 'step1_confusion', 'step1_label_accuracy']
    assert titles == {'figure3': 'Figure 3: test accuracy of the second step',   # short: the
                      'step1_label_accuracy': 'Step 1: training labels equal to the clean label',
                      'step1_confusion': 'Step 1: corrected against clean training labels'}
    assert 'report.md' in printed
    for stem in ('figure3', 'step1_label_accuracy', 'step1_confusion'):
        for ext in ('.png', '.pdf'):
            path = os.path.join(tables_done['res'], stem + ext)
            assert os.path.getsize(path) > 1000, path
    assert not any(name.endswith('.tmp') for name in os.listdir(tables_done['res']))


@pytest.mark.slow
def test_figure3_with_one_panel_plans_and_draws_that_panel_only(tables_done, tmp_path, capsys,
                                                                 monkeypatch):
    from reproduce.report import plots
    drawn, save = {}, plots._save

    def keep(fig, path_stem):
        drawn[os.path.basename(path_stem)] = [ax.get_title() for ax in fig.axes]
        return save(fig, path_stem)

    monkeypatch.setattr(plots, '_save', keep)
    res = str(tmp_path / 'results')
    argv = TINY + ['--out', tables_done['out'], '--results', res, '--symmetric-rate', '0.9',
                   '--asymmetric-rate', 'none']
    assert figure3.main(argv) == 0
    printed = capsys.readouterr().out
    assert '3 runs: 3 finished already, 0 to run' in printed      # no asymmetric run planned
    assert drawn['figure3'] == ['(a) 90% symmetric noise']
    assert len(drawn['step1_confusion']) == 2                     # one matrix and its colour bar


@pytest.mark.slow
def test_check_passes_on_the_same_numbers_and_lists_every_moved_cell(tables_done, tmp_path,
                                                                      capsys):
    own = os.path.join(tables_done['res'], 'table2.json')
    argv = tables_done['common'] + ['--rates', '0.9', '--gather-only']
    assert tables.main(2, argv + ['--check', own]) == 0
    moved = read(own)
    for row, kind, by in ((0, 'best', 5.0), (2, 'last', -0.5)):    # -0.5: inside the floor
        cell = moved['rows'][row][kind][0]
        cell['values'] = [v + by for v in cell['values']]
        cell['mean'] += by
    path = str(tmp_path / 'moved.json')
    with open(path, 'w') as f:
        json.dump(moved, f)
    capsys.readouterr()
    assert tables.main(2, argv + ['--check', path]) == 1
    printed = capsys.readouterr().out
    assert '1 cell(s) moved' in printed and 'cross_entropy best at 90%' in printed
    assert tables.main(2, argv + ['--check', path, '--tolerance', '0.1']) == 1
    assert '2 cell(s) moved' in capsys.readouterr().out


@pytest.mark.parametrize('content, message', [
    ('not json', 'is not JSON'),
    ('[1, 2]', 'no "rows" list'),
    ('{"rows": [], "table": 3, "dataset": "digits", "noise": "asymmetric"}', 'holds table 3'),
    ('{"rows": [{"method": "ours"}], "table": 2, "dataset": "digits", "noise": "symmetric", '
     '"provenance": {"epochs_scale": 0.05}}', 'a row lacks'),
    ('{"rows": [], "table": 2, "dataset": "digits", "noise": "symmetric", '
     '"provenance": {"epochs_scale": 1.0}}', 'not comparable'),
])
def test_a_wrong_check_file_gives_one_line_before_anything_runs(tmp_path, capsys, content,
                                                                message):
    path = tmp_path / 'check.json'
    path.write_text(content)
    out = str(tmp_path / 'runs')
    status = tables.main(2, TINY + ['--rates', '0.5', '--out', out, '--check', str(path)])
    assert status == 2
    error = capsys.readouterr().err
    assert error.startswith('error: ') and message in error and error.count('\n') == 1
    assert not os.path.exists(out)


def test_bad_input_gives_one_clear_line(tmp_path, capsys):
    common = TINY + ['--out', str(tmp_path / 'runs'), '--results', str(tmp_path / 'res')]
    with pytest.raises(SystemExit) as exit_info:
        tables.main(2, common + ['--methods', 'ours,pencil2'])
    assert exit_info.value.code == 2
    assert 'unknown method(s) pencil2' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tables.main(2, common + ['--rates', '0.5,150'])
    assert 'outside [0, 1)' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tables.main(2, common + ['--dataset', 'mnist'])
    assert "invalid choice: 'mnist'" in capsys.readouterr().err
    # a CIFAR-10 directory without the files
    status = tables.main(2, ['--data-dir', str(tmp_path), '--rates', '0.5', '--trials', '1',
                             '--out', str(tmp_path / 'runs')])
    assert status == 2 and 'CIFAR-10 file' in capsys.readouterr().err
    assert not os.path.exists(tmp_path / 'runs')               # nothing was created


@pytest.mark.slow
def test_runs_made_with_other_settings_are_refused_and_kept(tables_done, capsys):
    run_dir = os.path.join(tables_done['out'], NAME, 'symmetric-90', 'trial0')
    result = os.path.join(run_dir, 'ours', 'result.json')
    before = open(result).read()
    status = tables.main(2, tables_done['common'] + ['--rates', '0.9', '--lc-on', 'mixed'])
    assert status == 2
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and run_dir in error and 'lc_on' in error, error
    assert open(result).read() == before


def test_plan_and_commands_cover_each_setting_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)              # the units' folders are relative: 'root/...'
    base = dict(dataset='digits', noise='asymmetric', epochs_scale=0.5, progress=False)
    units = runner.plan(base, [0.1, 0.4], [0, 1], ('ours', 'cross_entropy'), 'root')
    assert [(u.config.trial, u.config.rate, u.methods) for u in units] == [
        (0, 0.1, ('ours',)), (0, 0.1, ('cross_entropy',)), (0, 0.4, ('ours',)),
        (0, 0.4, ('cross_entropy',)), (1, 0.1, ('ours',)), (1, 0.1, ('cross_entropy',)),
        (1, 0.4, ('ours',)), (1, 0.4, ('cross_entropy',))]
    assert units[0].parts == ('step1', 'ours') and units[1].parts == ('cross_entropy',)
    assert units[2].run_dir == os.path.join('root', 'digits-x0.5', 'asymmetric-40', 'trial0')
    units[0].write_config()
    command = units[0].command(device='@cupy:1', quiet=True)
    start = command.index(runner.EXPERIMENT) + 1         # after env's settings and Python
    config, methods, out = experiment.parse(command[start:])
    assert command[start - 2:start + 2] == [sys.executable, runner.EXPERIMENT, '--config',
                                            units[0].config_path]
    assert config == dataclasses.replace(units[0].config, device='@cupy:1', progress=False)
    assert methods == ['ours'] and out == os.path.abspath(units[0].run_dir)
    changed = runner.plan(dict(base, overrides={'pencil': {'label_lr': 300},
                                                'step2': {'milestones': [5]}}),
                          [0.1], [0], ('pencil',), 'other')[0]
    with pytest.raises(rundir.SettingsMismatchError, match='pencil {} there'):
        dataclasses.replace(changed, root='root').write_config()    # refused: not rewritten
    changed.write_config()
    command = changed.command()
    config, _, _ = experiment.parse(command[command.index(runner.EXPERIMENT) + 1:])
    assert config.overrides == {'step2': {'milestones': [5]}, 'pencil': {'label_lr': 300}}
    with pytest.raises(ValueError, match='unknown method'):
        runner.plan(base, [0.1], [0], ('forward',), 'root')


def test_a_change_in_how_runs_start_is_one_line_for_all_of_them(tmp_path, capsys):
    base = dict(dataset='digits', noise='asymmetric', epochs_scale=0.5, progress=False)
    units = runner.plan(base, [0.1, 0.4], [0, 1], ('ours', 'cross_entropy'), str(tmp_path))
    runner.write_configs(units)
    assert capsys.readouterr().err == ''                     # written, nothing changed
    runner.write_configs(units)
    assert capsys.readouterr().err == ''                     # the same again
    again = runner.plan(dict(base, progress=True, loader_threads=3), [0.1, 0.4], [0, 1],
                        ('ours', 'cross_entropy'), str(tmp_path))
    runner.write_configs(again[:6] + [runner.plan(dict(base, progress=True), [0.4], [1],
                                                  ('ours', 'cross_entropy'), str(tmp_path))[0]])
    err = capsys.readouterr().err                            # 4 run folders, the units 2 each
    assert err == ('note: the config.json of 4 runs: how they start now follows this command '
                   '(loader_threads 8 -> 3 in 3 of them; progress false -> true)\n'), err
    for unit in units:
        assert rundir.read_json(unit.config_path)['launch']['progress'] is True
    runner.write_configs(units[7:])
    err = capsys.readouterr().err                            # one run: named by its file
    assert err == ('note: {}: how the run starts now follows this command (progress true -> '
                   'false)\n'.format(units[7].config_path)), err


@pytest.mark.slow
def test_forward_t_uses_the_true_matrix_or_a_checked_estimate(tables_done, tmp_path):
    run_dir = os.path.join(tables_done['out'], NAME, 'asymmetric-30', 'trial0')   # Table 3's
    result = read(os.path.join(run_dir, 'forward_t', 'result.json'))
    expected = noise_lib.transition_matrix('asymmetric', 0.3, 10, mapping=data.data_set(
        'digits').asymmetric_mapping)
    numpy.testing.assert_allclose(result['transition']['matrix'], expected, rtol=1e-6)
    assert result['transition']['source'] == 'true' and result['part'] == 'forward_t'
    with pytest.raises(ValueError, match="--transition takes true, estimate or an existing .npy "
                                         "file, got '.*missing.npy'"):
        experiment.RunConfig(dataset='digits', transition=str(tmp_path / 'missing.npy'))
    bad = tmp_path / 'bad.npy'
    numpy.save(str(bad), numpy.ones((10, 10)))
    with pytest.raises(ValueError, match='rows summing to 1'):
        methods.given_transition(experiment.RunConfig(transition=str(bad)), 10)
    good = tmp_path / 'good.npy'
    numpy.save(str(good), numpy.eye(10) * 0.7 + 0.03)
    numpy.testing.assert_allclose(
        methods.given_transition(experiment.RunConfig(transition=str(good)), 10),
        numpy.eye(10) * 0.7 + 0.03, rtol=1e-6)


@pytest.mark.slow
def test_pencil_runs_its_three_stages_and_reports_its_labels(tables_done):
    run_dir = os.path.join(tables_done['out'], NAME, 'asymmetric-30', 'trial0', 'pencil')
    result = read(os.path.join(run_dir, 'result.json'))
    assert result['step']['stages'] == [1, 1, 1] and result['epochs'] == 3
    history = read(os.path.join(run_dir, 'label_accuracy.json'))
    assert history['epoch'] == [1, 2, 3]
    labels = numpy.load(os.path.join(run_dir, 'labels.npz'))
    assert result['labels']['corrected_accuracy'] == pytest.approx(
        numpy.mean(labels['hard'] == labels['clean']))
    assert result['labels']['noisy_accuracy'] == pytest.approx(
        numpy.mean(labels['noisy'] == labels['clean']))
    lrs = [entry['lr'] for entry in read(os.path.join(run_dir, 'log.json'))]
    assert lrs[:2] == [0.02, 0.02]                # stages 1-2 at lr, then stage 3 from lr3


def test_the_time_left_counts_the_runs_that_share_the_processes_and_the_longest_alone(
        monkeypatch):
    class Unit(object):
        def __init__(self, epochs, done):
            self.total, self.done = epochs, done

        def epochs(self):
            return {'part': self.total}

        def epochs_done(self):
            return {'part': self.done}

    clock = [1000.0]
    monkeypatch.setattr(runner.time, 'time', lambda: clock[0])
    units = [Unit(10, 0), Unit(10, 0), Unit(10, 0), Unit(40, 0)]
    progress = runner.Progress(units, open(os.devnull, 'w'), jobs=2)
    assert progress.line(0, 2, 0).endswith('epochs 0/70 · elapsed {}'.format(
        plan_lib.duration(0)))                       # nothing measured: no estimate
    clock[0] += 100                                  # two runs, 100 s each: 20 epochs
    units[0].done, units[3].done = 10, 10
    line = progress.line(1, 2, 0)
    # 0.1 epoch per second of a run; 40 epochs left (10 + 30) on two processes: 200 s, but the
    # 30 of the longest run alone take 300 s
    assert line.startswith('[1/4 runs done, 2 running, 1 left] epochs 20/70 · elapsed {}'.format(
        plan_lib.duration(100)))
    assert line.endswith('about {} left'.format(plan_lib.duration(300))), line
    clock[0] += 50                                   # two runs 50 s more: 5 epochs
    units[1].done = 5
    line = progress.line(1, 2, 0)
    # 25 epochs in 300 seconds of runs; left 5 + 10 + 30 on two processes (22.5 epochs each)
    # or 30 alone: 30 / (25 / 300) = 360 s
    assert line.endswith('about {} left'.format(plan_lib.duration(360))), line
    # a line may find no run running (the runner starts the next ones after it): the runs it
    # then starts count from their start
    a, b = Unit(10, 0), Unit(10, 0)
    fresh = runner.Progress([a, b], open(os.devnull, 'w'), jobs=2)
    assert 'left' not in fresh.line(0, 0, 0).split('·')[-1]
    fresh.running(2)
    clock[0] += 20
    a.done = b.done = 2                              # 4 epochs in 40 seconds of runs
    line = fresh.line(0, 2, 0)
    # 8 + 8 epochs left on two processes: 8 / (4 / 40) = 80 s
    assert line.endswith('about {} left'.format(plan_lib.duration(80))), line


def test_a_table_says_whether_it_matched_a_recording_of_its_configuration(tmp_path):
    """After a table, one line per recording of the same configuration: the same numbers,
    within tolerance, or moved (the regression check's verdict); other recordings say nothing."""
    import copy
    import io
    import json
    import shutil
    recorded = os.path.join(ROOT, 'results', 'recorded', 'demo', 'table2.json')
    shutil.copy(recorded, str(tmp_path / 'table2.json'))
    with open(recorded) as f:
        table = json.load(f)
    out = io.StringIO()
    tables.recording_match(table, out, folder=str(tmp_path))
    assert out.getvalue().count('\n') == 1 and ': the same numbers (' in out.getvalue()
    moved = copy.deepcopy(table)
    for row in moved['rows']:
        if row['method'] == 'ours':
            for cell in row['best'] + row['last']:
                cell['values'] = [v - 5 for v in cell['values']]
                cell['mean'] -= 5
    out = io.StringIO()
    tables.recording_match(moved, out, folder=str(tmp_path))
    assert ': MOVED beyond tolerance (' in out.getvalue()
    other = dict(table, rates=[0.3])
    out = io.StringIO()
    tables.recording_match(other, out, folder=str(tmp_path))
    assert out.getvalue() == ''
