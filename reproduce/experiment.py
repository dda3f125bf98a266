"""One run of the method and its baselines: a configuration in, its parts trained in a run
directory. The table scripts run many of these, each as this module's command line::

    python -m reproduce.experiment --dataset digits --noise symmetric --rate 0.5 --out runs/x

A run is step 1 (``JointOptimizationUpdater``) once per (noise, trial), which writes the corrected
labels; step 2 forked from them twice, ``ours`` (Lc + Lmix) and ``tanaka`` (Lc alone, Tanaka et
al.'s second step); the ``cross_entropy`` baseline; Forward T (``forward_t``) with the true, a
given or an estimated transition matrix; and PENCIL (``pencil``) with its own schedule
(:mod:`reproduce.methods`). Each part trains in its own folder of the run directory
(:mod:`reproduce.rundir`); starting the same run again skips the finished parts and resumes the
others from their last snapshot.
"""
import dataclasses
import os
import shlex
import signal
import sys

if __package__ in (None, ''):  # run as a file: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import chainer_compat  # noqa: F401,E402  (before chainer)
import chainer  # noqa: E402

from reproduce import cli, config as config_lib, data as data_sets, methods as methods_lib  # noqa
from reproduce import options, rundir  # noqa: E402
from reproduce.config import RunConfig  # noqa: E402
from updaters.extensions import NonFiniteLossError  # noqa: E402

METHODS = methods_lib.NAMES


def resolve_device(device):
    """``'auto'``: the first GPU when CuPy sees one, else the CPU; other values unchanged."""
    if device != 'auto':
        return device
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() > 0:
            return '@cupy:0'
    except Exception:  # no CuPy, no driver, no GPU: all mean the CPU
        pass
    return '@numpy'


def check_device(device):
    """Refuses, with one line, a device Chainer cannot use (before anything starts)."""
    try:
        chainer.get_device(resolve_device(device))
    except Exception as error:        # ValueError, RuntimeError, CuPy's errors: all one line
        raise ValueError("cannot use device {!r} ({}): use '@numpy', '@cupy:<id>' or "
                         "auto".format(device, str(error).splitlines()[0] if str(error) else
                                       type(error).__name__))


def run(config, out_dir, methods=METHODS, extra_extensions=()):
    """Runs the configured ``methods`` in ``out_dir``; returns {part: result dict}.

    Claims the directory for the configuration (a directory made with other settings is
    refused, nothing touched); each part is trained under its lock (:func:`rundir.locked`), so
    two processes never train the same part at once (other parts of the same run may train
    beside it: the runner runs a run's units in parallel)."""
    methods_lib.check_methods(methods)
    config = dataclasses.replace(config, device=resolve_device(config.device))
    identity, defaults = config.identity(), config_lib.defaults_identity()
    rundir.check_identity(out_dir, identity, defaults)
    config.spec.check_inputs(config)              # every check before the first file
    data = config.spec.load(config)
    rundir.claim(out_dir, identity, defaults)     # again: another process may have claimed it
    return run_with_data(config, data, data_sets.noisy_labels(config, data), out_dir,
                         methods, extra_extensions)


def run_with_data(config, data, noisy, out_dir, methods=METHODS, extra_extensions=()):
    """:func:`run` on given data and noisy labels (host arrays), without claiming ``out_dir``
    (the GPU check's parity runs train on a small data set of their own)."""
    config = dataclasses.replace(config, device=resolve_device(config.device))
    context = methods_lib.Context(config, data, noisy, out_dir, tuple(extra_extensions))
    return methods_lib.run_parts(context, list(methods))


# ----------------------------------------------------------------------------------------------
# Command line


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
    if bool(place['out']) == bool(place['root']):
        p.error('give one of --out (the run directory) and --root (an output root)')
    config = config_lib.from_values(options.values(args, RunConfig, options.RUN))
    methods = options.values(args, cli.Selection, options.RUN)['methods']
    out = place['out'] or os.path.join(place['root'], config.name())
    return config, methods, out


def command_line(config, methods, out, overrides=None):
    """The options of this command that run ``methods`` of ``config`` in ``out``."""
    return (config.command_line(overrides) +
            options.command_line(cli.Selection(methods=list(methods)), options.RUN) +
            options.command_line(cli.RunPlace(out=out), options.RUN))


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(argv=None):
    """Exit status: 0 done, 1 the run failed (its snapshots kept), 2 bad input (nothing was
    created), 130 interrupted (snapshots kept; the message says how to resume)."""
    from reproduce import preflight
    try:
        config, methods, out = parse(argv)
        check_device(config.device)
        preflight.folder(out, '--out')
    except ValueError as error:
        sys.stderr.write('error: {}\n'.format(error))
        sys.exit(2)
    signal.signal(signal.SIGTERM, _stop)      # the runner stops a run this way: keep snapshots
    try:
        results = run(config, out, methods=methods)
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
                         'command resumes from there:\n  {}\n'.format(
                             out, ' '.join(shlex.quote(w) for w in [
                                 sys.executable, os.path.abspath(__file__)] +
                                 command_line(config, methods, out))))
        sys.exit(130)
    for part, result in results.items():
        line = '{:>14}: best {:.4f}  last {:.4f}'.format(part, result['best_test'],
                                                          result['last_test'])
        if 'labels' in result:
            line += '  labels {noisy_accuracy:.4f} -> {corrected_accuracy:.4f}'.format(
                **result['labels'])
        print(line)


if __name__ == '__main__':
    main()
