"""Command-line options declared once, as dataclass fields (:func:`option`), and what is
generated from them: argparse options (:func:`add_options`), parsed values (:func:`values`), the
options a command line gave (:func:`given`) and the checks of every configuration
(:func:`check_fields`). To add an option, add one field to its dataclass (``RunConfig`` for a run).
"""
import argparse
import copy
import dataclasses
import os

RUN, TABLE, BENCHMARK = 'run', 'table', 'benchmark'


def option(default, help, *, commands=(RUN, TABLE), parse=None, render=None, choices=None,
           check=None, flag=None, default_text=None, metavar=None, identity=True,
           store_true=False, inverse=None, repeat=False, datasets=()):
    """A dataclass field declaring one command-line option.

    ``help`` says what it is (the default is added); ``parse``: text -> value, raising
    ValueError; ``render``: its inverse; ``choices`` and ``check`` (value -> message or None) are
    checked on every configuration; ``identity``: whether the value decides what a run computes;
    ``store_true``: a switch (``inverse``: one that sets False); ``repeat``: values in a list;
    ``datasets``: the only data sets it applies to (a command offering none of them leaves it out).
    """
    metadata = dict(help=help, commands=tuple(commands), parse=parse, render=render or str,
                    choices=tuple(choices) if choices else None, check=check, flag=flag,
                    default_text=default_text, metavar=metavar, identity=identity,
                    store_true=store_true, inverse=inverse, repeat=repeat, datasets=datasets)
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda v=default: type(v)(v), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared(cls, command=None, only=None):
    """The option fields of dataclass ``cls`` (offered by ``command``; named in ``only``)."""
    return [f for f in dataclasses.fields(cls) if 'help' in f.metadata and
            (command is None or command in f.metadata['commands']) and
            (only is None or f.name in only)]


def flag_of(field):
    meta = field.metadata
    return meta['inverse'] or meta['flag'] or '--' + field.name.replace('_', '-')


def _default_of(field):
    return field.default_factory() if field.default is dataclasses.MISSING else field.default


def _default_text(field, value, own):
    meta = field.metadata
    if (meta['default_text'] and not own) or meta['store_true'] or value in (None, [], (), {}):
        return meta['default_text']
    return render_words(value) if isinstance(value, (list, tuple)) else meta['render'](value)


def _help(field, value, own):
    default = _default_text(field, value, own)
    text = field.metadata['help'] + ('' if default is None else ' (default: {})'.format(default))
    return text.replace('%', '%%')            # argparse formats help texts with %


def _argparse_type(field):
    parse = field.metadata['parse']
    def convert(text):
        try:
            return parse(text)
        except ValueError as error:     # argparse says 'argument <flag>: ' before it
            raise argparse.ArgumentTypeError(str(error))
    convert.__name__ = field.name
    return convert


def add_options(parser, cls, command, only=None, choices=None, defaults=None):
    """Adds the options of ``cls`` that ``command`` offers to ``parser`` (``only``: a subset of
    field names; ``choices``: narrower choices per name; an option for none of
    ``choices['dataset']`` is left out, its default kept;
    ``defaults``: the command's own default values per name, which its help states)."""
    choices, defaults = choices or {}, defaults or {}
    for field in declared(cls, command, only):
        meta, default = field.metadata, defaults.get(field.name, _default_of(field))
        offered = choices.get('dataset') or meta['datasets']
        if meta['datasets'] and set(meta['datasets']).isdisjoint(offered):
            parser.set_defaults(**{field.name: default})
            continue
        kwargs = dict(dest=field.name, help=_help(field, default, field.name in defaults))
        if meta['store_true']:
            kwargs.update(action='store_false' if meta['inverse'] else 'store_true',
                          default=default)
        else:
            kwargs.update(default=None if meta['repeat'] else default,
                          type=meta['parse'] and _argparse_type(field), metavar=meta['metavar'],
                          action='append' if meta['repeat'] else 'store', choices=None if
                          meta['parse'] else choices.get(field.name) or meta['choices'])
        parser.add_argument(flag_of(field), **kwargs)


def values(args, cls, command, only=None):
    """``{field: value}`` of the options of ``cls`` that ``command`` offers, from parsed
    ``args``."""
    return {f.name: _default_of(f) if f.metadata['repeat'] and getattr(args, f.name) is None
            else getattr(args, f.name) for f in declared(cls, command, only)}


def command_words(field, value):
    """The command-line words that give ``value`` to ``field``'s option (a repeated one: each)."""
    rendered = field.metadata['render'](value)
    return [w for text in (rendered if isinstance(rendered, list) else [rendered])
            for w in (flag_of(field), text)]


def given(parser, argv):
    """The destinations of the options that ``argv`` gives explicitly (a default left alone is
    not given), parsed by a copy of ``parser`` whose defaults are all suppressed."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return set(vars(probe.parse_args(argv)))


def check_fields(instance):
    """Every declared field's choices and range, on a configuration however it was made;
    ValueError naming the option."""
    for field in declared(type(instance)):
        value, meta = getattr(instance, field.name), field.metadata
        if value is None:
            continue
        if meta['choices'] and value not in meta['choices']:
            raise ValueError('{} must be one of {}, got {!r}'.format(
                flag_of(field), ', '.join(map(str, meta['choices'])), value))
        problem = meta['check'] and meta['check'](value)
        if problem:
            raise ValueError('{} {}'.format(flag_of(field), problem))


# ----- reading values -----
def path(text):
    """A parse function for a file or folder path: anything but an empty one."""
    if not text.strip():
        raise ValueError('takes a path, got {!r}'.format(text))
    return text


def integer(minimum):
    """A parse function for integers of at least ``minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise ValueError('takes an integer, got {!r}'.format(text))
        if value < minimum:
            raise ValueError(at_least(minimum)(value))
        return value
    return parse


def number(text):
    try:
        return float(text)
    except ValueError:
        raise ValueError('takes a number, got {!r}'.format(text))


def at_least(minimum):
    def check(value):
        if value < minimum:
            return 'must be at least {}, got {}'.format(minimum, value)
    return check


def positive(value):
    if not value > 0:
        return 'must be positive, got {}'.format(value)


class Merged(list):
    """A list whose repeated entries were merged; ``repeated`` names them (for a note)."""

    repeated = ()


def merged(items, key=lambda item: item):
    """``items`` with repeats dropped (the first kept), as a :class:`Merged` list."""
    kept, seen, repeated = Merged(), set(), []
    for item in items:
        (repeated if key(item) in seen else kept).append(item)
        seen.add(key(item))
    kept.repeated = tuple(repeated)
    return kept


def words(text):
    """Comma-separated words, repeats merged (:class:`Merged`); an empty list is refused."""
    items = [w.strip() for w in text.split(',') if w.strip()]
    if not items:
        raise ValueError('takes a comma-separated list, got {!r}'.format(text))
    return merged(items)


def merge_notes(args, names):
    """One note per list option of ``args`` (``names``) that had repeats, for the user."""
    found = {name: getattr(args, name, None) for name in names}
    return ['note: --{} {} repeated an entry; each is counted once: {}'.format(
        name.replace('_', '-'), render_words(value.repeated), render_words(value))
        for name, value in found.items() if getattr(value, 'repeated', ())]


def render_words(items):
    return ','.join(map(str, items))


def file_name(text):
    """An argparse type: a plain file name (``--name``): not empty, no folder, not hidden."""
    if not text or text != os.path.basename(text) or text.startswith('.'):
        raise argparse.ArgumentTypeError('takes a plain file name such as digits_summary, '
                                         'got {!r}'.format(text))
    return text


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and a hint, not the whole usage block; a
    function among the listed values (``--set help``) prints its text for the values, and exits."""

    def parse_known_args(self, args=None, namespace=None):
        parsed, extra = super().parse_known_args(args, namespace)
        for value in [v for vs in vars(parsed).values() if isinstance(vs, list) for v in vs]:
            if callable(value):
                self.exit(print(value(parsed), end=''))     # status 0, the text on stdout
        return parsed, extra

    def error(self, message):
        self.exit(2, '{}: error: {} (see --help)\n'.format(self.prog, message))


HelpFormatter = argparse.RawDescriptionHelpFormatter
