"""Command-line options declared once, as dataclass fields (:func:`option`: default, help,
parse/render, choices or range, the commands that offer it), and what is generated from them:
each command's argparse options with the default stated once (:func:`add_options`), the parsed
values (:func:`values`), which options a command line gave (:func:`given`) and the checks run on
every configuration however it was made (:func:`check_fields`). To add an option, add one field
to the dataclass it belongs to (:class:`reproduce.run.config.RunConfig` for a run).
"""
import argparse
import dataclasses
import os
import sys

RUN, TABLE, BENCHMARK = 'run', 'table', 'benchmark'


def option(default, help, *, commands=(RUN, TABLE), parse=None, render=None, choices=None,
           check=None, flag=None, default_text=None, metavar=None, identity=True,
           store_true=False, inverse=None, repeat=False):
    """A dataclass field declaring one command-line option.

    Args:
        default: its value when not given (a list or dict default is copied per instance).
        help: what it is, without its default (added from ``default`` / ``default_text``).
        commands: the commands that offer it.
        parse: text -> value (argparse ``type``); raises ValueError with a message.
        render: value -> text, the inverse of ``parse`` (default ``str``).
        choices: allowed values (checked on every configuration).
        check: value -> error message or None (ranges; checked on every configuration).
        flag: the option string (default ``--`` + the field name with dashes).
        default_text: how the help states the default, where the value alone would not say it.
        identity: whether the value decides what a run computes (part of its identity).
        store_true: a switch (no value); with ``inverse`` the switch sets the field False
            (``--quiet`` for ``progress``).
        repeat: given several times, the values collected in a list.
    """
    factory = None
    if isinstance(default, (list, dict)):
        value, default = default, dataclasses.MISSING
        factory = (lambda v=value: type(v)(v))
    metadata = dict(help=help, commands=tuple(commands), parse=parse, render=render or str,
                    choices=tuple(choices) if choices else None, check=check, flag=flag,
                    default_text=default_text, metavar=metavar, identity=identity,
                    store_true=store_true, inverse=inverse, repeat=repeat)
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared(cls, command=None):
    """The option fields of dataclass ``cls`` (offered by ``command``, if given)."""
    return [f for f in dataclasses.fields(cls) if 'help' in f.metadata and
            (command is None or command in f.metadata['commands'])]


def declared_field(cls, name):
    """The option field ``name`` of dataclass ``cls``."""
    return next(f for f in declared(cls) if f.name == name)


def flag_of(field):
    meta = field.metadata
    if meta['inverse']:
        return meta['inverse']
    return meta['flag'] or '--' + field.name.replace('_', '-')


def _default_of(field):
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory()


def _default_text(field):
    meta = field.metadata
    if meta['default_text']:
        return meta['default_text']
    value = _default_of(field)
    if meta['store_true']:
        return None
    if value is None:
        return None
    if isinstance(value, (list, tuple, dict)) and not value:
        return None
    if isinstance(value, (list, tuple)):
        return ','.join(map(str, value))
    return meta['render'](value)


def _help(field):
    text = field.metadata['help']
    default = _default_text(field)
    text = text if default is None else '{} (default: {})'.format(text, default)
    return text.replace('%', '%%')            # argparse formats help texts with %


def _argparse_type(field):
    parse = field.metadata['parse']
    if parse is None:
        return None
    def convert(text):
        try:
            return parse(text)
        except ValueError as error:     # argparse says 'argument <flag>: ' before it
            raise argparse.ArgumentTypeError(str(error))
    convert.__name__ = field.name
    return convert


def add_options(parser, cls, command, only=None, required=(), choices=None):
    """Adds the options of ``cls`` that ``command`` offers to ``parser`` (``only``: a subset of
    field names; ``required``: names that must be given; ``choices``: narrower choices per
    name)."""
    for field in declared(cls, command):
        if only is not None and field.name not in only:
            continue
        meta = field.metadata
        kwargs = dict(dest=field.name, help=_help(field))
        if meta['store_true']:
            kwargs.update(action='store_false' if meta['inverse'] else 'store_true',
                          default=_default_of(field))
        else:
            kwargs.update(default=None if meta['repeat'] else _default_of(field),
                          type=_argparse_type(field))
            if meta['repeat']:
                kwargs['action'] = 'append'
            if meta['metavar']:
                kwargs['metavar'] = meta['metavar']
            allowed = (choices or {}).get(field.name) or meta['choices']
            if allowed and meta['parse'] is None:
                kwargs['choices'] = allowed
            if field.name in required:
                kwargs.update(required=True, default=None)
        parser.add_argument(flag_of(field), **kwargs)


def values(args, cls, command, only=None):
    """``{field: value}`` of the options of ``cls`` that ``command`` offers, from parsed
    ``args``."""
    found = {}
    for field in declared(cls, command):
        if only is not None and field.name not in only:
            continue
        value = getattr(args, field.name)
        if field.metadata['repeat'] and value is None:
            value = _default_of(field)
        found[field.name] = value
    return found


def given(parser, argv):
    """The destinations of the options that ``argv`` gives explicitly (a default left alone is
    not given), parsed by a copy of ``parser`` whose defaults are all suppressed."""
    import copy
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return set(vars(probe.parse_args(argv)))


def check_fields(instance):
    """Every declared field's choices and range, on a configuration however it was made;
    ValueError naming the option."""
    for field in declared(type(instance)):
        value = getattr(instance, field.name)
        meta = field.metadata
        if value is None:
            continue
        if meta['choices'] and value not in meta['choices']:
            raise ValueError('{} must be one of {}, got {!r}'.format(
                flag_of(field), ', '.join(map(str, meta['choices'])), value))
        if meta['check']:
            problem = meta['check'](value)
            if problem:
                raise ValueError('{} {}'.format(flag_of(field), problem))


# ----------------------------------------------------------------------------------------------
# Reading values


def path(text):
    """A parse function for a file or folder path: anything but an empty one (an empty path
    would silently mean the current folder, or no folder at all)."""
    if not text.strip():
        raise ValueError('takes a path, got {!r}'.format(text))
    return text


def integer(minimum=None):
    """A parse function for integers of at least ``minimum``."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise ValueError('takes an integer, got {!r}'.format(text))
        problem = at_least(minimum)(value) if minimum is not None else None
        if problem:
            raise ValueError(problem)
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
    kept, seen, repeated = Merged(), {}, []
    for item in items:
        k = key(item)
        if k in seen:
            repeated.append(item)
        else:
            seen[k] = item
            kept.append(item)
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
    notes = []
    for name in names:
        value = getattr(args, name, None)
        if getattr(value, 'repeated', ()):
            notes.append('note: --{} {} repeated an entry; each is counted once: {}'.format(
                name.replace('_', '-'), ','.join(map(str, value.repeated)),
                ','.join(map(str, value))))
    return notes


def render_words(items):
    return ','.join(map(str, items))


def file_name(text):
    """An argparse type: a plain file name (``--name`` of the scripts that write under
    ``--dest``): not empty, no folder, not hidden."""
    if not text or text != os.path.basename(text) or text.startswith('.'):
        raise argparse.ArgumentTypeError('takes a plain file name such as digits_summary, '
                                         'got {!r}'.format(text))
    return text


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and a hint, not the whole usage block."""

    def error(self, message):
        sys.stderr.write('{}: error: {} (see --help)\n'.format(self.prog, message))
        sys.exit(2)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    pass
