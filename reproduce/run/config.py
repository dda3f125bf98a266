"""The configuration of one run: every option that decides or places it, declared once, and what
follows: resolved hyper-parameters, identity, directory name and settings file (``config.json``).
"""
import dataclasses
import json
import os

from reproduce.run import hparams, options, rundir
from reproduce.run.data import data_set, DATA_SETS, NAMES, NOISE_KINDS
from reproduce.run.options import BENCHMARK, option, RUN, TABLE

#: Forward T's matrix, besides a .npy file: the true one of the synthetic noise, or Patrini et
#: al.'s estimate from the run's cross-entropy network.
TRANSITIONS = ('true', 'estimate')
#: The parts whose hyper-parameters ``--set`` changes.
SETTING_PARTS = ('step1', 'step2', 'pencil')
SEEDS = ('noise_seed', 'split_seed', 'init_seed', 'order_seed', 'mixup_seed')


def parse_rate(text):
    """A noise rate, one unit everywhere: a fraction in [0, 1) ('0.5') or a percentage ('50%');
    a number of 1 or more without '%' ('50', '1.2') is refused, naming both readings."""
    number, percent = text.strip().rstrip('%'), text.strip().endswith('%')
    fraction = options.number(number) / (100 if percent else 1)
    if 0 <= fraction < 1:
        return round(fraction, 10)
    if 1 <= fraction < 100 and not percent:
        raise ValueError('{0}: give {1:g} or {0}% (a fraction in [0, 1) or a percentage)'.format(
            number, fraction / 100))
    raise ValueError('{} is outside [0, 1) as a fraction and [0%, 100%) as a percentage'.format(
        text.strip()))


def _parse_setting(item):
    """``PART.KEY=VALUE`` -> (part, key, value); the value as JSON, or a word (``help``: a listing,
    :func:`settings_help`)."""
    if item.strip() == 'help':
        return settings_help
    name, sep, text = item.partition('=')
    part, dot, key = name.partition('.')
    if not sep or not dot or part not in SETTING_PARTS or not key:
        raise ValueError('takes PART.KEY=VALUE with PART one of {}, got {!r}'.format(
            ', '.join(SETTING_PARTS), item))
    try:
        value = json.loads(text)
    except ValueError:   # a word: a string setting, e.g. pencil.losses=paper
        value = text
    return part, key, value


def settings_help(args):
    """``--set help``: every setting at its default on the data set, noise and rate of ``args``."""
    config = RunConfig(dataset=args.dataset, noise=getattr(args, 'noise', None),
                       rate=getattr(args, 'rate', None), data_dir='-', weights='none')
    resolved = config.settings()
    return '--set PART.KEY=VALUE, at the defaults on {} ({} noise at rate {:g}):\n'.format(
        config.dataset, config.noise, config.rate) + ''.join('  {}.{}={}\n'.format(
            part, key, json.dumps(resolved[part][key], separators=(',', ':')))
            for part, keys in config.setting_defaults().items() for key in sorted(keys))


def combine_settings(items):
    combined = {}
    for part, key, value in items:
        combined.setdefault(part, {})[key] = value
    return combined


def render_settings(overrides):
    return ['{}.{}={}'.format(part, key, json.dumps(list(v) if isinstance(v, tuple) else v))
            for part in SETTING_PARTS for key, v in sorted(overrides.get(part, {}).items())]


def _path(value):
    return value if value in ('none',) + TRANSITIONS else os.path.abspath(value)


def _seed_option(what):
    return option(None, 'seed of the {}'.format(what), commands=(RUN,),
                  parse=options.integer(0), check=options.at_least(0),
                  default_text='the trial number')


def _positive_weight(value):
    if not value > 0:
        return ('must be positive, got {:g}: with weight 0 "ours" is exactly Tanaka et al.\'s '
                'second step, which is the tanaka row (--methods tanaka)'.format(value))


@dataclasses.dataclass
class RunConfig:
    """Everything that decides one run, or where and how it runs. Built from keywords
    (``RunConfig(dataset='digits', rate=0.3)``) or from a command line (:func:`from_values`);
    checked on construction (ValueError naming the option)."""

    dataset: str = option('cifar10', 'the data set', choices=NAMES)
    noise: str = option(None, 'the noise kind', commands=(RUN,), choices=NOISE_KINDS,
                        default_text="the data set's: symmetric, or real for clothing1m")
    rate: float = option(None, 'the noise rate r: a fraction in [0, 1) or a percentage (0.5 or '
                         '50%)', commands=(RUN,), parse=parse_rate, render=repr, check=lambda r:
                         None if 0 <= r < 1 else 'is outside [0, 1), got {}'.format(r),
                         default_text='0.5 (0 for clothing1m)')
    trial: int = option(0, 'the trial; every seed defaults to it', commands=(RUN,),
                        parse=options.integer(0), check=options.at_least(0))
    noise_seed: int = _seed_option('label noise')
    split_seed: int = _seed_option('train/validation split')
    init_seed: int = _seed_option('network initialisation')
    order_seed: int = _seed_option('epoch orders and augmentation')
    mixup_seed: int = _seed_option('mix-up draws')
    device: str = option('auto', "Chainer device: '@numpy', '@cupy:0', or auto (the first GPU "
                         "CuPy sees, else the CPU, decided where the run starts)",
                         commands=(RUN, TABLE, BENCHMARK), identity=False)
    data_dir: str = option(None, 'the data set\'s folder (CIFAR-10: the one holding '
                           'cifar-10-batches-py, or that folder; Clothing1M: its annotation '
                           'files and images/)', parse=options.path, render=_path,
                           identity=False,
                           default_text="CIFAR-10 is downloaded into Chainer's dataset root")
    epochs_scale: float = option(1.0, 'shorten every schedule by this factor (updaters/README.md, '
                                 '"Further choices")', parse=options.number,
                                 check=options.positive, render=repr)
    overrides: dict = option({}, 'change one hyper-parameter of step1, step2 or pencil, e.g. '
                             'step1.lr=0.03 or pencil.stages=[5,10,10] (VALUE as JSON or a '
                             "word; repeatable; recorded); '--set help' lists them with their "
                             'defaults', flag='--set', repeat=True,
                             parse=_parse_setting, render=render_settings,
                             metavar='PART.KEY=VALUE')
    transition: str = option(None, "Forward T's matrix: true (the synthetic noise's), estimate "
                             "(Patrini et al.'s, from the run's cross-entropy network) or a "
                             ".npy file", render=_path,
                             default_text='estimate on clothing1m, else true')
    mixup_weight: float = option(1.0, 'the weight w of Lmix in "ours" (1 in the paper)',
                                 parse=options.number, check=_positive_weight, render=repr)
    lc_on: str = option('clean', "Lc on the 'clean' (un-mixed) or the 'mixed' batch "
                        '(interpretation choice 2)', choices=('clean', 'mixed'))
    step1_labels: str = option('soft', "step 1 trains on 'soft' Y or 'hard' argmax Y",
                               choices=('soft', 'hard'))
    step2_labels: str = option('soft', "step 2 trains on step 1's 'soft' or 'hard' labels "
                               '(interpretation choice 3)', choices=('soft', 'hard'))
    step2_init: str = option('fresh', "step 2 starts from a 'fresh' network or from 'step1''s "
                             '(interpretation choice 1)', choices=('fresh', 'step1'))
    eval_batch_size: int = option(None, 'evaluation batch', parse=options.integer(1),
                                  commands=(RUN, TABLE, BENCHMARK), identity=False,
                                  default_text="the data set's: 1000, Clothing1M 100")
    progress: bool = option(True, 'no progress bar or per-epoch table', commands=(RUN,),
                            store_true=True, inverse='--quiet', identity=False)
    tf32: bool = option(False, 'TF32 matrix products on the GPU (faster, not float32: off by '
                        'default; recorded in the provenance)', store_true=True,
                        commands=(RUN, TABLE, BENCHMARK), identity=False)
    weights: str = option(None, "Clothing1M: the ImageNet ResNet-50 weights converted to .npz "
                          "(datasets/README.md), or 'none' for random initial weights (not the "
                          "paper's)", parse=options.path, render=_path, datasets=('clothing1m',))
    iterations_per_epoch: int = option(None, 'train each epoch on a random subset of this many '
                                       'batches (shortened epochs; recorded)',
                                       parse=options.integer(1))
    loader_threads: int = option(8, 'Clothing1M: image decoding threads', identity=False,
                                 parse=options.integer(0), datasets=('clothing1m',))

    def __post_init__(self):
        spec = data_set(self.dataset)
        defaults = dict(noise=spec.default_noise, rate=spec.default_rate,
                        transition=spec.transition, **dict.fromkeys(SEEDS, self.trial))
        for name, default in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, default)
        self.overrides = {part: dict(values) for part, values in self.overrides.items()}
        self.validate()

    # ----- checks -----
    def validate(self):
        options.check_fields(self)
        spec = data_set(self.dataset)
        if self.noise not in spec.noises:
            raise ValueError('{} takes {} noise, not {!r}'.format(
                self.dataset, ' or '.join(spec.noises), self.noise))
        if spec.real_noise and self.rate != 0:
            raise ValueError('{} takes no noise rate (its noise is real)'.format(self.dataset))
        if self.transition not in TRANSITIONS and not (
                str(self.transition).endswith('.npy') and os.path.isfile(self.transition)):
            raise ValueError('--transition takes true, estimate or an existing .npy file, got '
                             '{!r}'.format(self.transition))
        if self.transition == 'true' and spec.real_noise:
            raise ValueError('{} has no true noise transition matrix: Forward T takes '
                             '--transition estimate (the default there) or an estimated matrix '
                             '(.npy)'.format(self.dataset))
        for need in spec.needs:
            if not getattr(self, need):
                raise ValueError('{} needs --{}: {}'.format(
                    self.dataset, need.replace('_', '-'),
                    RunConfig.__dataclass_fields__[need].metadata['help']))
        self._check_overrides()
        self.settings()   # the resolved schedules are checked there (hparams.check_schedule)

    def _check_overrides(self):
        every = self.setting_defaults()
        for part, given in self.overrides.items():
            if part not in every:
                raise ValueError('--set: unknown part {}: the parts are {}'.format(
                    part, ', '.join(SETTING_PARTS)))
            unknown = sorted(set(given) - set(every[part]))
            if unknown:
                raise ValueError('--set: unknown {} setting(s) {}: the {} settings are {}'.format(
                    part, ', '.join(unknown), part, ', '.join(sorted(every[part]))))
            for key, value in given.items():
                problem = hparams.check_setting(key, value, every[part][key])
                if problem:
                    raise ValueError('--set {}.{} {}'.format(part, key, problem))

    def setting_defaults(self):
        """What ``--set`` may change on this data set: ``{part: {key: default}}``."""
        step1, step2 = self.spec.schedules()
        for key in ('alpha', 'beta', 'lr'):
            step1.setdefault(key, 1.0)
        step2.setdefault('mixup_alpha', 1.0)
        return {'step1': step1, 'step2': step2, 'pencil': self.spec.pencil()}

    # ----- what follows from it -----
    @property
    def spec(self):
        """The data set's description (:class:`reproduce.run.data.DataSet`)."""
        return DATA_SETS[self.dataset]

    def settings(self):
        """The resolved hyper-parameters: ``{'model', 'step1', 'step2', 'pencil'}``."""
        step1, step2 = self.spec.schedules()
        row = self.spec.row(self.noise, self.rate)
        if row is not None:
            step1.update(alpha=row['alpha'], beta=row['beta'], lr=row['lr'])
            step2.setdefault('mixup_alpha', row['mixup_alpha'])
        steps = dict(zip(SETTING_PARTS, (step1, step2, self.spec.pencil())))
        for part, step in steps.items():
            step.update({k: tuple(v) if isinstance(v, list) else v
                         for k, v in self.overrides.get(part, {}).items()})
            steps[part] = hparams.scaled(step, self.epochs_scale)
        steps['pencil']['epochs'] = sum(steps['pencil']['stages'])
        for part, step in steps.items():
            hparams.check_schedule(part, step)
        return dict(model=dict(self.spec.model), **steps)

    def identity(self):
        """The options that decide what the run computes, as JSON-ready data (paths as file
        names, not where they lie on this machine)."""
        fields = {f.name: getattr(self, f.name) for f in options.declared(RunConfig)
                  if f.metadata['identity'] and f.name != 'overrides'}
        fields.update({part: self.overrides.get(part, {}) for part in SETTING_PARTS})
        fields['weights'] = os.path.basename(self.weights) if self.weights else None
        fields['transition'] = self.transition_name()
        return json.loads(json.dumps(fields))

    def launch(self):
        """How to start this run (the ``launch`` entry of its ``config.json``): the options that
        do not change what it computes, and the full paths of its files."""
        fields = {f.name: getattr(self, f.name) for f in options.declared(RunConfig, RUN)
                  if not f.metadata['identity']}
        fields.update(weights=self.weights, transition=self.transition)
        return json.loads(json.dumps(fields))

    def transition_name(self):
        """Forward T's matrix source: 'true', 'estimate', or the file's name."""
        return (self.transition if self.transition in TRANSITIONS
                else os.path.basename(self.transition))

    def label(self):
        """The data set and schedule part of the run's name (also the folder of its tables):
        ``<dataset>[-x<epochs scale>][-i<iterations per epoch>]``."""
        label = self.dataset if self.epochs_scale == 1 else '{}-x{:g}'.format(
            self.dataset, self.epochs_scale)
        if self.iterations_per_epoch:
            label += '-i{}'.format(self.iterations_per_epoch)
        return label

    def name(self):
        """The run's directory name below the output root:
        ``<label()>/<noise>-<rate in %>/trial<k>``."""
        setting = 'real' if self.spec.real_noise else '{}-{:g}'.format(
            self.noise, round(100 * self.rate, 4))
        return os.path.join(self.label(), setting, 'trial{}'.format(self.trial))

    def evaluation_batch_size(self):
        return self.eval_batch_size or self.spec.eval_batch_size


def defaults_identity():
    """The identity of the defaults: what a field missing from an older ``config.json`` was."""
    return RunConfig().identity()


def from_values(values):
    """A RunConfig from :func:`reproduce.run.options.values` (the overrides combined)."""
    values = dict(values)
    if isinstance(values.get('overrides'), list):
        values['overrides'] = combine_settings(values['overrides'])
    return RunConfig(**values)


def from_file(path):
    """The RunConfig that a run folder's ``config.json`` describes (its identity and its
    ``launch`` entry); ValueError, one line, where the file cannot describe one."""
    if not os.path.exists(path):
        raise ValueError('{} does not exist'.format(path))
    reason = rundir.problem(path)
    if reason:
        raise rundir.DamagedFile('{} is damaged ({}): move it aside and start the run with its '
                                 'options and --out {}'.format(path, reason,
                                                               os.path.dirname(path)))
    data = rundir.read_json(path)
    if not isinstance(data, dict):
        raise ValueError("{} is not a run's settings file (not a JSON object)".format(path))
    launch = data.get(rundir.LAUNCH)
    if not isinstance(launch, dict):
        raise ValueError('{} says what its run computes but not how to start it (written by an '
                         'older version): start it with its options and --out {}'.format(
                             path, os.path.dirname(path)))
    values = {k: v for k, v in data.items()
              if k not in SETTING_PARTS + ('weights', 'transition', rundir.LAUNCH)}
    values['overrides'] = {part: data[part] for part in SETTING_PARTS if data.get(part)}
    values.update(launch)
    values.pop('batch_norm', None)    # a retired option that never changed the numbers
    unknown = sorted(set(values) - set(RunConfig.__dataclass_fields__))
    if unknown:
        raise ValueError('{}: unknown setting(s) {} (written by another version?)'.format(
            path, ', '.join(unknown)))
    try:
        return RunConfig(**values)
    except (TypeError, ValueError) as error:
        raise ValueError('{}: {}'.format(path, error))
