"""The methods of the tables, one short function each on :mod:`reproduce.run.training`, and the
parts each needs first. A part is one network in its own folder, skipped when its ``result.json``
exists, else resumed from its snapshot. To add a method: a ``run_<name>(context)`` function, a
:class:`Method` entry in :data:`METHODS`, and its row in ``results/paper/`` if the paper has one."""
import dataclasses
import os
import sys

import chainer
import numpy

from reproduce.run import data as data_sets, rundir, training
import atomic_files as atomic
from updaters.baselines import ESTIMATE_PERCENTILE, estimate_transition
from updaters.extensions import LabelAccuracyReport, probabilities_of_batches


@dataclasses.dataclass
class Context:
    """What a method's function gets: config, data, noisy labels, run directory, extensions."""

    config: object
    data: object
    noisy: object
    run_dir: str
    extensions: tuple = ()

    def part_dir(self, part):
        return os.path.join(self.run_dir, part)

    def setup(self, part, init_weights=None):
        """The part's :class:`reproduce.run.training.Part`, named as :func:`describe_part` says."""
        built = training.setup(self.config, self.data, self.noisy, self.part_dir(part),
                               init_weights)
        built.title = describe_part(part, self.config)
        return built


def _label_summary(context, report):
    """The result's label accuracies (noisy ones counted where a clean label is known, not -1)."""
    accuracy, fixed, broken = report.measure()
    clean = context.data.train_y
    return {'noisy_accuracy': float(numpy.mean(context.noisy[clean >= 0] == clean[clean >= 0])),
            'corrected_accuracy': accuracy, 'fixed': fixed, 'broken': broken}


# ----- the parts -----
def run_step1(context):
    """Step 1: trains the label-correction network, writes ``labels.npz`` and the network."""
    part = context.setup('step1')
    step = part.settings['step1']
    updater = training.step1_updater(context.config, part.settings, part.arrays, part.model,
                                     part.device)
    table = updater.label_table
    report = LabelAccuracyReport(table, part.arrays.noisy, part.arrays.clean,
                                 path=os.path.join(part.out_dir, rundir.LABEL_ACCURACY))
    seconds = training.train(part, updater, step['epochs'], [report] + list(context.extensions),
                             report_keys=['labels/accuracy'])
    table.save(os.path.join(part.out_dir, rundir.LABELS), noisy=context.noisy,
               clean=context.data.train_y)
    atomic.save_model(os.path.join(part.out_dir, rundir.MODEL), part.model)
    return training.finish(part, 'step1', step, seconds, labels=_label_summary(context, report))


def corrected_labels(step1_dir, kind='soft'):
    """Step 1's labels as float32 (n, c) training targets: soft Y or one-hot of argmax Y."""
    path = os.path.join(step1_dir, rundir.LABELS)
    if not os.path.exists(path):
        raise FileNotFoundError('{} is missing: step 1 has not finished in {}'.format(
            path, step1_dir))
    with numpy.load(path) as f:
        soft = f['soft']
    if kind == 'soft':
        return soft.astype(numpy.float32)
    return numpy.eye(soft.shape[1], dtype=numpy.float32)[soft.argmax(axis=1)]


def run_step2(context, name, mixup_weight):
    """Step 2 on step 1's labels: ours (Lc + w Lmix) or Tanaka et al.'s second step (w = 0)."""
    config = context.config
    step1_dir = context.part_dir('step1')
    targets = corrected_labels(step1_dir, config.step2_labels)
    init = os.path.join(step1_dir, rundir.MODEL) if config.step2_init == 'step1' else None
    part = context.setup(name, init)
    step = part.settings['step2']
    updater = training.step2_updater(config, part.settings, part.arrays, part.model,
                                     part.device, targets, mixup_weight)
    seconds = training.train(part, updater, step['epochs'], context.extensions,
                             milestones=step['milestones'], lr_decay=step['lr_decay'])
    return training.finish(part, 'step2', step, seconds, mixup_weight=mixup_weight)


def given_transition(config, n_classes):
    """Forward T's given matrix: the true one of the synthetic noise, or the one in the .npy file
    ``config.transition`` (checked: c x c, non-negative, rows summing to 1)."""
    if config.transition == 'true':
        return data_sets.true_transition(config, n_classes)
    if not os.path.isfile(config.transition):
        raise FileNotFoundError('transition matrix file {} does not exist'.format(
            config.transition))
    t = numpy.load(config.transition).astype(numpy.float32)
    if t.shape != (n_classes, n_classes) or (t < 0).any() or not numpy.allclose(
            t.sum(axis=1), 1, atol=1e-3):
        raise ValueError('{} is not a {} x {} transition matrix (non-negative, rows summing to '
                         '1)'.format(config.transition, n_classes, n_classes))
    return t


def estimated_transition(context, part, path):
    """Patrini et al.'s estimate of T from this run's cross-entropy network on the training images
    (no augmentation); saved to ``path`` (.npy) once, read from there on a resume."""
    if os.path.exists(path):
        return numpy.load(path)
    network_dir = context.part_dir('cross_entropy')
    weights = os.path.join(network_dir, rundir.MODEL)
    if not os.path.exists(weights):
        raise FileNotFoundError(
            '{} is missing: Forward T estimates its matrix with the cross-entropy network, which '
            'is saved when that run finishes (a run finished by an older version of this '
            'package did not save it: delete {} to train it again)'.format(weights, network_dir))
    model = training.build_model(context.config, context.data, part.settings)
    chainer.serializers.load_npz(weights, model)
    model.to_device(part.device)
    source = part.arrays.train_split()
    probabilities = probabilities_of_batches(
        model, source.batches(context.config.evaluation_batch_size()))
    t = chainer.backend.CpuDevice().send(estimate_transition(probabilities))
    atomic.save_npy(path, t)
    return t


def run_cross_entropy(context, name, forward):
    """Cross entropy on the noisy labels with step 2's schedule; with ``forward``, Forward T."""
    config = context.config
    estimate = forward and config.transition == 'estimate'
    # a given matrix is read (and a bad file refused) before anything is built
    transition = (given_transition(config, context.data.n_classes)
                  if forward and not estimate else None)
    part = context.setup(name)
    if estimate:
        transition = estimated_transition(context, part,
                                          os.path.join(part.out_dir, rundir.TRANSITION))
    step = part.settings['step2']
    updater = training.cross_entropy_updater(part.settings, part.arrays, part.model,
                                             part.device, transition)
    seconds = training.train(part, updater, step['epochs'], context.extensions,
                             milestones=step['milestones'], lr_decay=step['lr_decay'])
    extra = {}
    if transition is None:      # the network Forward T estimates its matrix from
        atomic.save_model(os.path.join(part.out_dir, rundir.MODEL), part.model)
    else:
        extra['transition'] = {
            'source': {'true': 'true', 'estimate': 'estimated'}.get(config.transition, 'file'),
            'matrix': numpy.asarray(transition).tolist()}
        if estimate:
            extra['transition'].update(network='cross_entropy', percentile=ESTIMATE_PERCENTILE)
    return training.finish(part, updater.step_name, step, seconds, **extra)


def run_pencil(context):
    """PENCIL (Yi & Wu, CVPR 2019); writes its labels and their accuracy like step 1."""
    from updaters.pencil import PencilLearningRate, pencil_lr_schedule
    part = context.setup('pencil')
    step = part.settings['pencil']
    updater = training.pencil_updater(part.settings, part.arrays, part.model, part.device)
    report = LabelAccuracyReport(updater.labels, part.arrays.noisy, part.arrays.clean,
                                 path=os.path.join(part.out_dir, rundir.LABEL_ACCURACY))
    schedule = PencilLearningRate(pencil_lr_schedule(step['stages'], step['lr'], step['lr3'],
                                                     step['stage3_decay']))
    seconds = training.train(part, updater, step['epochs'],
                             [report, schedule] + list(context.extensions),
                             report_keys=['labels/accuracy'])
    updater.save(os.path.join(part.out_dir, rundir.LABELS), noisy=context.noisy,
                 clean=context.data.train_y)
    return training.finish(part, 'pencil', step, seconds, labels=_label_summary(context, report))


# ----- the registry -----
@dataclasses.dataclass(frozen=True)
class Method:
    """One method: its name (and part), row label, run function and ``needs``: config -> parts."""

    name: str
    label: str
    run: object
    needs: object = lambda config: ()


#: The computed methods, in the order of the paper's rows.
METHODS = {m.name: m for m in (
    Method('cross_entropy', 'Cross Entropy',
           lambda context: run_cross_entropy(context, 'cross_entropy', forward=False)),
    Method('forward_t', 'Forward T [5]',
           lambda context: run_cross_entropy(context, 'forward_t', forward=True),
           needs=lambda config: ('cross_entropy',) if config.transition == 'estimate' else ()),
    Method('tanaka', 'Tanaka et al. [6]', lambda context: run_step2(context, 'tanaka', 0.0),
           needs=lambda config: ('step1',)),
    Method('pencil', 'PENCIL [3]', run_pencil),
    Method('ours', 'Our method',
           lambda context: run_step2(context, 'ours', context.config.mixup_weight),
           needs=lambda config: ('step1',)),
)}
NAMES = tuple(METHODS)
#: Parts that are no method's row: what the methods need first.
PREREQUISITES = {'step1': run_step1}
#: Every part, in the order of the tables' provenance and regression signals.
PARTS = ('step1',) + NAMES


def describe_part(part, config):
    """A part as the user knows it: a method's name, or step 1 by the methods that need it."""
    needed_by = [m for m in NAMES if part != m and part in METHODS[m].needs(config)]
    return part if not needed_by else '{} (for {})'.format(part, ' and '.join(needed_by))


def check_methods(methods):
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError('unknown method(s) {}: choose from {}'.format(
            ', '.join(map(repr, unknown)), ', '.join(NAMES)))


def parts_of(methods, config):
    """The parts ``methods`` train, in order: each method's prerequisites before it, each once."""
    return tuple(dict.fromkeys(part for method in methods
                               for part in tuple(METHODS[method].needs(config)) + (method,)))


def groups_of(methods, config):
    """``methods`` (in :data:`NAMES` order) in groups that must run in one process: methods
    that share a part (apart, they would train it twice, or at once)."""
    chosen = [m for m in NAMES if m in methods]
    groups = []
    for method in chosen:
        parts = set(parts_of([method], config))
        joined = [g for g in groups if parts & set(parts_of(g, config))]
        merged = [m for g in joined for m in g] + [method]
        groups = [g for g in groups if g not in joined] + [tuple(m for m in NAMES if m in merged)]
    return sorted(groups, key=lambda g: -1 if 'step1' in parts_of(g, config) else
                  NAMES.index(g[0]))


def run_parts(context, methods):
    """Trains the parts of ``methods`` that are not finished; returns {part: result}. Damaged
    files go aside first (:func:`rundir.repair_part`); a bad snapshot restarts a part once."""
    check_methods(methods)
    results = {}
    identity = context.config.identity()
    for part in parts_of(methods, context.config):
        part_dir = context.part_dir(part)
        with rundir.locked(part_dir):                    # one process trains a part
            for note in rundir.repair_part(part_dir, identity, part):
                sys.stderr.write(note + '\n')
            done = rundir.read_result(part_dir)
            if done is None:
                run = PREREQUISITES.get(part) or METHODS[part].run
                try:
                    done = run(context)
                except rundir.RestartPart as restart:
                    sys.stderr.write('{}\n'.format(restart))
                    done = run(context)
        results[part] = done
    return results
