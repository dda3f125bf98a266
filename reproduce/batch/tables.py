"""The paper's tables, measured: plan and run a table's runs, gather the finished ones into Table
2/3/4's layout beside the published numbers, print, write and check it (``reproduce/table<N>.py``
is :func:`main` with N). Numbers are test accuracies in %: "best" at the epoch of highest (clean)
validation accuracy, "last" after the last epoch.
"""
import datetime
import glob
import json
import os
import shlex
import sys

from reproduce import REPOSITORY
from reproduce.batch import cli, plan, runner, slurm
from reproduce.report.aggregate import KINDS, stats
from reproduce.report.table_format import format_terminal, title_text
from reproduce.run.config import RunConfig
from reproduce.run.methods import METHODS, NAMES as COMPUTED, PARTS
from reproduce.report import aggregate, page, paper, regression, significance, table_files
from reproduce.run import (config as config_lib, device as device_lib, options, preflight,
                           provenance, rundir)
import atomic_files as atomic

#: The noise kind of each table.
NOISE = {2: 'symmetric', 3: 'asymmetric', 4: 'real'}
#: The name suffix of a table that was not written over a fuller one.
PARTIAL = '.partial'


def _provenance(parts, config, trials):
    prov = [p['provenance'] for p in parts]
    settings = config.settings()
    dates = sorted(p['date'] for p in prov)
    return {
        'commits': sorted({str(p['commit']) for p in prov}),
        'devices': sorted({p['device'] for p in prov}),
        'versions': sorted({json.dumps(p['versions'], sort_keys=True) for p in prov}),
        'tf32': sorted({p.get('tf32', False) for p in prov}),
        'platforms': [json.loads(t) for t in sorted({json.dumps(
            provenance.numerics_key(p), sort_keys=True) for p in prov})],
        'exact_cpu': sorted({bool((p.get('platform') or {}).get('exact_cpu')) for p in prov}),
        'run_dates': [dates[0], dates[-1]] if dates else [],
        'epochs_scale': config.epochs_scale,
        'epochs': {k: settings[k]['epochs'] for k in ('step1', 'step2', 'pencil')},
        'settings_changed': config_lib.render_settings(config.overrides),
        'transition': config.transition_name(),
        'iterations_per_epoch': config.iterations_per_epoch,
        'pretrained_weights': (None if 'weights' not in config.spec.needs else
                               config.weights != 'none'),
        'trials_requested': list(trials),
        'seeds': 'every seed (noise, split, init, order, mix-up) equals the trial number',
        'train_hours': sum(p['train_seconds'] for p in parts) / 3600,
        'table_commit': provenance.git_commit(),
        'table_written': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
    }


def row_label_suffix(method, config):
    """What a computed row's label adds to the method's name: the matrix of Forward T, and the
    weight of Lmix in "ours" when it is not the paper's 1."""
    if method == 'ours' and config.mixup_weight != 1:
        return ' (Lmix weight {:g})'.format(config.mixup_weight)
    if method == 'forward_t':
        return {'true': ' (true T)', 'estimate': ' (estimated T)'}.get(
            config.transition, ' (T from {})'.format(config.transition_name()))
    return ''


def build(number, units, rates, trials, methods, base_config):
    """The table as JSON-ready data: rows in the paper's order with (paper, measured, difference)
    per cell; rows not computed show the paper's numbers only, marked."""
    published = paper.load_paper_table(number)
    found = aggregate.gather(aggregate.runs_of_units(units))
    compare = base_config.dataset == published['dataset']
    rows = []
    candidates = published['rows'] + [{'method': m} for m in COMPUTED if m not in
                                      [row['method'] for row in published['rows']]]
    for row in sorted(candidates, key=lambda r: paper.METHODS.index(r['method'])):
        method = row['method']
        if not compare and method not in COMPUTED:
            continue
        status = ('computed' if method in methods else 'not run') if method in COMPUTED \
            else 'quoted'
        label = row.get('label') or METHODS[method].label
        if status == 'computed':
            label += row_label_suffix(method, base_config)
        entry = {'number': row.get('number'), 'method': method, 'label': label,
                 'status': status}
        for kind in KINDS:
            entry[kind] = []
            for rate in rates:
                cell = {'rate': rate, 'paper': paper.paper_cell(
                    published, method, None if published['rates'] is None else rate, kind)
                    if compare else None, 'paper_decimals': row.get('decimals', 2)}
                cell.update(found.cell(method, rate, kind) if status == 'computed'
                            else stats([]))
                cell['diff'] = (cell['mean'] - cell['paper']
                                if cell['mean'] is not None and cell['paper'] is not None else None)
                entry[kind].append(cell)
        rows.append(entry)
    compare_with_ours(rows)
    table = {
        'table': number, 'title': None, 'dataset': base_config.dataset,
        'noise': base_config.noise, 'rates': list(rates), 'unit': 'percent',
        'compared_with_paper': compare, 'paper_source': published['source'],
        'settings': {k: v for k, v in base_config.identity().items()
                     if k not in ('rate', 'trial') and not k.endswith('_seed')},
        'rows': rows,
        'spread': aggregate.STD_CONVENTION,
        'significance': significance.rule(METHODS['ours'].label),
        'labels': [{'rate': r, 'noisy': found.label_cell(r, 'noisy'),
                    'corrected': found.label_cell(r, 'corrected')} for r in rates],
        'signals': [{'part': part, 'quantity': quantity,
                     'cells': [dict(rate=r, **found.signal(part, quantity, r)) for r in rates]}
                    for part, quantity in sorted({k[:2] for k in found.signals},
                                                 key=lambda k: (PARTS.index(k[0]), k[1]))],
        'provenance': _provenance(found.parts, base_config, trials),
        'runs': found.parts,
    }
    table['title'] = title_text(table)   # what ran: data set, trials, the parts' schedules
    return table


def compare_with_ours(rows):
    """Adds to every computed cell of the other methods its paired comparison with "ours" in
    the same column and kind (``versus_ours``), when "ours" was computed."""
    ours = next((r for r in rows if r['method'] == 'ours' and r['status'] == 'computed'), None)
    if ours is None:
        return
    for row in rows:
        if row is ours or row['status'] != 'computed':
            continue
        for kind in KINDS:
            for cell, reference in zip(row[kind], ours[kind]):
                if cell['n'] and reference['n']:
                    cell['versus_ours'] = significance.compare(reference, cell)


def write(table, directory, name):
    """``name``.json and its other files (:func:`table_files.write_outputs`) in ``directory``,
    each atomically; then the folder's ``report.md``. Returns the paths, the JSON first."""
    paths = [os.path.join(directory, name + '.json')]
    atomic.write_json(paths[0], table)
    paths += table_files.write_outputs(table, directory, name)
    paths.append(page.write_report(directory))
    return paths


def finished_results(table):
    """How many trial results the computed cells of a table hold (a cell counts its trials)."""
    return sum(len(cell.get('values') or []) for row in (table or {}).get('rows', [])
               if row.get('status') == 'computed' for kind in KINDS
               for cell in row.get(kind, []) if cell.get('mean') is not None)


def write_safely(table, directory, name, stream):
    """Writes the table unless that would lose numbers: nothing when no cell is finished; as
    ``<name>.partial`` when the file on disk holds more trial results. Returns the paths."""
    count = finished_results(table)
    if count == 0:
        stream.write('nothing written: no run has finished yet\n')
        return []
    path = os.path.join(directory, name + '.json')
    on_disk = finished_results(rundir.read_json(path))
    if on_disk <= count:   # the complete table: its partial files go
        for stale in glob.glob(os.path.join(glob.escape(directory), name + PARTIAL + '*')):
            os.remove(stale)
        return write(table, directory, name)
    paths = write(table, directory, name + PARTIAL)
    stream.write('{} holds {} trial results, this table {}: it was kept, and this table was '
                 'written beside it as {}\n'.format(preflight.shown(path), on_disk, count,
                                                    os.path.basename(paths[0])))
    return paths


def results_dir(args, config):
    """``--results``, or ``results/<config.label()>`` of the repository."""
    return args.results or os.path.join(REPOSITORY, 'results', config.label())


def base_config(args, noise):
    """The RunConfig fields every run of the table shares (its command-line run options)."""
    base = options.values(args, RunConfig, options.TABLE)
    if isinstance(base.get('overrides'), list):
        base['overrides'] = config_lib.combine_settings(base['overrides'])
    return dict(base, dataset=args.dataset, noise=noise)


def paper_rows(number):
    """The methods of the paper's Table ``number`` that this code computes: its default rows."""
    return [r['method'] for r in paper.load_paper_table(number)['rows'] if r['method'] in COMPUTED]


def run_units(units, args, stream=None):
    """What every table and figure script does with its units before drawing anything: checks
    (the folders it writes; without ``args.train``, some units in ``--out``), the plan, then stop
    (``--plan``), print the commands (both return None) or run what is unfinished unless
    gathering only (returns the failed units)."""
    preflight.folder(args.out, '--out')
    preflight.folder(results_dir(args, units[0].config), '--results')
    if args.sbatch:
        if os.path.isdir(args.sbatch):
            raise ValueError('--sbatch {} is a folder: give a file name'.format(args.sbatch))
        preflight.folder(os.path.dirname(os.path.abspath(args.sbatch)), '--sbatch')
    defaults = config_lib.defaults_identity()
    for unit in units:
        rundir.check_identity(unit.run_dir, unit.config.identity(), defaults)
    devices = args.devices or [units[0].config.device]
    if args.gather_only:
        return []
    jobs = args.per_device * len(devices) if args.per_device else args.jobs
    listing = args.print_commands or args.sbatch       # runs that start elsewhere
    if not (args.plan or listing):   # a run: its device and inputs before the plan
        if not getattr(args, 'train', True) and not any(os.path.isdir(u.run_dir) for u in units):
            raise ValueError('--out {} holds none of the runs figure3.py draws: run table2.py and '
                             'table3.py first (same options), or pass --train'.format(args.out))
        device_lib.check_all(devices)
        units[0].config.spec.check_inputs(units[0].config)
    plan_stream = sys.stderr if args.print_commands else (stream or sys.stdout)
    rows = ('{} (--methods)'.format(', '.join(args.methods)) if args.methods else '; '.join(
        "{}: the paper's Table {} rows this code computes".format(', '.join(paper_rows(n)), n)
        for n in NOISE if NOISE[n] in {u.config.noise for u in units}) + ' (others: --methods)')
    for line in ['rows: ' + rows] + plan.plan_lines(units, devices, jobs):   # no data or device
        plan_stream.write(('# ' if args.print_commands else '') + line + '\n')
    if args.plan:
        return None
    kernel_cache = os.path.join(os.path.abspath(args.out), '.cupy-kernel-cache')
    if args.print_commands:
        runner.print_commands(units, devices, kernel_cache=kernel_cache)
        sys.stderr.write('# afterwards, gather: {}\n'.format(args.gather_command))
        return None
    if args.sbatch:
        slurm.write(units, args.sbatch, devices[0], args.sbatch_options or (),
                    args.gather_command, kernel_cache, stream or sys.stdout)
        return None
    if args.per_device:
        for note in runner.check_gpu_memory(devices, args.per_device):
            (stream or sys.stdout).write(note + '\n')
    return runner.execute(units, jobs=jobs, devices=devices, stream=stream,
                          kernel_cache=kernel_cache)


def run_table(number, args, base, rates, stream=None):
    """Plans, runs, gathers, prints, writes and checks one table; returns the exit status."""
    stream = stream or sys.stdout
    trials = list(range(args.trials))
    methods = args.methods or paper_rows(number)
    units = runner.plan(base, rates, trials, methods, args.out)
    if args.check:   # a wrong file fails now, not after hours of training
        regression.load_check_file(args.check, {
            'table': number, 'dataset': base['dataset'], 'noise': base['noise'],
            'provenance': {'epochs_scale': base['epochs_scale']}})
    failed = run_units(units, args, stream)
    if failed is None:
        return 0
    config = RunConfig(rate=rates[0], **base)
    table = build(number, units, rates, trials, methods, config)
    missing = [u for u in units if not u.finished()]
    if finished_results(table):
        stream.write('\n' + format_terminal(table))
    if missing:
        never = sum(not any(u.epochs_done().values()) for u in missing)
        stream.write('{} of {} planned runs are not finished ({}): {} never trained an epoch, {} '
                     'stopped part-way or failed{}\n'.format(
                         len(missing), len(units), '; '.join(u.label for u in missing[:4]) +
                         '; ...' * (len(missing) > 4), never, len(missing) - never,
                         '; a cell over fewer trials reads (n of {})'.format(len(trials))
                         if finished_results(table) and len(trials) > 1 else ''))
        if args.gather_only:
            stream.writelines(other_configurations(units, args.out))
    paths = write_safely(table, results_dir(args, config), 'table{}'.format(number), stream)
    if paths:
        stream.write('written: {}\n'.format(', '.join(map(preflight.shown, paths))))
    status = 0 if paths else 1
    if failed:
        stream.write('{} run(s) failed: {}; run the same command again to resume them\n'.format(
            len(failed), '; '.join(u.label for u in failed)))
        status = 1
    if args.check:   # the same code as python -m reproduce.regression NEW RECORDED
        ok, lines = regression.check(table, args.check, args.tolerance)
        stream.write('\n'.join(lines) + '\n')
        status = status if ok else 1
    elif not missing:
        recording_match(table, stream)
    return status


def other_configurations(units, out):
    """One line per run folder under ``out`` that holds runs of another configuration than
    ``units``, with the command that gathers them."""
    lines, mine = [], units[0].config
    for (label, noise), configs in sorted(runner.other_runs(units).items()):
        words = [next(n for n in NOISE if NOISE[n] == noise), '--out', os.path.abspath(out)]
        for field in options.declared(RunConfig, options.TABLE):
            value = getattr(configs[0], field.name)
            if field.metadata['identity'] and value != getattr(mine, field.name):
                words += options.command_words(field, value)
        rates = sorted({c.rate for c in configs})
        trials = sorted({c.trial for c in configs})
        methods = [m for m in COMPUTED if any(os.path.isdir(os.path.join(out, c.name(), m))
                                              for c in configs)]
        words += (['--rates', options.render_words(rates)] * (noise != 'real') +
                  ['--methods', ','.join(methods)] * bool(methods) +
                  ['--trials', str(trials[-1] + 1), '--gather-only'])
        lines.append('{} holds {} run folders of another configuration ({} noise, trials {}): '
                     'python reproduce/table{}.py {}\n'.format(
                         os.path.join(out, label), len(configs), noise,
                         options.render_words(trials), words[0], shlex.join(words[1:])))
    return lines


def recording_match(table, stream, folder=plan.RECORDED):
    """Where ``folder`` holds a table of the same configuration (table, data, noise, rates,
    settings, rows), one line each: whether this run matched it, by the regression check."""
    def rows(t):
        return sorted(r['method'] for r in t['rows'] if r.get('status') == 'computed')
    for path in sorted(glob.glob(os.path.join(folder, '**', '*.json'), recursive=True)):
        recorded = rundir.read_json(path)
        if isinstance(recorded, dict) and 'rows' in recorded and rows(recorded) == rows(
                table) and all(recorded.get(k) == table.get(k) for k in (
                    'table', 'dataset', 'noise', 'rates', 'settings')):
            found = regression.compare(table, recorded)
            stream.write('against the recording {}: {} (python -m reproduce.regression for '
                         'every cell)\n'.format(preflight.shown(path), 'the same numbers' if
                                                  found.exact else 'within tolerance' if
                                                  found.ok else 'MOVED beyond tolerance'))


def parser(number):
    published = paper.load_paper_table(number)
    commands = (options.TABLE, cli.CHECK) + ((cli.RATES,) if published['rates'] else ())
    return cli.table_parser(published['title'], commands, table=number, defaults={
        'trials': published['trials'] or 1, 'rates': published['rates']})


def main(number, argv=None):
    """The command line of ``reproduce/table<number>.py`` (2: symmetric, 3: asymmetric,
    4: Clothing1M). Exit status: 0 done, 1 a run failed, the check found moved cells or no
    table was written, 2 bad input (nothing ran), 130 interrupted."""
    p = parser(number)
    args = p.parse_args(argv)
    args.gather_command = cli.gather_command(p, args, os.path.join(
        REPOSITORY, 'reproduce', 'table{}.py'.format(number)))
    rates = getattr(args, 'rates', None) or [0.0]
    for note in options.merge_notes(args, ('rates', 'methods', 'devices')):
        sys.stderr.write(note + '\n')
    status, table_status = preflight.guarded(
        lambda: run_table(number, args, base_config(args, NOISE[number]), rates))
    return status or table_status
