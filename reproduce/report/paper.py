"""The published numbers of Tables 2-4 of the paper, read and checked from
``results/paper/table{2,3,4}.json``, the one transcription of the paper's tables.

One object per table: ``table``, ``title``, ``caption``, ``source``, ``dataset``, ``noise``,
``rates`` (fractions; null for Table 4), ``trials`` (null where the paper does not say), ``note``
and ``rows``; a row has ``number`` (the paper's "#"), ``method`` (one of :data:`METHODS`),
``label``, ``printed`` (the cell verbatim), ``reference`` (the paper's citation number or null),
``decimals`` (as printed), ``best`` and ``last`` (test accuracy in %, one per rate; Table 4: one
``best`` only) and an optional ``note``. ``best``: at the best validation epoch; ``last``: after
the last epoch."""
import json
import math
import os

from reproduce import REPOSITORY

PAPER_DIR = os.path.join(REPOSITORY, 'results', 'paper')
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
        for kind, value in ((k, row[k]) for k in KINDS if k in row):
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
    """The dict of the paper's Table ``number`` (2, 3 or 4), checked; ValueError for any other
    number and for a malformed file."""
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

    ``table``: a table number or a dict from :func:`load_paper_table`; ``rate`` a fraction
    (``None`` for Table 4). ValueError for a kind other than best/last or a rate above 1."""
    if kind not in KINDS:
        raise ValueError('kind must be one of {}, got {!r}'.format(KINDS, kind))
    if rate is not None and not 0 <= rate <= 1:
        raise ValueError('rate is a fraction in [0, 1] (0.5, not 50); got {!r}'.format(rate))
    if not isinstance(table, dict):
        table = load_paper_table(table)
    row = next((r for r in table['rows'] if r['method'] == method), None)
    if row is None or kind not in row:
        return None
    value, rates = row[kind], table['rates']
    if rates is None:
        return float(value) if rate is None else None
    if rate is None:
        raise ValueError('table {} has rates {}; give one'.format(table['table'], rates))
    return next((float(v) for r, v in zip(rates, value) if math.isclose(r, rate, abs_tol=1e-9)),
                None)
