"""The whole method on the real digits data, tiny schedules: files, resume, skip, errors. Where
nothing asserted needs a trained network, an epoch is a few random batches
(--iterations-per-epoch); step 1's label correction is asserted on whole epochs."""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy
import pytest

from updaters.extensions import NonFiniteLossError

import background
import partial_runs
from reproduce import experiment
from reproduce.run import config as config_lib, launch, rundir

TINY = {'step1': {'epochs': 4, 'begin': 2, 'window': 2}, 'step2': {'epochs': 3, 'milestones': (2,)}}
#: The method and its baselines of issue 3 (PENCIL and Forward T are tested in test_tables.py).
PARTS = ('cross_entropy', 'tanaka', 'ours')
#: Four random batches an epoch: the runs whose files, numbers and gathering are checked.
SHORT = dict(iterations_per_epoch=4)


def tiny_config(settings=None, **changes):
    merged = {part: dict(values) for part, values in TINY.items()}
    for part, values in (settings or {}).items():
        merged.setdefault(part, {}).update(values)
    fields = dict(dataset='digits', noise='symmetric', rate=0.4, progress=False,
                  overrides=merged)
    fields.update(changes)
    return experiment.RunConfig(**fields)


def read(path):
    with open(path) as f:
        return json.load(f)


def train_parts(out):
    """The parts of :data:`PARTS` on a few batches an epoch: {part: result}."""
    return launch.run(tiny_config(**SHORT), out, methods=PARTS)


def train_step1_on_whole_epochs(out):
    return partial_runs.train_step1(tiny_config(), out)


# (run folder, {part: result as launch.run returned it}), trained beside the session's tests
experiment_parts = background.call('experiment_parts', 'test_experiment', 'train_parts',
                                   cost=10)
experiment_step1 = background.call('experiment_step1', 'test_experiment',
                                   'train_step1_on_whole_epochs', cost=13)


@pytest.fixture
def finished(experiment_parts):
    return experiment_parts


def test_every_part_writes_its_files_and_numbers(finished):
    out, results = finished
    assert set(results) == {'cross_entropy', 'step1', 'tanaka', 'ours'}
    for part, epochs in (('cross_entropy', 3), ('step1', 4), ('tanaka', 3), ('ours', 3)):
        result = read(os.path.join(out, part, 'result.json'))
        assert result == json.loads(json.dumps(results[part]))
        curves = read(os.path.join(out, part, 'accuracy.json'))
        assert curves['epochs'] == list(range(1, epochs + 1))
        assert 0 <= result['best_test'] <= 1 and 0 <= result['last_test'] <= 1
        assert result['last_test'] == curves['accuracy']['test'][-1]
        best = curves['epochs'].index(curves['best']['epoch'])
        assert curves['accuracy']['val'][best] == max(curves['accuracy']['val'])
        assert result['epochs'] == epochs
        prov = result['provenance']
        assert prov['device'].startswith('CPU') and prov['versions']['chainer'] == '7.8.1'
        assert {'commit', 'date'} <= set(prov)
        assert os.path.exists(os.path.join(out, part, rundir.SNAPSHOT))
        assert os.path.exists(os.path.join(out, part, 'log.json'))
    labels = numpy.load(os.path.join(out, 'step1', 'labels.npz'))
    assert labels['soft'].shape == (len(labels['noisy']), 10)
    numpy.testing.assert_allclose(labels['soft'].sum(axis=1), 1, rtol=1e-5)
    assert numpy.array_equal(labels['hard'], labels['soft'].argmax(axis=1))
    step1 = results['step1']['labels']
    assert step1['noisy_accuracy'] == pytest.approx(numpy.mean(labels['noisy'] == labels['clean']))
    assert step1['corrected_accuracy'] == pytest.approx(
        numpy.mean(labels['hard'] == labels['clean']))
    history = read(os.path.join(out, 'step1', 'label_accuracy.json'))
    assert history['epoch'] == [1, 2, 3, 4]
    assert history['accuracy'][-1] == pytest.approx(step1['corrected_accuracy'])


def test_step1_corrects_labels_on_real_data(experiment_step1):
    """What must hold on real data: the corrected labels beat the noisy ones they started from
    (digits, 40 % symmetric noise, 4 epochs of step 1 with labels updated after epochs 2-4)."""
    labels = experiment_step1[1]['step1']['labels']
    assert labels['noisy_accuracy'] < 0.7
    assert labels['corrected_accuracy'] > labels['noisy_accuracy'] + 0.1
    assert labels['fixed'] > labels['broken']


def test_a_finished_run_is_skipped(finished, tmp_path):
    out, results = str(tmp_path / 'run'), finished[1]
    shutil.copytree(finished[0], out)                     # the times of the files kept
    before = os.path.getmtime(os.path.join(out, 'ours', 'result.json'))
    again = launch.run(tiny_config(**SHORT), out, methods=PARTS)
    assert again['ours'] == json.loads(json.dumps(results['ours']))
    assert os.path.getmtime(os.path.join(out, 'ours', 'result.json')) == before


KILLER = textwrap.dedent('''
    import os, sys
    from chainer.training import extension
    from reproduce import experiment
    from reproduce.run import launch

    @extension.make_extension(trigger=(1, 'iteration'), priority=-1000)
    def kill(trainer):
        if trainer.updater.step_name == sys.argv[2] and trainer.updater.iteration == int(sys.argv[3]):
            os._exit(9)  # a hard kill: no clean-up, no error handlers

    config = experiment.RunConfig(dataset='digits', noise='asymmetric', rate=0.4, progress=False,
                                  iterations_per_epoch=10,
                                  overrides={'step1': {'epochs': 4, 'begin': 2, 'window': 2},
                                             'step2': {'epochs': 3, 'milestones': (2,)}})
    launch.run(config, sys.argv[1], methods=['ours'],
               extra_extensions=[] if sys.argv[2] == 'none' else [kill])
''')


@pytest.mark.slow
def test_killed_mid_epoch_then_restarted_reaches_the_same_numbers(tmp_path):
    script = tmp_path / 'job.py'
    script.write_text(KILLER)

    def job(out, step='none', iteration=0):
        return subprocess.Popen([sys.executable, str(script), str(out), step, str(iteration)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def ended(process):
        return process.communicate()[1], process.returncode

    reference = job(tmp_path / 'reference')            # beside the interrupted one: two cores
    interrupted = tmp_path / 'interrupted'
    # 10 iterations an epoch: kill inside epoch 3 of step 1, then inside epoch 2 of step 2 after
    # a restart, then finish
    assert ended(job(interrupted, 'step1', 25))[1] == 9
    assert not os.path.exists(interrupted / 'step1' / 'result.json')
    assert ended(job(interrupted, 'step2', 15))[1] == 9
    assert os.path.exists(interrupted / 'step1' / 'result.json')
    stderr, status = ended(job(interrupted))
    assert status == 0, stderr
    stderr, status = ended(reference)
    assert status == 0, stderr
    for part in ('step1', 'ours'):
        a = read(tmp_path / 'reference' / part / 'accuracy.json')
        b = read(interrupted / part / 'accuracy.json')
        assert a == b
    a = numpy.load(tmp_path / 'reference' / 'step1' / 'labels.npz')
    b = numpy.load(interrupted / 'step1' / 'labels.npz')
    assert numpy.array_equal(a['soft'], b['soft'])
    left = [p for p in interrupted.rglob('*')
            if (p.name.startswith('.') or 'tmp' in p.name) and p.name != rundir.LOCK]
    assert not left


@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # numpy on the NaN batch itself
def test_nan_stops_with_a_message_and_keeps_the_last_good_snapshot(tmp_path):
    config = tiny_config({'step2': {'epochs': 3, 'lr': 1e30, 'milestones': (2,)}})
    with pytest.raises(NonFiniteLossError, match=r'cross_entropy: .*epoch 1, iteration'):
        launch.run(config, str(tmp_path), methods=['cross_entropy'])
    assert not os.path.exists(tmp_path / 'cross_entropy' / rundir.SNAPSHOT)
    assert not os.path.exists(tmp_path / 'cross_entropy' / 'result.json')


@pytest.mark.parametrize('overrides, message', [
    (dict(rate=1.0), 'outside'),
    (dict(rate=-0.1), 'outside'),
    (dict(dataset='mnist'), "unknown data set 'mnist'"),
    (dict(noise='pairflip'), '--noise must be one of symmetric, asymmetric, real'),
    (dict(noise='real'), 'digits takes symmetric or asymmetric noise'),
    (dict(lc_on='both'), '--lc-on must be one of clean, mixed'),
    (dict(settings={'step1': {'lr': 0.1, 'learning_rate': 0.1}}),
     'unknown step1 setting.*learning_rate'),
    (dict(settings={'pencil': {'label_rate': 1}}), 'unknown pencil setting.*label_rate.*label_lr'),
])
def test_bad_configurations_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_settings_given_on_the_command_line_reach_the_run_and_its_command():
    argv = ['--dataset', 'digits', '--out', 'x', '--set', 'pencil.stages=[2,3,4]',
            '--set', 'step1.lr=0.05', '--set', 'pencil.label_lr=300']
    config, _, _ = experiment.parse(argv)
    assert config.overrides == {'step1': {'lr': 0.05},
                                'pencil': {'stages': [2, 3, 4], 'label_lr': 300}}
    settings = config.settings()
    assert settings['pencil']['stages'] == (2, 3, 4) and settings['pencil']['epochs'] == 9
    assert settings['pencil']['label_lr'] == 300 and settings['step1']['lr'] == 0.05
    assert settings['step1']['epochs'] == 40         # the other entries are left as they were
    assert config.identity()['pencil'] == {'stages': [2, 3, 4], 'label_lr': 300}
    for bad in ('pencil.lr', 'step3.lr=1'):
        with pytest.raises(SystemExit):
            experiment.parse(['--out', 'x', '--set', bad])
    for bad, message in (('step1.lr=fast', 'step1.lr takes a number, got "fast"'),
                         ('step1.epochs=2.5', 'takes an integer'),
                         ('step1.epochs=-5', r'must be in \[1'),
                         ('step1.lr=0', r'must be in \(0'),
                         ('step2.milestones=[1.5]', 'a list of integers'),
                         ('pencil.losses=torch', 'must be one of official, paper')):
        with pytest.raises(ValueError, match=message):
            experiment.parse(['--dataset', 'digits', '--out', 'x', '--set', bad])
    paper, _, _ = experiment.parse(['--dataset', 'digits', '--out', 'x', '--set',
                                    'pencil.losses=paper'])
    assert paper.settings()['pencil']['losses'] == 'paper'
    assert paper.identity()['pencil'] == {'losses': 'paper'}


def test_every_option_of_a_run_survives_its_config_file(tmp_path):
    """A configuration with every option changed from its default, written to its run
    folder's config.json (as the runner and --print-commands do) and started from there, is the
    same configuration; beside --config, the options that do not change what a run computes
    replace the file's and the others are refused."""
    import dataclasses
    from reproduce.batch import cli
    from reproduce.run import options
    changed = experiment.RunConfig(
        dataset='digits', noise='asymmetric', rate=0.3, trial=2, noise_seed=7, split_seed=8,
        init_seed=9, order_seed=10, mixup_seed=11, device='@numpy', data_dir='/data/here',
        epochs_scale=0.5, overrides={'step1': {'lr': 0.05}, 'pencil': {'losses': 'paper'}},
        transition='estimate', mixup_weight=0.5, lc_on='mixed', step1_labels='hard',
        step2_labels='hard', step2_init='step1', eval_batch_size=64, progress=False, tf32=True,
        weights='none', iterations_per_epoch=3, loader_threads=2)
    defaults = experiment.RunConfig()
    for field in options.declared(experiment.RunConfig):
        assert getattr(changed, field.name) != getattr(defaults, field.name), field.name
    run_dir = str(tmp_path / 'run')
    rundir.claim(run_dir, changed.identity(), config_lib.defaults_identity(), changed.launch())
    path = os.path.join(run_dir, rundir.CONFIG)
    config, methods, out = experiment.parse(['--config', path, '--methods', 'ours,pencil'])
    assert config == changed and methods == ['ours', 'pencil'] and out == run_dir
    moved, _, _ = experiment.parse(['--config', path, '--device', '@cupy:1', '--data-dir', '/b'])
    assert moved == dataclasses.replace(changed, device='@cupy:1', data_dir='/b')
    for fixed in (['--rate', '0.4'], ['--set', 'step1.lr=0.1'], ['--trial', '2']):
        with pytest.raises(ValueError, match='{} cannot change the run'.format(fixed[0])):
            experiment.parse(['--config', path] + fixed)
    with pytest.raises(SystemExit):
        experiment.parse(['--config', path, '--out', run_dir])
    # the identity alone (a folder made before config.json said how to start it) is refused
    older = str(tmp_path / 'older')
    rundir.claim(older, changed.identity(), config_lib.defaults_identity())
    with pytest.raises(ValueError, match='not how to start it'):
        experiment.parse(['--config', os.path.join(older, rundir.CONFIG)])
    # ... until a table script starts it: the runner adds the launch entry, identity untouched
    rundir.claim(older, changed.identity(), config_lib.defaults_identity(), changed.launch(),
                 new_launch=True)
    assert experiment.parse(['--config', os.path.join(older, rundir.CONFIG)])[0] == changed
    assert cli.Selection().methods == list(experiment.METHODS)


def test_unknown_method_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown method.*'pencil2'"):
        launch.run(tiny_config(), str(tmp_path), methods=['ours', 'pencil2'])


def test_command_line_reports_errors_in_one_line(tmp_path):
    wrong_rate, no_hyper_parameters = [subprocess.Popen(     # both at once: two cores
        [sys.executable, '-m', 'reproduce.experiment', '--rate', rate, '--out', str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rate in ('150', '0.2')]
    stderr = wrong_rate.communicate()[1]
    assert wrong_rate.returncode == 2
    assert stderr.strip() == ('experiment.py: error: argument --rate: 150 is outside [0, 1) as a '
                              'fraction and [0%, 100%) as a percentage (see --help)')
    stderr = no_hyper_parameters.communicate()[1]
    assert no_hyper_parameters.returncode == 2 and stderr.count('\n') == 1
    assert stderr.startswith('error: the paper gives no hyper-parameters for symmetric '
                             'noise at rate 0.2')


def test_summarize_gathers_runs_with_their_provenance(finished, tmp_path):
    from reproduce import summarize
    out, results = finished
    summary = summarize.summarize([out, out])
    (row,) = summary['cells']
    assert (row['dataset'], row['noise'], row['rate']) == ('digits', 'symmetric', 0.4)
    assert row['ours/best']['values'] == [100 * results['ours']['best_test']] * 2
    assert row['ours/best']['std'] == 0 and row['ours/best']['n'] == 2
    assert row['labels_corrected']['mean'] == pytest.approx(
        100 * results['step1']['labels']['corrected_accuracy'])
    versus = row['tanaka/best']['versus_ours']       # one trial shared: no p-value
    assert versus['note'] == 'too few trials' and versus['p_ours_better'] is None
    assert versus['mean_difference'] == pytest.approx(
        100 * (results['ours']['best_test'] - results['tanaka']['best_test']))
    assert 'versus_ours' not in row['ours/best']
    tanaka = [p for p in summary['runs'] if p['part'] == 'tanaka'][0]
    assert tanaka['provenance']['versions']['chainer'] == '7.8.1'
    summarize.main([out, '--name', 'x', '--dest', str(tmp_path)])
    text = (tmp_path / 'x.md').read_text()
    assert '| digits | symmetric | 40% |' in text and 'pencil best' not in text
    assert 'cross_entropy best' in text and 'ours last' in text
    with pytest.raises(SystemExit, match='no finished run'):
        summarize.main([str(tmp_path / 'empty'), '--name', 'y', '--dest', str(tmp_path)])


def test_a_run_directory_from_before_a_new_setting_is_still_accepted(tmp_path):
    config = tiny_config()
    rundir.claim(str(tmp_path), config.identity(), config_lib.defaults_identity())
    path = tmp_path / rundir.CONFIG
    recorded = read(str(path))
    del recorded['pencil']          # made before RunConfig had the field: it means the default
    path.write_text(json.dumps(recorded))
    rundir.claim(str(tmp_path), config.identity(), config_lib.defaults_identity())
    with pytest.raises(rundir.SettingsMismatchError, match='pencil'):
        rundir.claim(str(tmp_path), tiny_config({'pencil': {'label_lr': 1.0}}).identity(),
                     config_lib.defaults_identity())


def test_a_part_being_trained_by_another_process_is_refused(tmp_path):
    """The part's lock: a second process asked to train the same part is refused in one line
    and leaves the part alone."""
    config = tiny_config()
    rundir.claim(str(tmp_path), config.identity(), config_lib.defaults_identity(),
                 config.launch())
    with rundir.locked(str(tmp_path / 'cross_entropy')):
        done = subprocess.run(
            [sys.executable, '-m', 'reproduce.experiment', '--config',
             str(tmp_path / rundir.CONFIG), '--methods', 'cross_entropy'],
            capture_output=True, text=True)
    assert done.returncode == 1 and done.stderr.count('\n') == 1
    assert 'cross_entropy is being trained by process {}'.format(os.getpid()) in done.stderr
    assert not os.path.exists(tmp_path / 'cross_entropy' / rundir.SNAPSHOT)
