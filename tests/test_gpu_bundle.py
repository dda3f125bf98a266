"""`make gpu-bundle` (reproduce/tools/gpu_bundle.sh) and the prelude it carries
(reproduce/tools/gpu_prelude.sh): the target runs the package's own script, its pins satisfy
setup.py, and the prelude fails in one line without the bundle and otherwise unpacks it once and
puts it first on PYTHONPATH. Building the bundle needs network: that test runs only with
MIXUP_NETWORK_TESTS=1 (make gpu-bundle does the same by hand)."""
import ast
import os
import re
import shutil
import subprocess
import tarfile

import pytest
from packaging.requirements import InvalidRequirement, Requirement

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'reproduce', 'tools', 'gpu_bundle.sh')
PRELUDE = os.path.join(ROOT, 'reproduce', 'tools', 'gpu_prelude.sh')
needs_shell = pytest.mark.skipif(not (shutil.which('bash') and shutil.which('xz')),
                                 reason='needs bash and xz')


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def pins():
    return dict(re.findall(r'\b([A-Za-z][\w.-]*)==([\w.]+)', read(SCRIPT)))


def setup_requirements():
    """Every string in setup.py that reads as a requirement (install_requires, the extras)."""
    found = []
    for node in ast.walk(ast.parse(read(os.path.join(ROOT, 'setup.py')))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                found.append(Requirement(node.value))
            except InvalidRequirement:
                pass
    return found


def test_make_target_runs_the_packages_script():
    recipe = read(os.path.join(ROOT, 'Makefile')).split('\ngpu-bundle:', 1)[1].split('\n\n')[0]
    assert 'reproduce/tools/gpu_bundle.sh' in recipe
    assert '../shared' not in recipe and '.carry/extra' not in recipe
    assert 'cp reproduce/tools/gpu_prelude.sh' in read(SCRIPT)


@pytest.mark.parametrize('path', [SCRIPT, PRELUDE])
def test_scripts_are_short_and_say_what_they_do(path):
    lines = read(path).splitlines()
    assert len(lines) < 60
    assert lines[0].startswith('#') and lines[1].startswith('#')


def test_pins_satisfy_setup_py():
    pinned = pins()
    assert pinned['numpy'].startswith('1.') and pinned['cupy-cuda13x'].startswith('13.')
    assert pinned['pytest'].startswith('8.')
    assert 'chainer==7.8.1' in read(SCRIPT)
    checked = set()
    for req in setup_requirements():
        if req.name in pinned and (req.marker is None or req.marker.evaluate()):
            assert req.specifier.contains(pinned[req.name]), (req, pinned[req.name])
            checked.add(req.name)
    assert {'chainer', 'numpy', 'setuptools', 'cupy-cuda13x', 'pytest', 'pillow'} <= checked


def source_prelude(tmp_path, command='true'):
    carry = tmp_path / 'checkout' / '.carry'
    carry.mkdir(parents=True, exist_ok=True)
    shutil.copy(PRELUDE, carry / 'prelude.sh')
    env = dict(os.environ, TMPDIR=str(tmp_path / 'tmp'), PYTHONPATH='/elsewhere')
    return subprocess.run(['bash', '-c', 'source .carry/prelude.sh || exit $?; ' + command],
                          cwd=str(carry.parent), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)


@needs_shell
def test_prelude_fails_in_one_line_without_the_bundle(tmp_path):
    done = source_prelude(tmp_path, 'echo went on')
    assert done.returncode == 1 and 'went on' not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1
    assert 'site.tar.xz is missing' in done.stderr and 'make gpu-bundle' in done.stderr


def fake_bundle(tmp_path, text):
    (tmp_path / 'fake_carried.py').write_text('VALUE = {!r}\n'.format(text))
    (tmp_path / 'checkout' / '.carry').mkdir(parents=True, exist_ok=True)
    with tarfile.open(str(tmp_path / 'checkout' / '.carry' / 'site.tar.xz'), 'w:xz') as tar:
        tar.add(str(tmp_path / 'fake_carried.py'), arcname='./fake_carried.py')


@needs_shell
def test_prelude_unpacks_once_and_puts_the_bundle_first(tmp_path):
    fake_bundle(tmp_path, 'one')
    show = ('echo "$PYTHONPATH"; echo "$CHAINER_CUDNN $PYTHONUNBUFFERED"; '
            'python3 -c "import fake_carried; print(fake_carried.VALUE)"')
    done = source_prelude(tmp_path, show)
    assert done.returncode == 0, done.stderr
    path, flags, value = done.stdout.split('\n')[:3]
    site, checkout, rest = path.split(':')
    assert site.startswith(str(tmp_path / 'tmp' / 'mixup-carry-site') + '/')
    assert checkout == str(tmp_path / 'checkout') and rest == '/elsewhere'
    assert (flags, value) == ('0 1', 'one')
    os.remove(os.path.join(site, 'fake_carried.py'))  # unpacked once: not unpacked again
    assert 'No module named' in source_prelude(tmp_path, show).stderr
    fake_bundle(tmp_path, 'two')  # a new bundle: unpacked afresh, the old copy removed
    again = source_prelude(tmp_path, show)
    assert again.stdout.split('\n')[2] == 'two' and not os.path.exists(site)


@pytest.mark.skipif(os.environ.get('MIXUP_NETWORK_TESTS') != '1',
                    reason='builds the bundle from package registries: MIXUP_NETWORK_TESTS=1')
def test_bundle_builds_under_60_mib(tmp_path):
    carry = tmp_path / '.carry'
    subprocess.run(['bash', SCRIPT], env=dict(os.environ, CARRY_DIR=str(carry)), check=True)
    assert sum(p.stat().st_size for p in carry.iterdir()) < 60 * 2 ** 20
    with tarfile.open(str(carry / 'site.tar.xz')) as tar:
        names = {n.split('/')[1] for n in tar.getnames() if n.count('/') >= 1}
    for name, version in pins().items():
        dist = '{}-{}.dist-info'.format(re.sub(r'[-.]', '_', name), version)
        assert dist in names or dist.lower() in {n.lower() for n in names}, dist
    assert 'chainer-7.8.1.dist-info' in names and 'matplotlib' not in names
