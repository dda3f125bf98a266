"""The protocol ledger (results/PROTOCOL.md) names real tests and real switches, its choice
numbers are updaters/README.md's, and the settings of its schedule rows are the ones it cites
(restated here from the paper and the official code)."""
import json
import math
import os
import re

from reproduce.run import hparams

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEDGER = os.path.join(ROOT, 'results', 'PROTOCOL.md')


def _read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def _ledger_rows():
    return [line for line in _read('results', 'PROTOCOL.md').splitlines()
            if line.startswith('| ') and not line.startswith(('| step', '| id', '| ---'))]


def _ledger():
    """``{step: row}``, the first row of each step name (data's 'network' before step 2's)."""
    rows = {}
    for row in _ledger_rows():
        rows.setdefault(row.split(' | ')[0].strip('| '), row)
    return rows


def test_every_test_the_ledger_names_exists():
    with open(LEDGER) as f:
        text = f.read()
    named = re.findall(r'(test_\w+\.py)::(test_\w+)', text)
    assert len(named) >= 30
    for filename, function in named:
        path = os.path.join(ROOT, 'tests', filename)
        assert os.path.exists(path), filename
        with open(path) as f:
            assert re.search(r'^def {}\('.format(function), f.read(), re.M), \
                '{}::{}'.format(filename, function)


def test_every_row_has_six_cells():
    with open(LEDGER) as f:
        rows = [line for line in f if line.startswith('| ') and not line.startswith('| step')
                and not line.startswith('| id') and not line.startswith('| ---')]
    for row in rows:
        cells = row.strip().strip('|').split(' | ')
        assert len(cells) in (3, 6), row      # the sources table has 3 columns


def test_step1_settings_are_the_papers():
    """Paper 4.2; TAN first_step_train.py:172-197, 224-241: 200 epochs, labels from epoch 70,
    mean of the last 10 epochs, batch 128, MomentumSGD 0.9, weight decay 1e-4, no lr shift."""
    assert hparams.CIFAR10_STEP1 == dict(epochs=200, begin=70, window=10, batch_size=128,
                                         momentum=0.9, weight_decay=1e-4)


def test_step2_settings_are_the_papers():
    """Paper 4.2; TAN second_step_train.py:76-83, 118-129."""
    assert hparams.CIFAR10_STEP2 == dict(epochs=120, lr=0.2, milestones=(40, 80), lr_decay=0.1,
                                         batch_size=128, momentum=0.9, weight_decay=1e-4)


def test_table1_is_the_papers():
    """Table 1 of the paper, typed again: alpha, beta, step-1 lr, mix-up a per rate."""
    symmetric = {0.1: (1.2, 0.8, 0.02, 0.5), 0.3: (1.2, 0.8, 0.03, 0.9),
                 0.5: (1.2, 0.8, 0.04, 2.0), 0.7: (1.2, 0.8, 0.08, 4.0),
                 0.9: (0.8, 0.4, 0.12, 8.0)}
    asymmetric = {0.1: 0.05, 0.2: 0.6, 0.3: 0.6, 0.4: 0.8, 0.5: 16.0}
    expected = {('symmetric', r): v for r, v in symmetric.items()}
    expected.update({('asymmetric', r): (0.8, 0.4, 0.03, a) for r, a in asymmetric.items()})
    assert {k: (v['alpha'], v['beta'], v['lr'], v['mixup_alpha'])
            for k, v in hparams.TABLE1.items()} == expected


def test_pencil_settings_are_the_official_codes():
    """PEN PENCIL.py:39-64, 339-342 (stage 2 runs to epoch 200: 70 + 130)."""
    assert hparams.PENCIL_CIFAR10 == dict(
        stages=(70, 130, 120), lr=0.06, lr3=0.2, alpha=0.4, beta=0.1, label_lr=600.0, k=10.0,
        batch_size=128, momentum=0.9, weight_decay=1e-4, losses='official',
        stage3_decay='divided')


def test_clothing1m_settings_are_the_papers():
    """Paper 4.2 (Clothing1M): step 1 10 epochs, labels from the 1st epoch as the mean of all
    past epochs, lr 8e-4, alpha 2.4, beta 0.8; step 2 10 epochs, lr 5e-4 /10 after 5, a 0.8;
    SGD momentum 0.9, weight decay 1e-3, batch 32."""
    assert hparams.CLOTHING1M_STEP1 == dict(epochs=10, lr=8e-4, alpha=2.4, beta=0.8, begin=1,
                                            window=None, batch_size=32, momentum=0.9,
                                            weight_decay=1e-3)
    assert hparams.CLOTHING1M_STEP2 == dict(epochs=10, lr=5e-4, milestones=(5,), lr_decay=0.1,
                                            mixup_alpha=0.8, batch_size=32, momentum=0.9,
                                            weight_decay=1e-3)


def test_the_official_noise_counts_equal_the_packages_for_every_rate_of_tables_2_and_3():
    """TAN first_step_train.py:64 and 75 corrupt the positions ``i < percent * len`` (a ceiling
    of r n, computed in floating point); the package corrupts round(r n). For the 45,000
    training images (symmetric) and 4,500 per class (asymmetric) the counts are the same at
    every rate of Table 1."""
    from datasets import noise

    def official(rate, n):
        return sum(1 for i in range(n) if i < rate * n)

    for kind, rate in hparams.TABLE1:
        n = 45000 if kind == 'symmetric' else 4500
        assert official(rate, n) == noise._n_corrupted(rate, n) == math.ceil(rate * n), \
            (kind, rate)


def test_every_switch_the_ledger_names_exists():
    """Every ``--flag`` of the ledger's switch column is an option of a run or a table, and
    every ``--set PART.KEY=VALUE`` there names a real setting that takes that value."""
    from reproduce import experiment
    from reproduce.batch import tables
    from reproduce.run.config import RunConfig
    flags = {o for p in (experiment.parser(), tables.parser(2)) for a in p._actions
             for o in a.option_strings}
    text = '\n'.join(row.split(' | ')[4] for row in _ledger_rows()
                     if len(row.split(' | ')) == 6)
    named = set(re.findall(r'`(--[a-z0-9][a-z0-9-]*)', text))
    assert {'--set', '--step2-init', '--transition', '--epochs-scale'} <= named
    assert named <= flags, named - flags
    defaults = RunConfig().setting_defaults()
    settings = re.findall(r'--set (step1|step2|pencil)\.([A-Za-z_0-9]+)=?([^`\s;]*)', text)
    assert ('pencil', 'stage3_decay', 'official') in settings
    for part, key, value in settings:
        if key == 'KEY':
            continue
        assert key in defaults[part], (part, key)
        if value and value not in ('N', 'V'):
            assert hparams.check_setting(key, value, defaults[part][key]) is None, (key, value)


#: The interpretation choices (updaters/README.md), each with a word its row must contain.
CHOICES = {1: 'fresh network', 2: 'un-mixed', 3: 'step 2 trains on soft labels',
           4: 'cross entropy', 5: 'Forward T', 6: 'step 1 trains on soft', 7: 'λ per batch',
           8: "PENCIL's losses", 9: "PENCIL's stage-3"}


def test_the_interpretation_choices_are_numbered_once_and_every_reference_uses_its_number():
    readme = _read('updaters', 'README.md')
    section = readme[readme.index('## Interpretation choices'):]
    section = section[:section.index('\n## ')]
    rows = re.findall(r'^\| (\d+) \| (.*)$', section, re.M)
    assert [int(n) for n, _ in rows] == sorted(CHOICES)
    for number, row in rows:
        assert CHOICES[int(number)] in row, number
    # every numbered reference names a choice of the list
    sources = {'updaters/README.md': readme, 'README.md': _read('README.md'),
               'results/PROTOCOL.md': _read('results', 'PROTOCOL.md')}
    for name in ('reproduce/run/hparams.py', 'reproduce/run/config.py', 'updaters/pencil.py',
                 'updaters/mixup.py'):
        sources[name] = _read(*name.split('/'))
    for name, text in sources.items():
        for number in re.findall(r'(?:interpretation choice|\*\*choice\*\*) (\d+)', text):
            assert int(number) in CHOICES, (name, number)
    # the stage-3 decay is choice 9 everywhere; choice 4 is the cross-entropy schedule
    for name in ('updaters/README.md', 'reproduce/run/hparams.py', 'updaters/pencil.py'):
        assert 'interpretation choice 9' in sources[name], name
    for name, text in sources.items():
        for match in re.finditer(r'interpretation choice 4', text):
            around = text[max(0, match.start() - 300):match.end() + 100]
            assert 'stage' not in around.replace('step 2', ''), (name, around)
    ledger = _ledger()
    assert '**choice** 9' in ledger['PENCIL, schedule']
    assert '**choice** 8' in ledger['PENCIL, losses']
    assert '**choice** 7' in ledger['mix-up draws']
    assert '**choice** 4' in ledger['cross entropy']


def test_the_ledger_flags_the_departures_the_official_code_reading_found():
    """The rows the check against the official code asked for, with their citations."""
    ledger = _ledger()
    forward = ledger['Forward T, training']
    for cited in ('models.py:203-207, 237-248', 'after 41 epochs', 'after 81',
                  'experiment.py:36', '93-99', '133 (the best reloaded'):
        assert cited in forward, cited
    assert 'Keras' in ledger['Forward T, data and network'] and \
        'shifts of up to 0.1' in ledger['Forward T, data and network']
    assert 'quoted from' not in _read('results', 'PROTOCOL.md')
    assert 'net.py:22-23, 56-58, 64' in ledger['network']
    assert 'ceil(r n)' in ledger['symmetric noise'] and '`i < percent * len`' in \
        ledger['symmetric noise']
    assert 'per sample' in ledger['Lp'].split(' | ')[1]
    assert 'first_step_train.py:137, 147-152' in ledger['Lp']
    assert '176-177' in ledger['optimizer, schedule']
    assert 'first_step_train.py:228' in ledger['epochs']
    assert 'data_batch_5' in ledger['PENCIL, data'] and '**departs**' in ledger['PENCIL, data']
    assert 'no commit' in ledger['PENCIL, network']
    assert '`--set pencil.stage3_decay=official`' in ledger['PENCIL, schedule']
    for row in _ledger_rows():          # a departure has a switch or says why it has none
        cells = row.split(' | ')
        if len(cells) == 6 and '**departs**' in cells[3]:
            assert cells[4].strip() != '—' or 'no switch' in cells[3], row


def test_pencil_clothing1m_settings_are_marked_unverified_in_table_4s_header():
    """hparams says the settings are recalled and unverified; Table 4's header says so when its
    PENCIL row was computed (and no other table's header does)."""
    from reproduce.report import table_format
    source = _read('reproduce', 'run', 'hparams.py')
    comment = source[source.index('#: PENCIL on Clothing1M'):source.index('PENCIL_CLOTHING1M =')]
    assert 'UNVERIFIED' in comment and 'RECALLED, NOT CHECKED' in comment
    line = hparams.PENCIL_CLOTHING1M_UNVERIFIED
    assert line.startswith('UNVERIFIED') and 'Clothing1M' in line and 'PENCIL' in line
    table = json.loads(_read('results', 'recorded', 'digits_cpu_table2.json'))
    rows = {row['method']: row for row in table['rows']}
    assert rows['pencil']['status'] == 'computed'
    assert line not in table_format.header_lines(table)         # digits: not Table 4
    table.update(dataset='clothing1m', noise='real', table=4)
    assert line in table_format.header_lines(table)
    assert line in table_format.format_markdown(table)
    rows['pencil']['status'] = 'not run'                         # only the paper's number
    assert line not in table_format.header_lines(table)
