"""The options of the scripts beside a run's configuration (:class:`reproduce.run.config.RunConfig`),
declared once (:mod:`reproduce.run.options`), and the parsers built from them. Commands: ``run``
(``python -m reproduce.experiment``), ``table`` (the table scripts and ``figure3.py``), ``rates``
(Tables 2 and 3), ``check`` (the table scripts' ``--check``), ``figure`` (``figure3.py``).
"""
import dataclasses
import os
import shlex
import sys

from reproduce.run import options
from reproduce.run.config import combine_settings, parse_rate, RunConfig
from reproduce.run.data import DATA_SETS
from reproduce.run.methods import NAMES as METHODS
from reproduce.run.options import option, RUN, TABLE

RATES, CHECK, FIGURE = 'rates', 'check', 'figure'


def parse_methods(text):
    chosen = options.words(text)      # refuses an empty list
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ValueError('unknown method(s) {}: this code computes {}'.format(
            ', '.join(unknown), ', '.join(METHODS)))
    return chosen


def parse_rates(text):
    """Comma-separated noise rates; a rate given twice (0.5 and 50%) is merged, noted."""
    items = [w.strip() for w in text.split(',') if w.strip()]
    if not items:
        raise ValueError('takes comma-separated noise rates, got {!r}'.format(text))
    return options.merged([parse_rate(w) for w in items])


def parse_panel_rate(text):
    """A panel's noise rate, or 'none' to leave the panel (and its runs) out."""
    return None if text.strip().lower() == 'none' else parse_rate(text)


def render_panel_rate(value):
    return 'none' if value is None else repr(value)


def parse_sbatch_option(text):
    """An ``#SBATCH`` option as given (``--time=8:00:00``, ``-p gpu``) or without its dashes."""
    if not text.strip():
        raise ValueError('takes an #SBATCH option such as partition=gpu, got {!r}'.format(text))
    return text.strip() if text.strip().startswith('-') else '--' + text.strip()


@dataclasses.dataclass
class Selection:
    """Which methods run."""

    methods: list = option(list(METHODS), 'comma-separated methods: ' + ', '.join(METHODS),
                           commands=(RUN, TABLE), parse=parse_methods,
                           render=options.render_words, default_text="all; a table script: the "
                           "paper's rows of its table; figure3.py: of Tables 2 and 3")


@dataclasses.dataclass
class RunPlace:
    """Where a single run goes."""

    out: str = option(None, 'the run directory', commands=(RUN,), parse=options.path,
                      render=os.path.abspath)
    root: str = option(None, 'an output root: the run directory below it is named from the '
                       'settings (<dataset>[-x<scale>]/<noise>-<rate>/trial<k>)', commands=(RUN,),
                       parse=options.path, render=os.path.abspath)
    config: str = option(None, "a run folder's config.json (the table scripts write it): run "
                         'what it describes there; beside it only --methods and the options '
                         'that do not change what a run computes (--device, --quiet, ...)',
                         commands=(RUN,), parse=options.path, metavar='FILE')


@dataclasses.dataclass
class TableOptions:
    """What the table and figure scripts run, where, and how many at once."""

    trials: int = option(None, 'trials 0..N-1 (every seed of trial k is k)', commands=(TABLE,),
                         parse=options.integer(1))
    rates: list = option(None, 'comma-separated noise rates, each a fraction in [0, 1) or a '
                         'percentage (0.3,0.5 or 30%,50%)', commands=(RATES,), parse=parse_rates,
                         render=options.render_words)
    jobs: int = option(1, 'runs at once (processes)', commands=(TABLE,),
                       parse=options.integer(1))
    per_device: int = option(None, 'runs at once on each device (sets --jobs to this times the '
                             'number of devices; their memory is checked first against the '
                             'recorded GPU check, results/benchmarks/)', commands=(TABLE,),
                             parse=options.integer(1))
    devices: list = option(None, "comma-separated devices to spread the runs over, e.g. "
                           "'@cupy:0,@cupy:1' (replaces --device)", commands=(TABLE,),
                           parse=options.words, render=options.render_words)
    out: str = option('runs', 'the output root of the runs', commands=(TABLE,),
                      parse=options.path)
    results: str = option(None, 'where tables and figures go', commands=(TABLE,),
                          parse=options.path,
                          default_text='results/<dataset>[-x<scale>]')
    print_commands: bool = option(False, 'print one command per unfinished run (for a job '
                                  'array) and stop; then the command that makes the table from '
                                  'the finished runs', commands=(TABLE,), store_true=True)
    sbatch: str = option(None, 'write a SLURM array script of the unfinished runs to FILE and '
                         'stop (submit it with sbatch FILE; reproduce/README.md, "On a '
                         'cluster")', commands=(TABLE,), parse=options.path, metavar='FILE')
    sbatch_options: list = option([], "an #SBATCH option of --sbatch's script, e.g. "
                                  'partition=gpu or time=8:00:00 (repeatable)',
                                  flag='--sbatch-option', commands=(TABLE,), repeat=True,
                                  parse=parse_sbatch_option, metavar='OPTION')
    plan: bool = option(False, 'print the plan (runs, epochs, their split over the devices and '
                        'an estimated wall time from recorded measurements) and stop; every '
                        'table script prints it before it starts anyway', commands=(TABLE,),
                        store_true=True)
    gather_only: bool = option(False, 'run nothing: use the runs finished so far',
                               commands=(TABLE,), store_true=True)
    check: str = option(None, 'compare with a recorded table JSON; exit 1 listing every cell '
                        'that moved by more than its tolerance', commands=(CHECK,),
                        parse=options.path, metavar='FILE')
    tolerance: float = option(None, 'allowed mean paired difference of the accuracy cells in '
                              'percentage points', commands=(CHECK,), parse=options.number,
                              check=options.positive,
                              default_text='per cell, from the recording only: 3 per-trial '
                                           'platform spreads / sqrt(trials), at least 1 point; '
                                           'README, "Regression checks"')
    symmetric_rate: float = option(0.9, "noise rate of the symmetric panel ('none': no panel)",
                                   commands=(FIGURE,), parse=parse_panel_rate,
                                   render=render_panel_rate)
    asymmetric_rate: float = option(0.3, "noise rate of the asymmetric panel ('none': no panel)",
                                    commands=(FIGURE,), parse=parse_panel_rate,
                                    render=render_panel_rate)
    train: bool = option(False, 'train the runs even where --out holds none of them (they are '
                         "table2.py's and table3.py's)", commands=(FIGURE,), store_true=True)


def table_parser(description, commands, table=None, epilog=None, defaults=None):
    """The parser of a table script (``table``: 2, 3 or 4) or of figure3 (None)."""
    p = options.Parser(description=description, epilog=epilog,
                       formatter_class=options.HelpFormatter)
    datasets = [name for name, spec in DATA_SETS.items()
                if table in spec.tables or (table is None and 2 in spec.tables)]
    one = len(datasets) == 1          # then no --dataset (its inputs are checked by RunConfig)
    options.add_options(p, RunConfig, TABLE, only=[f.name for f in options.declared(
        RunConfig, TABLE) if not (one and f.name == 'dataset')],
        choices={'dataset': tuple(datasets)})
    options.add_options(p, Selection, TABLE)
    for command in commands:
        options.add_options(p, TableOptions, command, defaults=defaults)
    p.set_defaults(dataset=datasets[0], methods=None)   # None: the paper's rows
    return p


#: Options that do not change which runs a table gathers: left out of its gather command.
NOT_GATHERED = ('device', 'devices', 'jobs', 'per_device', 'eval_batch_size', 'tf32',
                'loader_threads', 'sbatch', 'sbatch_options')


def gather_command(parser, args, script):
    """The command that makes ``script``'s table (or figures) from the finished runs: the options
    of this command line that decide which runs (paths absolute), and ``--gather-only``."""
    words = [sys.executable, script]
    for field in [f for cls in (RunConfig, Selection, TableOptions) for f in options.declared(cls)]:
        name, meta = field.name, field.metadata
        value = getattr(args, name, None)
        if (not hasattr(args, name) or name in NOT_GATHERED or meta['store_true']
                or (value == parser.get_default(name) and name != 'out')):
            continue
        value = combine_settings(value) if name == 'overrides' else value
        words += ([options.flag_of(field), os.path.abspath(value)] if name in ('out', 'results')
                  else options.command_words(field, value))
    return shlex.join(words + ['--gather-only'])
