"""The published numbers of Tables 2-4 of the paper, read from ``results/paper/table{2,3,4}.json``.

The JSON files are the one transcription of the paper's tables; this module only reads and checks
them. File format (one object per table)::

    {"table": 2,
     "title": "...", "caption": "<the caption as printed>", "source": "<paper title>, Table 2",
     "dataset": "cifar10" | "clothing1m",
     "noise": "symmetric" | "asymmetric" | "real",
     "rates": [0.1, 0.3, ...] (noise rates as fractions; null for Table 4),
     "trials": 5 (trials averaged by the paper; null where it does not say),
     "note": "...",
     "rows": [{"number": 1,                 # the row's "#" in the paper
               "method": "cross_entropy",   # key: cross_entropy forward_t cnn_crf tanaka pencil ours
               "label": "Cross Entropy",    # label for tables and plots, the same in every table
               "printed": "Cross Entropy loss",  # the method cell verbatim
               "reference": null,           # the paper's citation number of the method, or null
               "decimals": 2,               # digits after the point as printed (92.7 vs 92.70)
               "best": [91.66, ...],        # test accuracy in %, one per rate (Table 4: a number)
               "last": [88.43, ...],        # absent in Table 4, which reports the best only
               "note": "..."},              # optional (Table 4: who reported the row)
              ...]}

Accuracies are in percent, as printed. ``best`` is the test accuracy at the epoch with the best
validation accuracy, ``last`` the test accuracy after the last epoch.
"""
import json
import math
import os

PAPER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         'results', 'paper')
TABLES = (2, 3, 4)
KINDS = ('best', 'last')
METHODS = ('cross_entropy', 'forward_t', 'cnn_crf', 'tanaka', 'pencil', 'ours')


def _check(table, number):
    """Raise ``ValueError`` unless ``table`` is a well-formed transcription of table ``number``."""
    def fail(message):
        raise ValueError('results/paper/table{}.json: {}'.format(number, message))

    for key in ('table', 'title', 'source', 'dataset', 'noise', 'rates', 'rows'):
        if key not in table:
            fail('missing key {!r}'.format(key))
    if table['table'] != number:
        fail('says it is table {!r}'.format(table['table']))
    rates = table['rates']
    if rates is not None and (not rates or not all(0 < r < 1 for r in rates)):
        fail('rates must be fractions in (0, 1), got {!r}'.format(rates))
    if not table['rows']:
        fail('no rows')
    seen = set()
    for i, row in enumerate(table['rows'], 1):
        if row.get('number') != i:
            fail('row {} is numbered {!r}'.format(i, row.get('number')))
        method = row.get('method')
        if method not in METHODS:
            fail('row {}: unknown method {!r}'.format(i, method))
        if method in seen:
            fail('row {}: method {!r} appears twice'.format(i, method))
        seen.add(method)
        if 'best' not in row:
            fail('row {}: no "best"'.format(i))
        for kind in KINDS:
            if kind not in row:
                continue
            value = row[kind]
            if rates is None:
                if kind == 'last' or not _is_accuracy(value):
                    fail('row {}: without rates, "best" must be one accuracy and there is no '
                         '"last"; got {}={!r}'.format(i, kind, value))
            elif (not isinstance(value, list) or len(value) != len(rates)
                  or not all(_is_accuracy(v) for v in value)):
                fail('row {}: {!r} must be {} accuracies (one per rate), got {!r}'.format(
                    i, kind, len(rates), value))


def _is_accuracy(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and 0.0 <= value <= 100.0)


def load_paper_table(number):
    """The dict of the paper's Table ``number`` (2, 3 or 4), checked (see the module docstring).

    Raises ``ValueError`` for any other number and for a malformed file."""
    if isinstance(number, bool) or number not in TABLES:
        raise ValueError('the paper has published numbers in Tables {}; there is no table {!r}'
                         .format(', '.join(map(str, TABLES)), number))
    number = int(number)
    with open(os.path.join(PAPER_DIR, 'table{}.json'.format(number))) as f:
        table = json.load(f)
    _check(table, number)
    return table


def paper_cell(table, method, rate=None, kind='best'):
    """One published accuracy in %, or ``None`` where the paper does not report it.

    ``table`` is a table number (2, 3, 4) or a dict from :func:`load_paper_table`; ``method`` a
    method key (``'ours'``, ``'tanaka'``, ...); ``rate`` the noise rate as a fraction (``0.5``;
    ``None`` for Table 4); ``kind`` ``'best'`` or ``'last'``. A method, rate or kind that the table
    does not contain (e.g. ``'last'`` in Table 4, rate 0.2 in Table 2) gives ``None``. Raises
    ``ValueError`` for a kind other than best/last and for a rate above 1 (a percentage)."""
    if kind not in KINDS:
        raise ValueError('kind must be one of {}, got {!r}'.format(KINDS, kind))
    if rate is not None and not 0 <= rate <= 1:
        raise ValueError('rate is a fraction in [0, 1] (0.5, not 50); got {!r}'.format(rate))
    if not isinstance(table, dict):
        table = load_paper_table(table)
    row = next((r for r in table['rows'] if r['method'] == method), None)
    if row is None or kind not in row:
        return None
    value = row[kind]
    rates = table['rates']
    if rates is None:
        return float(value) if rate is None else None
    if rate is None:
        raise ValueError('table {} has rates {}; give one'.format(table['table'], rates))
    for r, v in zip(rates, value):
        if math.isclose(r, rate, abs_tol=1e-9):
            return float(v)
    return None
