"""One run of the method and its baselines, trained in its run folder::

    python -m reproduce.experiment --dataset digits --noise symmetric --rate 0.5 --out runs/x
    python -m reproduce.experiment --config runs/x/config.json --methods ours   # as the tables do

Step 1 once per (noise, trial), both step-2 forks from its labels (``ours``, ``tanaka``), and the
baselines, each part in its own folder (:mod:`reproduce.run.methods`). The same command again
skips the finished parts and resumes the others from their last snapshot.
"""
import dataclasses
import os
import shlex
import signal
import sys

from reproduce.batch import cli
from reproduce.run import config as config_lib, device, launch, options, preflight, rundir
from reproduce.run.config import RunConfig
from updaters.extensions import NonFiniteLossError

METHODS = launch.METHODS


def parser():
    p = options.Parser(description=__doc__.split('\n\n')[0],
                       formatter_class=options.HelpFormatter)
    options.add_options(p, RunConfig, options.RUN)
    options.add_options(p, cli.Selection, options.RUN)
    options.add_options(p, cli.RunPlace, options.RUN)
    return p


def parse(argv=None):
    """``(config, methods, run directory)`` from a command line; ValueError for bad values."""
    p = parser()
    args = p.parse_args(argv)
    place = options.values(args, cli.RunPlace, options.RUN)
    methods = options.values(args, cli.Selection, options.RUN)['methods']
    if place['config']:
        if place['out'] or place['root']:
            p.error('--config names the run folder: give no --out or --root beside it')
        return from_file(place['config'], options.given(p, argv), args), methods, \
            os.path.dirname(os.path.abspath(place['config']))
    if bool(place['out']) == bool(place['root']):
        p.error('give one of --out (the run directory), --root (an output root) and --config '
                "(a run folder's config.json)")
    config = config_lib.from_values(options.values(args, RunConfig, options.RUN))
    out = place['out'] or os.path.join(place['root'], config.name())
    return config, methods, out


def from_file(path, given, args):
    """The run ``path`` describes, with the options given beside it that do not change what it
    computes; ValueError for one that would."""
    fields = options.declared(RunConfig, options.RUN)
    fixed = [options.flag_of(f) for f in fields if f.metadata['identity'] and f.name in given]
    if fixed:
        raise ValueError('{} cannot change the run that {} describes: its settings come from '
                         'that file (make another run for other settings)'.format(
                             ', '.join(fixed), path))
    config = config_lib.from_file(path)
    changes = {f.name: getattr(args, f.name) for f in fields if f.name in given}
    return dataclasses.replace(config, **changes) if changes else config


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    """Exit status: 0 done, 1 the run failed (its snapshots kept), 2 bad input (nothing was
    created), 130 interrupted (snapshots kept; the message says how to resume)."""
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        config, methods, out = parse(words)
        device.check(config.device)
        preflight.folder(out, '--out')
    except ValueError as error:
        sys.stderr.write('error: {}\n'.format(error))
        sys.exit(2)
    signal.signal(signal.SIGTERM, _stop)      # the runner stops a run this way: keep snapshots
    try:
        results = launch.run(config, out, methods=methods)
    except (ValueError, FileNotFoundError) as error:
        sys.stderr.write('error: {}\n'.format(error))   # nothing was trained: bad input
        sys.exit(2)
    except (NonFiniteLossError, rundir.RunDirectoryBusy) as error:
        # one line, what is wrong and what to do; finished parts and snapshots stay on disk
        sys.exit('error: {}'.format(error))
    except OSError as error:
        sys.exit('error: {}'.format(preflight.describe(error)))
    except KeyboardInterrupt:
        sys.stderr.write('\ninterrupted: every finished epoch is in its snapshot under {}; this '
                         'command resumes from there:\n  {}\n'.format(out, ' '.join(
                             shlex.quote(w) for w in [sys.executable, os.path.abspath(__file__)]
                             + words)))
        sys.exit(130)
    for part, result in results.items():
        line = '{}: best {:.4f}  last {:.4f}'.format(os.path.join(out, part),
                                                     result['best_test'], result['last_test'])
        if 'labels' in result:
            line += '  labels {noisy_accuracy:.4f} -> {corrected_accuracy:.4f}'.format(
                **result['labels'])
        print(line)


if __name__ == '__main__':
    main()
