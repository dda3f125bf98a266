"""Record a table with how far its numbers move across CPU numerics settings.

    python reproduce/platform_spread.py --table 2 --name digits_regression_table2 -- \\
        --dataset digits --rates 0.5 --trials 1 --epochs-scale 0.2 --jobs 2

runs ``reproduce/table<N>.py`` with the options after ``--`` once per setting of :data:`SETTINGS`
(they stand in for other machines: OpenBLAS kernels, numpy's SIMD paths, exact CPU mode), each in
its own folder under ``--work``, and writes ``results/recorded/<name>.json`` and ``.md``: the
reference setting's table with every cell's value under every setting (``platform_spread``), from
which ``--check`` sizes its tolerances (:mod:`reproduce.report.regression`).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys

import atomic_files as atomic
import chainer_compat
from reproduce import REPOSITORY
from reproduce.report import regression, table_files
from reproduce.run import options, provenance

#: numpy's dispatch targets above its baseline; disabling them all leaves the baseline paths.
NUMPY_ABOVE_BASELINE = ('SSSE3 SSE41 POPCNT SSE42 AVX F16C FMA3 AVX2 '
                        + ' '.join(chainer_compat.NUMPY_AVX512_TARGETS))
#: (name, environment, what the CPU needs) of every setting. The first one this CPU can run is
#: the reference: exact CPU mode where the CPU has AVX2 and FMA (so that anyone in that mode can
#: match it exactly), else the machine's own choice.
SETTINGS = (
    ('exact', {chainer_compat.EXACT_CPU_VARIABLE: '1'}, {'avx2', 'fma'}),
    ('native', {}, set()),
    ('openblas-prescott', {'OPENBLAS_CORETYPE': 'Prescott'}, set()),
    ('openblas-haswell', {'OPENBLAS_CORETYPE': 'Haswell'}, {'avx2', 'fma'}),
    ('openblas-skylakex', {'OPENBLAS_CORETYPE': 'SkylakeX'}, {'avx512f'}),
    ('numpy-no-avx512', {'NPY_DISABLE_CPU_FEATURES': ' '.join(
        chainer_compat.NUMPY_AVX512_TARGETS)}, set()),
    ('numpy-baseline', {'NPY_DISABLE_CPU_FEATURES': NUMPY_ABOVE_BASELINE}, set()),
)


def usable_settings(flags=None):
    """The settings this CPU can run (a forced kernel the CPU lacks would crash)."""
    flags = chainer_compat.cpu_flags() if flags is None else flags
    return [(name, env) for name, env, needs in SETTINGS if needs <= flags]


def environment(setting_env):
    """This process's environment without any numerics variable, plus ``setting_env``."""
    env = {k: v for k, v in os.environ.items() if k not in provenance.NUMERICS_VARIABLES}
    env.update(setting_env)
    return env


def run_setting(number, name, setting_env, table_args, work):
    """Runs the table script under one setting; returns its table JSON."""
    folder = os.path.join(work, name)
    results = os.path.join(folder, 'results')
    command = [sys.executable, os.path.join(REPOSITORY, 'reproduce', 'table{}.py'.format(
        number))] + list(table_args) + ['--device', '@numpy', '--out',
                                         os.path.join(folder, 'runs'), '--results', results]
    print('--- {}: {}'.format(name, ' '.join(
        '{}={}'.format(k, v) for k, v in setting_env.items()) or 'the machine\'s own'), flush=True)
    done = subprocess.run(command, env=environment(setting_env), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise RuntimeError('the table under setting {} failed (exit {}); the end of its '
                           'output:\n{}'.format(name, done.returncode,
                                                '\n'.join(done.stdout.splitlines()[-15:])))
    with open(os.path.join(results, 'table{}.json'.format(number))) as f:
        return json.load(f)


def spread(tables):
    """``platform_spread`` cells of ``{setting name: table}``: every cell's mean per setting
    (``values``, with ``min`` and ``max``) and every trial's value per setting (``per_trial``:
    ``{setting: {'trials': [...], 'values': [...]}}``)."""
    per_setting = {name: regression.cells_of(table) for name, table in tables.items()}
    keys = sorted(set().union(*(set(c) for c in per_setting.values())),
                  key=lambda k: (k[0], k[1], k[2]))
    cells = []
    for key in keys:
        found = {name: cells[key] for name, cells in per_setting.items()
                 if cells.get(key, {}).get('mean') is not None}
        if not found:
            continue
        values = {name: cell['mean'] for name, cell in found.items()}
        per_trial = {}
        for name, cell in found.items():
            trials = regression.trial_values(cell) or {}
            per_trial[name] = {'trials': sorted(trials),
                               'values': [trials[t] for t in sorted(trials)]}
        cells.append({'part': key[0], 'quantity': key[1], 'rate': key[2], 'values': values,
                      'per_trial': per_trial,
                      'min': min(values.values()), 'max': max(values.values())})
    return cells


def record(number, name, table_args, work, dest, flags=None):
    """Runs every usable setting, writes ``dest/<name>.json`` and ``.md``; returns the record."""
    settings = usable_settings(flags)
    measured = {setting: run_setting(number, setting, env, table_args, work)
                for setting, env in settings}
    reference = settings[0][0]
    recorded = dict(measured[reference])
    recorded['platform_spread'] = {
        'reference': reference,
        'settings': [{'name': s, 'environment': env,
                      'platforms': measured[s]['provenance']['platforms']}
                     for s, env in settings],
        'cells': spread(measured),
        'recorded': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'command': ['reproduce/platform_spread.py', '--table', str(number), '--name', name,
                    '--'] + list(table_args),
    }
    atomic.write_json(os.path.join(dest, name + '.json'), recorded)
    atomic.write_text(os.path.join(dest, name + '.md'), table_files.markdown_file(recorded))
    return recorded


def main(argv=None):
    """The command line; returns the exit status (1: a setting's table failed)."""
    p = options.Parser(description=__doc__.split('\n\n')[0])
    p.add_argument('--table', type=int, choices=(2, 3, 4), required=True)
    p.add_argument('--name', required=True, type=options.file_name,
                   help='file name (no extension) under --dest')
    p.add_argument('--dest', default=os.path.join(REPOSITORY, 'results', 'recorded'))
    p.add_argument('--work', default=os.path.join(REPOSITORY, 'runs', 'platform_spread'),
                   help='where the runs of every setting go (<work>/<name>/<setting>/)')
    p.add_argument('table_args', nargs=argparse.REMAINDER,
                   help='-- then the options of reproduce/table<N>.py (not --out, --results, '
                        '--device)')
    args = p.parse_args(argv)
    table_args = args.table_args[1:] if args.table_args[:1] == ['--'] else args.table_args
    for option in ('--out', '--results', '--device', '--devices'):
        if option in table_args:
            p.error('{} is set per setting by this script; leave it out'.format(option))
    try:
        recorded = record(args.table, args.name, table_args, os.path.join(args.work, args.name),
                          args.dest)
    except RuntimeError as error:
        sys.stderr.write('error: {}\n'.format(error))
        return 1
    sys.stdout.write(regression.spread_markdown(recorded))
    sys.stdout.write('written: {}\n'.format(os.path.join(args.dest, args.name + '.json')))
    return 0

