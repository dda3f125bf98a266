"""Each command's help offers only what applies to it; ``--set help`` lists every setting with its
default; a noise rate is a fraction in [0, 1) or a percentage with '%', nothing else (issue 32)."""
import re

import pytest

from reproduce import experiment, figure3
from reproduce.batch import cli, tables
from reproduce.run import options
from reproduce.run.config import parse_rate, RunConfig


def _block(text, flag):
    """The help of ``flag`` in a parser's ``--help`` text ('' where it is not offered)."""
    return next((b for b in re.split(r'\n  (?=-)', text) if b.startswith(flag + ' ')), '')


@pytest.mark.parametrize('make, datasets, clothing', [
    (lambda: tables.parser(2), '{cifar10,digits,synthetic}', False),
    (lambda: tables.parser(3), '{cifar10,digits,synthetic}', False),
    (figure3.parser, '{cifar10,digits,synthetic}', False),
    (lambda: tables.parser(4), None, True),
    (experiment.parser, '{cifar10,digits,synthetic,clothing1m}', True)])
def test_help_offers_the_data_sets_and_options_of_its_command(make, datasets, clothing):
    text = make().format_help()
    dataset = _block(text, '--dataset')
    assert (dataset.split()[1] if dataset else None) == datasets
    assert ('clothing1m' in dataset) == (datasets is not None and 'clothing1m' in datasets)
    for flag in ('--weights', '--loader-threads'):
        assert bool(_block(text, flag)) == clothing, flag
    if not clothing:      # left out, its default kept for the run's configuration
        args = make().parse_args(['--dataset', 'digits'])
        assert (args.weights, args.loader_threads) == (None, 8)


def _listing(parse, argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code in (0, None)
    return capsys.readouterr().out.splitlines()


def test_set_help_lists_every_setting_with_its_default(capsys):
    lines = _listing(experiment.parser().parse_args, ['--out', 'x', '--set', 'help', '--dataset',
                                                      'digits', '--noise', 'asymmetric',
                                                      '--rate', '20%'], capsys)
    assert lines[0] == ('--set PART.KEY=VALUE, at the defaults on digits (asymmetric noise at '
                        'rate 0.2):')
    config = RunConfig(dataset='digits', noise='asymmetric', rate=0.2)
    keys = ['{}.{}'.format(part, key) for part, values in config.setting_defaults().items()
            for key in sorted(values)]
    assert [line.strip().partition('=')[0] for line in lines[1:]] == keys
    for line in ('  step1.lr=0.02', '  step2.mixup_alpha=0.6', '  pencil.stages=[10,20,20]',
                 '  pencil.losses="official"'):
        assert line in lines
    # a table script: its data set's default noise and rate (Table 1's row of CIFAR-10 at 0.5)
    lines = _listing(tables.parser(2).parse_args, ['--set', 'help'], capsys)
    assert lines[0].endswith('on cifar10 (symmetric noise at rate 0.5):')
    assert '  step1.lr=0.04' in lines and '  step2.mixup_alpha=2.0' in lines
    assert "'--set help' lists them with their defaults" in ' '.join(
        _block(experiment.parser().format_help(), '--set').split())


@pytest.mark.parametrize('text, rate', [
    ('0.5', 0.5), ('50%', 0.5), (' 30% ', 0.3), ('0', 0.0), ('0%', 0.0), ('1.2%', 0.012),
    ('0.99', 0.99), ('99.5%', 0.995)])
def test_a_rate_is_a_fraction_or_a_percentage(text, rate):
    assert parse_rate(text) == rate


@pytest.mark.parametrize('text, message', [
    ('50', '50: give 0.5 or 50% (a fraction in [0, 1) or a percentage)'),
    ('1.2', '1.2: give 0.012 or 1.2% (a fraction in [0, 1) or a percentage)'),
    ('1', '1: give 0.01 or 1% (a fraction in [0, 1) or a percentage)'),
    ('150', '150 is outside [0, 1) as a fraction and [0%, 100%) as a percentage'),
    ('100%', '100% is outside [0, 1) as a fraction and [0%, 100%) as a percentage'),
    ('-0.1', '-0.1 is outside [0, 1) as a fraction and [0%, 100%) as a percentage'),
    ('half', "takes a number, got 'half'")])
def test_any_other_rate_is_refused_naming_both_readings(text, message):
    with pytest.raises(ValueError) as error:
        parse_rate(text)
    assert str(error.value) == message


def test_a_command_states_its_own_defaults_as_values():
    parser = options.Parser()
    options.add_options(parser, cli.TableOptions, options.TABLE,
                        defaults={'trials': 1, 'jobs': 3})
    text = parser.format_help()
    for flag, default in (('--trials', '(default: 1)'), ('--jobs', '(default: 3)')):
        assert ' '.join(_block(text, flag).split()).endswith(default), flag
    assert (parser.parse_args([]).trials, parser.parse_args([]).jobs) == (1, 3)
