"""The transcription of the paper's Tables 2-4 (results/paper/) and its reader."""
import json
import os

import pytest

from reproduce.report import paper


def test_every_table_loads_with_the_right_shape():
    shapes = {2: ('symmetric', [0.1, 0.3, 0.5, 0.7, 0.9],
                  ['cross_entropy', 'tanaka', 'pencil', 'ours']),
              3: ('asymmetric', [0.1, 0.2, 0.3, 0.4, 0.5],
                  ['cross_entropy', 'forward_t', 'cnn_crf', 'tanaka', 'pencil', 'ours'])}
    for number, (noise, rates, methods) in shapes.items():
        table = paper.load_paper_table(number)
        assert table['table'] == number
        assert table['dataset'] == 'cifar10' and table['noise'] == noise
        assert table['rates'] == rates and table['trials'] == 5
        assert [r['method'] for r in table['rows']] == methods
        assert [r['number'] for r in table['rows']] == list(range(1, len(methods) + 1))
        for row in table['rows']:
            assert len(row['best']) == len(rates) == len(row['last'])
            assert all(50.0 <= v <= 100.0 for v in row['best'])
            assert all(0.0 < v <= 100.0 for v in row['last'])
            for rate in rates:
                for kind in ('best', 'last'):
                    assert isinstance(paper.paper_cell(table, row['method'], rate, kind), float)
    table = paper.load_paper_table(4)
    assert table['dataset'] == 'clothing1m' and table['noise'] == 'real'
    assert table['rates'] is None
    assert [r['method'] for r in table['rows']] == [
        'cross_entropy', 'forward_t', 'tanaka', 'pencil', 'ours']
    for row in table['rows']:
        assert isinstance(row['best'], float) and 'last' not in row
        assert row.get('note') or table.get('note')


def test_spot_values_typed_from_the_paper():
    # Table 2 (symmetric CIFAR-10)
    assert paper.paper_cell(2, 'ours', 0.5, 'best') == 91.00
    assert paper.paper_cell(2, 'ours', 0.9, 'last') == 61.02
    assert paper.paper_cell(2, 'cross_entropy', 0.9, 'last') == 16.30
    assert paper.paper_cell(2, 'tanaka', 0.1, 'best') == 92.7
    assert paper.paper_cell(2, 'pencil', 0.7, 'last') == 87.18
    # Table 3 (asymmetric CIFAR-10)
    assert paper.paper_cell(3, 'tanaka', 0.5, 'last') == 84.7
    assert paper.paper_cell(3, 'forward_t', 0.2, 'best') == 91.4
    assert paper.paper_cell(3, 'cnn_crf', 0.4, 'last') == 79.7
    assert paper.paper_cell(3, 'ours', 0.3, 'best') == 92.87
    assert paper.paper_cell(3, 'pencil', 0.1, 'last') == 93.64
    # Table 4 (Clothing1M): best only
    assert paper.paper_cell(4, 'pencil') == 73.49
    assert paper.paper_cell(4, 'ours', None, 'best') == 73.63
    assert paper.paper_cell(4, 'cross_entropy') == 68.94
    assert paper.paper_cell(4, 'forward_t') == 69.84
    assert paper.paper_cell(4, 'tanaka') == 72.16


def test_printed_precision_is_kept_in_the_file():
    with open(os.path.join(paper.PAPER_DIR, 'table3.json')) as f:
        text = f.read()
    assert '[93.32, 92.70, 92.87, 92.16, 85.45]' in text  # 92.70, not 92.7
    rows = {r['method']: r for r in json.loads(text)['rows']}
    assert rows['tanaka']['decimals'] == 1 and rows['ours']['decimals'] == 2


def test_cells_the_paper_does_not_report_are_none():
    assert paper.paper_cell(2, 'forward_t', 0.5, 'best') is None   # not in Table 2
    assert paper.paper_cell(2, 'ours', 0.2, 'best') is None        # rate not in Table 2
    assert paper.paper_cell(4, 'ours', None, 'last') is None       # Table 4 has best only
    assert paper.paper_cell(4, 'cnn_crf') is None


def test_bad_arguments_raise():
    for number in (1, 5, '2', None, True):
        with pytest.raises(ValueError, match='no table'):
            paper.load_paper_table(number)
    with pytest.raises(ValueError, match='kind'):
        paper.paper_cell(2, 'ours', 0.5, 'mean')
    with pytest.raises(ValueError, match='fraction'):
        paper.paper_cell(2, 'ours', 50, 'best')
    with pytest.raises(ValueError, match='rates'):
        paper.paper_cell(2, 'ours', None, 'best')


def test_a_malformed_table_is_rejected():
    table = paper.load_paper_table(2)
    table['rows'][0]['last'] = table['rows'][0]['last'][:4]
    with pytest.raises(ValueError, match='one per rate'):
        paper._check(table, 2)
