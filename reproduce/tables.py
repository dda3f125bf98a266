"""The paper's tables, measured: gather finished runs into Table 2/3/4's layout beside the
published numbers, print it, write it as Markdown and JSON, and check it against recorded numbers.

The scripts ``reproduce/table2.py``, ``table3.py`` and ``table4.py`` are this module's
:func:`main` with the table's number. Numbers in the JSON and the printed tables are test
accuracies in percent; "best" is the test accuracy at the epoch of highest (clean) validation
accuracy, "last" the test accuracy after the last epoch.
"""
import argparse
import datetime
import json
import os
import sys

import numpy

from reproduce import experiment, paper, provenance, regression, runner, summarize
from updaters import atomic

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Rows this code computes (the others of the paper are quoted).
COMPUTED = experiment.METHODS
#: Row labels of the computed methods where the paper's table has no such row.
LABELS = {'cross_entropy': 'Cross Entropy', 'forward_t': 'Forward T [5]',
          'tanaka': 'Tanaka et al. [6]', 'pencil': 'PENCIL [3]', 'ours': 'Our method'}
#: The order of the rows (the paper's, with rows it lacks in their place).
ROW_ORDER = ('cross_entropy', 'forward_t', 'cnn_crf', 'tanaka', 'pencil', 'ours')
#: The order of the parts (runs' folders) in the regression signals.
PART_ORDER = ('step1',) + COMPUTED
KINDS = ('best', 'last')
#: The noise kind of each table.
NOISE = {2: 'symmetric', 3: 'asymmetric', 4: 'real'}


# ----------------------------------------------------------------------------------------------
# Gathering


def _stats(values):
    if not values:
        return {'mean': None, 'std': None, 'n': 0, 'values': []}
    return {'mean': float(numpy.mean(values)), 'std': float(numpy.std(values)),
            'n': len(values), 'values': [float(v) for v in values]}


def gather(units):
    """Finished results of ``units``: ``{(method, rate): {'best': [...], 'last': [...]}}`` in
    percent, step 1's label accuracy per rate, the regression signals
    ``{(part, quantity, rate): [...]}`` (:data:`SIGNALS`), and a brief of every finished part."""
    cells, labels, signals, parts = {}, {}, {}, []
    for unit in units:
        for part in unit.parts:
            result = runner._read_json(os.path.join(unit.run_dir, part, experiment.RESULT))
            if result is None:
                continue
            rate = unit.config.rate
            parts.append(dict(summarize.brief(result), run=unit.config.name(), part=part,
                              trial=unit.config.trial))
            if result.get('final_loss') is not None:
                signals.setdefault((part, 'final_loss', rate), []).append(result['final_loss'])
            if 'labels' in result:
                signals.setdefault((part, 'label_accuracy', rate), []).append(
                    100 * result['labels']['corrected_accuracy'])
            if part == 'step1':
                entry = labels.setdefault(rate, {'noisy': [], 'corrected': []})
                entry['noisy'].append(100 * result['labels']['noisy_accuracy'])
                entry['corrected'].append(100 * result['labels']['corrected_accuracy'])
                continue
            cell = cells.setdefault((part, rate), {'best': [], 'last': []})
            cell['best'].append(100 * result['best_test'])
            cell['last'].append(100 * result['last_test'])
    return cells, labels, signals, parts


def _unique(records):
    """The distinct JSON-ready ``records``, in a stable order."""
    return [json.loads(text) for text in sorted({json.dumps(r, sort_keys=True) for r in records})]


def _provenance(parts, config, trials):
    prov = [p['provenance'] for p in parts]
    settings = config.settings()
    dates = sorted(p['date'] for p in prov)
    return {
        'commits': sorted({str(p['commit']) for p in prov}),
        'devices': sorted({p['device'] for p in prov}),
        'versions': sorted({json.dumps(p['versions'], sort_keys=True) for p in prov}),
        'tf32': sorted({p.get('tf32', False) for p in prov}),
        'platforms': _unique(provenance.numerics_key(p) for p in prov),
        'exact_cpu': sorted({bool((p.get('platform') or {}).get('exact_cpu')) for p in prov}),
        'run_dates': [dates[0], dates[-1]] if dates else [],
        'epochs_scale': config.epochs_scale,
        'epochs': {k: settings[k]['epochs'] for k in ('step1', 'step2', 'pencil')},
        'settings_changed': experiment.settings_options(config)[1::2],
        'transition': config.transition_name(),
        'iterations_per_epoch': config.iterations_per_epoch,
        'pretrained_weights': (None if config.dataset != 'clothing1m' else
                               config.weights != 'none'),
        'trials_requested': list(trials),
        'seeds': 'every seed (noise, split, init, order, mix-up) equals the trial number',
        'train_hours': sum(p['train_seconds'] for p in parts) / 3600,
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
    per cell; computed rows that were not asked for and rows this code cannot compute show the
    paper's numbers only, marked."""
    published = paper.load_paper_table(number)
    cells, labels, signals, parts = gather(units)
    compare = base_config.dataset == published['dataset']
    rows = []
    methods_in_paper = [row['method'] for row in published['rows']]
    candidates = published['rows'] + [{'method': m} for m in COMPUTED
                                      if m not in methods_in_paper]
    for row in sorted(candidates, key=lambda r: ROW_ORDER.index(r['method'])):
        method = row['method']
        if not compare and method not in COMPUTED:
            continue
        status = ('computed' if method in methods else 'not run') if method in COMPUTED \
            else 'quoted'
        label = row.get('label', LABELS.get(method, method))
        if status == 'computed':
            label += row_label_suffix(method, base_config)
        entry = {'number': row.get('number'), 'method': method, 'label': label,
                 'status': status}
        for kind in KINDS:
            entry[kind] = []
            for rate in rates:
                cell = {'rate': rate}
                cell['paper'] = (paper.paper_cell(published, method, _paper_rate(rate, published),
                                                  kind) if compare else None)
                cell['paper_decimals'] = row.get('decimals', 2)
                cell.update(_stats(cells.get((method, rate), {}).get(kind, []))
                            if status == 'computed' else _stats([]))
                cell['diff'] = (cell['mean'] - cell['paper']
                                if cell['mean'] is not None and cell['paper'] is not None else None)
                entry[kind].append(cell)
        rows.append(entry)
    return {
        'table': number, 'title': published['title'], 'dataset': base_config.dataset,
        'noise': base_config.noise, 'rates': list(rates), 'unit': 'percent',
        'compared_with_paper': compare, 'paper_source': published['source'],
        'settings': {k: v for k, v in base_config.identity().items()
                     if k not in ('rate', 'trial') and not k.endswith('_seed')},
        'rows': rows,
        'labels': [{'rate': r, 'noisy': _stats(labels.get(r, {}).get('noisy', [])),
                    'corrected': _stats(labels.get(r, {}).get('corrected', []))} for r in rates],
        'signals': [{'part': part, 'quantity': quantity,
                     'cells': [dict(rate=r, **_stats(signals.get((part, quantity, r), [])))
                               for r in rates]}
                    for part, quantity in sorted({k[:2] for k in signals},
                                                 key=lambda k: (PART_ORDER.index(k[0]), k[1]))],
        'provenance': _provenance(parts, base_config, trials),
        'runs': parts,
    }


# ----------------------------------------------------------------------------------------------
# Printing


def _column_name(table, rate):
    return 'Clothing1M' if table['noise'] == 'real' else '{:g}%'.format(100 * rate)


def _measured(cell, with_n=True):
    if cell['mean'] is None:
        return '–'
    text = '{:.2f}'.format(cell['mean'])
    if cell['n'] > 1:
        text += '±{:.2f}'.format(cell['std'])
    if with_n:
        text += ' ({})'.format(cell['n'])
    return text


def _number(value, signed=False, decimals=2):
    if value is None:
        return '–'
    return ('{:+.%df}' % decimals if signed else '{:.%df}' % decimals).format(value)


def _paper(cell):
    return _number(cell['paper'], decimals=cell.get('paper_decimals', 2))


def _paper_rate(rate, published):
    """The paper's column of ``rate`` (Table 4 has none)."""
    return None if published['rates'] is None else rate


def header_lines(table):
    prov = table['provenance']
    scale = prov['epochs_scale']
    schedule = 'the paper\'s schedule' if scale == 1 else \
        'SHORTENED schedule (--epochs-scale {:g})'.format(scale)
    lines = ['Table {}: {}'.format(table['table'], table['title']) if table['compared_with_paper']
             else 'Table {} layout on the {} data, {} noise (this package\'s small real data set; '
                  'the paper reports no numbers for it)'.format(
                      table['table'], table['dataset'], table['noise']),
             'test accuracy (%), mean ± std over trials (count); {}: step 1 {} epochs, step 2 {} '
             'epochs; trials {}'.format(schedule, prov['epochs']['step1'], prov['epochs']['step2'],
                                        ','.join(map(str, prov['trials_requested'])))]
    if prov.get('settings_changed'):
        lines.append('SETTINGS CHANGED from the defaults: {}'.format(
            ', '.join(prov['settings_changed'])))
    if prov.get('iterations_per_epoch'):
        lines.append('SUBSAMPLED: each epoch trains on a random {} batches of the noisy set'.format(
            prov['iterations_per_epoch']))
    if True in prov.get('tf32', []):
        lines.append('TF32: matrix products on the GPU in TF32, not float32 (--tf32)')
    if prov.get('pretrained_weights') is False:
        lines.append('NOT PRE-TRAINED: ResNet-50 started from random weights (--weights none)')
    if prov['devices']:
        lines.append('measured on {} · commit {} · runs dated {} to {}'.format(
            '; '.join(prov['devices']),
            ', '.join(c[:12] + ('+dirty' if c.endswith('+dirty') else '') for c in prov['commits']),
            prov['run_dates'][0][:10], prov['run_dates'][-1][:10]))
    return lines


def format_terminal(table):
    """The table as the paper lays it out: rows = methods (best, last), columns = noise rates;
    a computed cell shows the paper's number, this code's and their difference."""
    columns = [_column_name(table, r) for r in table['rates']]
    width = max(14, max(len(c) for c in columns) + 2)
    label_width = max(len(r['label']) for r in table['rows']) + 4
    pad = ' ' * (label_width + 9)

    def line(prefix, values):
        return prefix + ''.join(v.rjust(width) for v in values)

    lines = header_lines(table) + ['']
    lines.append(line(' #  ' + 'method'.ljust(label_width) + ' ' * 16, columns))
    for row in table['rows']:
        number = '{:>2}'.format(row['number']) if row['number'] and table[
            'compared_with_paper'] else '  '
        for k, kind in enumerate(KINDS):
            head = ('{}  {}'.format(number, row['label'].ljust(label_width)) if k == 0
                    else ' ' * (label_width + 4)) + kind.ljust(5)
            cells = row[kind]
            if all(c['paper'] is None for c in cells) and row['status'] != 'computed':
                continue
            if row['status'] != 'computed':
                tag = 'quoted' if row['status'] == 'quoted' else 'paper only'
                lines.append(line(head + tag.ljust(11), [_paper(c) for c in cells]))
                continue
            if table['compared_with_paper']:
                lines.append(line(head + 'paper'.ljust(11), [_paper(c) for c in cells]))
                lines.append(line(pad + 'this code'.ljust(11), [_measured(c) for c in cells]))
                lines.append(line(pad + 'difference', [_number(c['diff'], True) for c in cells]))
            else:
                lines.append(line(head + 'this code'.ljust(11), [_measured(c) for c in cells]))
    if table['compared_with_paper']:
        lines += ['', 'paper: the published number; quoted: a method this code does not compute; '
                  'paper only: not run here (--methods); difference: this code minus paper.']
    labels = table['labels']
    if any(entry['corrected']['n'] for entry in labels):
        lines.append('')
        lines.append(line('step-1 labels right (%): noisy'.ljust(label_width + 20),
                          [_measured(e['noisy'], False) for e in labels]))
        lines.append(line('                after correction'.ljust(label_width + 20),
                          [_measured(e['corrected'], False) for e in labels]))
    return '\n'.join(lines) + '\n'


def format_markdown(table):
    columns = [_column_name(table, r) for r in table['rates']]
    lines = ['\n\n'.join(header_lines(table)), '',
             '| # | method | | ' + ' | '.join(columns) + ' |',
             '|---|---|---|' + '---|' * len(columns)]
    for row in table['rows']:
        for kind in KINDS:
            cells = row[kind]
            if all(c['paper'] is None for c in cells) and row['status'] != 'computed':
                continue
            if row['status'] == 'computed':
                texts = []
                for c in cells:
                    text = '**{}**'.format(_measured(c)) if c['mean'] is not None else '–'
                    if c['paper'] is not None:
                        text += ' (paper {}, {})'.format(_paper(c), _number(c['diff'], True))
                    texts.append(text)
            else:
                mark = 'quoted' if row['status'] == 'quoted' else 'paper; not run'
                texts = ['{} ({})'.format(_paper(c), mark) if c['paper'] is not None
                         else '–' for c in cells]
            number = row['number'] if table['compared_with_paper'] else None
            lines.append('| {} | {} | {} | {} |'.format(number or '', row['label'], kind,
                                                         ' | '.join(texts)))
    if any(entry['corrected']['n'] for entry in table['labels']):
        lines += ['', 'Step-1 training labels that equal the clean label (%): noisy → corrected: '
                  + '; '.join('{} {} → {}'.format(col, _measured(e['noisy'], False),
                                                   _measured(e['corrected'], False))
                              for col, e in zip(columns, table['labels']))]
    lines += ['', 'Bold: measured by this code (mean ± std over trials, count in brackets). '
              'Paper numbers are the published ones (results/paper/), not measured here.']
    return '\n'.join(lines) + '\n'


def write(table, directory, name):
    """``name``.json and ``name``.md in ``directory``, atomically; returns their paths."""
    json_path = os.path.join(directory, name + '.json')
    md_path = os.path.join(directory, name + '.md')
    atomic.write_json(json_path, table)
    atomic.write_text(md_path, format_markdown(table))
    return json_path, md_path


# ----------------------------------------------------------------------------------------------
# Command line


def _rates(text):
    try:
        rates = [float(r) for r in text.split(',') if r.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('--rates takes comma-separated numbers, e.g. 0.1,0.5')
    rates = [r / 100 if r >= 1 else r for r in rates]   # 50 means 50 %
    for rate in rates:
        if not 0 <= rate < 1:
            raise argparse.ArgumentTypeError('noise rate {} is outside [0, 1)'.format(rate))
    return rates


def _methods(text):
    methods = tuple(m for m in text.split(',') if m)
    unknown = [m for m in methods if m not in COMPUTED]
    if unknown:
        raise argparse.ArgumentTypeError('unknown method(s) {}: this code computes {}'.format(
            ', '.join(unknown), ', '.join(COMPUTED)))
    return methods


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


def add_run_options(p, default_trials, synthetic=True):
    """The options every table and figure script shares: which runs, where, how many at once
    (``synthetic``: the data set choice of Tables 2 and 3)."""
    if synthetic:
        p.add_argument('--dataset', choices=('cifar10', 'digits', 'synthetic'), default='cifar10',
                       help='cifar10 (the paper), digits: the small real data set for a quick '
                            'look on a CPU, or synthetic: CIFAR-10-shaped random images, for '
                            'pipeline checks and timing only')
        p.add_argument('--data-dir', default=None,
                       help='CIFAR-10 directory (default: download into Chainer\'s dataset root)')
    p.add_argument('--trials', type=int, default=default_trials,
                   help='trials 0..N-1 (every seed of trial k is k)')
    p.add_argument('--methods', type=_methods, default=COMPUTED,
                   help='comma-separated subset of ' + ', '.join(COMPUTED))
    p.add_argument('--device', default='auto',
                   help="Chainer device of every run: '@numpy', '@cupy:0', or auto (the first "
                        "GPU if CuPy sees one, else the CPU)")
    p.add_argument('--devices', default=None,
                   help="comma-separated devices to spread the runs over, e.g. "
                        "'@cupy:0,@cupy:1' (overrides --device)")
    p.add_argument('--jobs', type=int, default=1, help='runs at once (processes)')
    p.add_argument('--per-device', type=int, default=None,
                   help='runs at once on each device (sets --jobs to this times the number of '
                        'devices; the memory they need is checked first against the recorded '
                        'GPU check, results/benchmarks/)')
    p.add_argument('--epochs-scale', type=float, default=1.0,
                   help='shorten every schedule by this factor (shown in the output)')
    p.add_argument('--out', default='runs', help='output root of the runs')
    p.add_argument('--results', default=None,
                   help='where tables and figures go (default: results/<dataset>[-x<scale>])')
    p.add_argument('--print-commands', action='store_true',
                   help='print one command per unfinished run (for a job array) and stop; '
                        'run this script again afterwards to gather the results')
    p.add_argument('--gather-only', action='store_true',
                   help='run nothing: use the runs finished so far')
    p.add_argument('--transition', default=None,
                   help="Forward T's matrix: 'true' (the synthetic noise's), 'estimate' (Patrini "
                        "et al.'s, from each run's cross-entropy network) or a .npy file "
                        "(default: {})".format("'estimate'" if not synthetic else "'true'"))
    p.add_argument('--set', action='append', default=[], metavar='PART.KEY=VALUE',
                   help='override one hyper-parameter of step1, step2 or pencil in every run, '
                        'e.g. pencil.label_lr=3000 (repeatable; recorded in the table)')
    p.add_argument('--mixup-weight', type=float, default=1.0)
    p.add_argument('--tf32', action='store_true',
                   help='TF32 matrix products on the GPU (faster, not float32: off by default; '
                        'recorded in the table)')
    p.add_argument('--iterations-per-epoch', type=int, default=None,
                   help='train each epoch on a random subset of this many batches (shortened '
                        'epochs, for checks; Clothing1M\'s noisy set is about 31k batches of '
                        '32); recorded in the table')
    p.add_argument('--lc-on', choices=('clean', 'mixed'), default='clean')
    p.add_argument('--step2-labels', choices=('soft', 'hard'), default='soft')
    p.add_argument('--step2-init', choices=('fresh', 'step1'), default='fresh')


def parser(number, description):
    published = paper.load_paper_table(number)
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    if number == 4:
        add_run_options(p, 1, synthetic=False)
        p.add_argument('--data-dir', required=True,
                       help='Clothing1M directory: the annotation files and images/')
        p.add_argument('--weights', required=True,
                       help="ImageNet ResNet-50 weights converted to .npz (README), or 'none' "
                            "for random initial weights (not the paper's setting)")
        p.add_argument('--loader-threads', type=int, default=8)
    else:
        add_run_options(p, published['trials'])
        p.add_argument('--rates', type=_rates, default=published['rates'],
                       help='comma-separated noise rates (0.5 or 50 both mean 50 %%)')
    p.add_argument('--check', metavar='FILE', default=None,
                   help='compare with a recorded table JSON; exit 1 listing every cell that '
                        'moved by more than the tolerance')
    p.add_argument('--tolerance', type=float, default=None,
                   help='allowed difference of the accuracy cells in percentage points '
                        '(default: the largest of {:g} point, {:g} standard errors of the trial '
                        'spread and {:g} x the recorded spread across CPU numerics settings; '
                        'README, "Regression checks")'.format(
                            regression.ACCURACY_FLOOR, regression.TOLERANCE_SIGMAS,
                            regression.PLATFORM_FACTOR))
    return p


def base_config(args, noise):
    """The RunConfig fields every run of the table shares."""
    base = dict(dataset=getattr(args, 'dataset', 'clothing1m'), noise=noise,
                device=resolve_device(args.device), data_dir=args.data_dir,
                epochs_scale=args.epochs_scale, mixup_weight=args.mixup_weight,
                lc_on=args.lc_on, step2_labels=args.step2_labels, step2_init=args.step2_init,
                transition=args.transition, iterations_per_epoch=args.iterations_per_epoch,
                tf32=args.tf32,
                **experiment.parse_settings(args.set))
    if noise == 'real':
        base.update(weights=args.weights, loader_threads=args.loader_threads)
    return base


def results_dir(args, config):
    """``--results``, or ``results/<config.label()>`` of the repository."""
    return args.results or os.path.join(_ROOT, 'results', config.label())


def run_units(units, args, stream=None):
    """What every table and figure script does with its units before drawing anything: refuse
    output directories made with other settings and missing inputs (before any run starts),
    then print the commands (returns None) or run what is unfinished unless gathering only
    (returns the failed units)."""
    if args.trials < 1:
        raise ValueError('--trials must be at least 1, got {}'.format(args.trials))
    for unit in units:
        if os.path.exists(os.path.join(unit.run_dir, experiment.CONFIG)):
            experiment.check_run_dir(unit.run_dir, unit.config)
    if not args.gather_only:
        experiment.check_inputs(units[0].config)
    devices = args.devices.split(',') if args.devices else [units[0].config.device]
    if args.print_commands:
        runner.print_commands(units, device=devices[0])
        return None
    if args.gather_only:
        return []
    jobs = args.jobs
    if args.per_device:
        jobs = args.per_device * len(devices)
        for note in runner.check_gpu_memory(devices, args.per_device):
            (stream or sys.stdout).write(note + '\n')
    return runner.execute(units, jobs=jobs, devices=devices, stream=stream,
                          kernel_cache=os.path.join(os.path.abspath(args.out),
                                                    '.cupy-kernel-cache'))


def run_table(number, args, base, rates, methods, stream=None):
    """Plans, runs (unless gathering only), gathers, prints, writes and checks one table;
    returns the exit status."""
    stream = stream or sys.stdout
    trials = list(range(args.trials))
    units = runner.plan(base, rates, trials, methods, args.out)
    if args.check:   # a wrong file fails now, not after hours of training
        regression.load_check_file(args.check, {
            'table': number, 'dataset': base['dataset'], 'noise': base['noise'],
            'provenance': {'epochs_scale': base['epochs_scale']}})
    failed = run_units(units, args, stream)
    if failed is None:
        return 0
    config = experiment.RunConfig(rate=rates[0], **base)
    table = build(number, units, rates, trials, methods, config)
    stream.write('\n' + format_terminal(table))
    paths = write(table, results_dir(args, config), 'table{}'.format(number))
    stream.write('\nwritten: {}\n'.format(', '.join(os.path.relpath(p) for p in paths)))
    status = 0
    if failed:
        stream.write('{} run(s) failed: {}; run the same command again to resume them\n'.format(
            len(failed), '; '.join(u.label for u in failed)))
        status = 1
    if args.check:
        comparison = regression.compare(
            table, regression.load_check_file(args.check, table), args.tolerance)
        stream.write('\n'.join(comparison.report(args.check)) + '\n')
        status = status if comparison.ok else 1
    return status


def main(number, argv=None):
    """The command line of ``reproduce/table<number>.py`` (2: symmetric, 3: asymmetric)."""
    published = paper.load_paper_table(number)
    args = parser(number, published['title']).parse_args(argv)
    try:
        status = run_table(number, args, base_config(args, NOISE[number]),
                           getattr(args, 'rates', [0.0]), args.methods)
    except (ValueError, FileNotFoundError) as error:
        sys.stderr.write('error: {}\n'.format(error))
        return 2
    except KeyboardInterrupt:
        return 130
    return status
