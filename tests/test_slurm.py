"""A table on SLURM: the array script ``--sbatch`` writes (its tasks are the printed commands, an
index it lacks fails, the environment travels with every command), and, where SLURM is installed
and this is root, the whole route on a real single-node SLURM started for the test: submit,
cancel a task, gather, submit what is left, gather again: the local ``--jobs`` table, bit for bit.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from reproduce import figure3
from reproduce.batch import runner, tables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ['--dataset', 'digits', '--trials', '2', '--epochs-scale', '0.05', '--device', '@numpy',
        '--iterations-per-epoch', '5', '--rates', '0.5', '--methods', 'cross_entropy,ours']
#: What the runs of :data:`TINY` are: the runs' folder below --out.
NAME = os.path.join('digits-x0.05-i5', 'symmetric-50')


def main(argv, capsys):
    status = tables.main(2, argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def tasks(script):
    """The commands of an array script, by task index."""
    lines = open(script).read().splitlines()
    return {int(line.split(')')[0]): shlex.split(lines[k + 1].strip().rstrip(';'))[1:]
            for k, line in enumerate(lines) if line[:1].isdigit()}


def script_run(argv):
    """table2.py ``argv`` in a shell where OpenBLAS's threads are set (to 3) and OpenMP's not."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS='3')
    env.pop('OMP_NUM_THREADS', None)
    done = subprocess.run([sys.executable, os.path.join(ROOT, 'reproduce', 'table2.py')] + argv,
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def test_the_script_runs_the_printed_commands_and_nothing_else(tmp_path):
    out, script = str(tmp_path / 'runs'), str(tmp_path / 'table2.sh')
    listing, err = script_run(TINY + ['--out', out, '--print-commands'])
    gather = err.splitlines()[-1].split('# afterwards, gather: ')[1]
    said, _ = script_run(TINY + ['--out', out, '--sbatch', script, '--sbatch-option',
                                 'partition=short', '--sbatch-option=-t 5'])
    assert 'submit: sbatch {}'.format(script) in said and gather in said
    text = open(script).read()
    for line in ('#SBATCH --array=1-4', '#SBATCH --output={}/slurm/%x-%A_%a.out'.format(out),
                 '#SBATCH --cpus-per-task=3', '#SBATCH --partition=short', '#SBATCH -t 5'):
        assert line + '\n' in text
    assert os.path.isdir(os.path.join(out, 'slurm')) and gather in text
    printed = [shlex.split(line) for line in listing.splitlines()]
    assert list(tasks(script).values()) == printed and sorted(tasks(script)) == [1, 2, 3, 4]
    for command in printed:
        assert command[0] == 'env' and command[command.index(sys.executable) + 1] == \
            runner.EXPERIMENT
        assert {'MKL_NUM_THREADS=1', 'OMP_NUM_THREADS=1', 'OPENBLAS_NUM_THREADS=3',
                'PYTHONUNBUFFERED=1'} <= set(command[1:command.index(sys.executable)])
    for index in ('5', '0', ''):          # an index the script lacks, or none: exit 2, nothing ran
        done = subprocess.run(['bash', script], env=dict(os.environ, SLURM_ARRAY_TASK_ID=index),
                              capture_output=True, text=True)
        assert done.returncode == 2 and "is not one of this script's 1-4" in done.stderr
    assert os.listdir(os.path.join(out, NAME, 'trial0')) == ['config.json']   # nothing ran


def test_a_gpu_script_asks_for_one_gpu_a_task_and_uses_it(tmp_path, capsys):
    out, script = str(tmp_path / 'runs'), str(tmp_path / 'table2.sh')
    status, _, _ = main(TINY + ['--out', out, '--device', '@cupy:1', '--sbatch', script], capsys)
    assert status == 0 and '#SBATCH --gres=gpu:1\n' in open(script).read()
    for command in tasks(script).values():
        assert command[command.index('--device') + 1] == '@cupy:0'
        assert 'CUPY_CACHE_DIR={}'.format(os.path.join(out, '.cupy-kernel-cache')) in command


def test_nothing_left_is_one_line_and_no_script(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(runner.Unit, 'finished', lambda unit: True)
    script = tmp_path / 'table2.sh'
    status, out, _ = main(TINY + ['--out', str(tmp_path / 'runs'), '--sbatch', str(script)],
                          capsys)
    assert status == 0 and not script.exists()
    assert out.splitlines()[-1].startswith('nothing left to run: all 4 runs are finished; '
                                           'gather: ')
    status, _, err = main(TINY + ['--out', str(tmp_path / 'runs'), '--sbatch', str(tmp_path)],
                          capsys)
    assert status == 2 and err == 'error: --sbatch {} is a folder: give a file name\n'.format(
        tmp_path)


def test_the_gather_command_of_table4_gathers(tmp_path, capsys):
    """Its runs need --data-dir and --weights: the gather command gives them too."""
    script, out = str(tmp_path / 'table4.sh'), str(tmp_path / 'runs')
    status = tables.main(4, ['--out', out, '--data-dir', str(tmp_path / 'clothing1m'),
                             '--weights', str(tmp_path / 'resnet50.npz'), '--device', '@cupy:0',
                             '--sbatch', script])
    gather = shlex.split(capsys.readouterr().out.splitlines()[-1].split('gather: ')[1])
    assert status == 0 and len(tasks(script)) == 3 and gather[-1] == '--gather-only'
    assert tables.main(4, gather[2:]) == 1             # nothing finished: nothing written
    assert capsys.readouterr().out.endswith('nothing written: no run has finished yet\n')


def test_figure3_writes_the_script_of_both_panels(tmp_path, capsys):
    script = str(tmp_path / 'figure3.sh')
    assert figure3.main(['--dataset', 'digits', '--trials', '1', '--out', str(tmp_path / 'runs'),
                         '--sbatch', script]) == 0
    said = capsys.readouterr().out
    assert len(tasks(script)) == 7        # Table 2's rows (3 commands) and Table 3's (4)
    assert said.splitlines()[-1].split('gather: ')[1].split()[1] == figure3.__file__


def test_a_run_environment_pins_the_threads_and_carries_the_numerics():
    environ = {'HOME': '/root', 'PATH': '/bin'}
    env = runner.run_environment('@numpy', '/runs/.cupy-kernel-cache', environ)
    assert env == dict(MKL_NUM_THREADS='1', OMP_NUM_THREADS='1', OPENBLAS_NUM_THREADS='1',
                       PYTHONUNBUFFERED='1')
    environ.update(MIXUP_EXACT_CPU='1', CUPY_TF32='1', OMP_NUM_THREADS='4')
    env = runner.run_environment('@cupy:0', '/runs/.cupy-kernel-cache', environ)
    assert env['MIXUP_EXACT_CPU'] == env['CUPY_TF32'] == '1' and env['OMP_NUM_THREADS'] == '4'
    assert env['CUPY_CACHE_DIR'] == '/runs/.cupy-kernel-cache'


# ----- a real SLURM ----------------------------------------------------------------------------
DAEMONS = ('munged', 'slurmctld', 'slurmd', 'sbatch', 'squeue', 'scancel', 'scontrol', 'sinfo')
MISSING = [d for d in DAEMONS if not shutil.which(d) and not os.path.exists('/usr/sbin/' + d)]

SLURM_CONF = """ClusterName=test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={base}/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation={base}/state
SlurmdSpoolDir={base}/spool
SlurmctldPidFile={base}/slurmctld.pid
SlurmdPidFile={base}/slurmd.pid
SlurmctldLogFile={base}/slurmctld.log
SlurmdLogFile={base}/slurmd.log
SlurmctldPort={port}
SlurmdPort={port_d}
ReturnToService=2
SchedulerType=sched/builtin
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
NodeName=localhost CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


def _daemon(name):
    return shutil.which(name) or '/usr/sbin/' + name


@pytest.fixture
def slurm(tmp_path):
    """A single-node SLURM (munged, slurmctld, slurmd) with its state in a temporary folder;
    yields the environment its commands need (SLURM_CONF)."""
    base = tmp_path / 'slurm'
    for folder in ('state', 'spool'):
        (base / folder).mkdir(parents=True)
    os.chmod(base, 0o755)
    (base / 'munge.key').write_bytes(os.urandom(1024))
    os.chmod(base / 'munge.key', 0o600)
    port = 17000 + os.getpid() % 2000
    (base / 'slurm.conf').write_text(SLURM_CONF.format(base=base, port=port, port_d=port + 1,
                                                       cpus=os.cpu_count() or 1))
    env = dict(os.environ, SLURM_CONF=str(base / 'slurm.conf'))
    munge = [_daemon('munged'), '--force', '--key-file', str(base / 'munge.key'), '--socket',
             str(base / 'munge.socket'), '--pid-file', str(base / 'munged.pid'), '--log-file',
             str(base / 'munged.log'), '--seed-file', str(base / 'munged.seed')]
    started = []
    try:
        for command in (munge, [_daemon('slurmctld')], [_daemon('slurmd'), '-N', 'localhost']):
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=60)
            started.append(command[0])
        deadline = time.time() + 60
        while 'idle' not in subprocess.run(['sinfo', '-h', '-o', '%T'], env=env, text=True,
                                           capture_output=True).stdout:
            assert time.time() < deadline, (base / 'slurmd.log').read_text()[-2000:]
            time.sleep(1)
        yield env
    finally:
        for pid_file in ('slurmd.pid', 'slurmctld.pid', 'munged.pid'):
            if (base / pid_file).exists():
                subprocess.run(['kill', (base / pid_file).read_text().strip()])


def _finish(job, env, timeout=300):
    deadline = time.time() + timeout
    while subprocess.run(['squeue', '-h', '-j', job], env=env, capture_output=True,
                         text=True).stdout.strip():
        assert time.time() < deadline, 'SLURM job {} still queued'.format(job)
        time.sleep(1)


def _blas_threads(table):
    return sorted({b.get('num_threads') for run in table['runs']
                   for b in run['provenance']['platform'].get('blas') or []})


@pytest.mark.slow
@pytest.mark.skipif(bool(MISSING) or os.geteuid() != 0, reason='needs SLURM and munge installed '
                    '(apt-get install slurm-wlm munge; .ci/run does) and root, which starts them')
def test_a_table_on_slurm_equals_the_local_table(tmp_path, capsys, slurm):
    local = TINY + ['--out', str(tmp_path / 'local'), '--results', str(tmp_path / 'local-res'),
                    '--jobs', '2']
    assert tables.main(2, local) == 0
    capsys.readouterr()
    argv = TINY + ['--out', str(tmp_path / 'runs'), '--results', str(tmp_path / 'res')]
    script = str(tmp_path / 'table2.sh')
    # the shell that submits has other thread counts: the script's commands set theirs
    submit = dict(slurm, OMP_NUM_THREADS='2', OPENBLAS_NUM_THREADS='2', MKL_NUM_THREADS='2')
    status, said, _ = main(argv + ['--sbatch', script], capsys)
    assert status == 0 and len(tasks(script)) == 4
    gather = shlex.split(said.splitlines()[-1].split('afterwards, gather: ')[1])
    job = subprocess.run(['sbatch', '--parsable', '--hold', script], env=submit, cwd='/',
                         capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run(['scancel', job + '_2'], env=slurm, check=True)   # never runs
    subprocess.run(['scontrol', 'release', job], env=slurm, check=True)
    _finish(job, slurm)
    logs = sorted(os.listdir(tmp_path / 'runs' / 'slurm'))
    assert logs == ['table2-{}_{}.out'.format(job, k) for k in (1, 3, 4)]
    done = subprocess.run(gather, capture_output=True, text=True)   # the printed command
    assert done.returncode == 0, done.stderr
    assert '1 of 4 planned runs are not finished (symmetric 50% trial 0 [cross_entropy]): 1 ' \
        'never trained an epoch' in done.stdout and '(1 of 2)' in done.stdout
    assert '(1 of 2)' in (tmp_path / 'res' / 'table2.md').read_text()
    status, said, _ = main(argv + ['--sbatch', script], capsys)
    assert status == 0 and list(tasks(script)) == [1] and '3 finished already' in said
    job = subprocess.run(['sbatch', '--parsable', script], env=submit, cwd='/',
                         capture_output=True, text=True, check=True).stdout.strip()
    _finish(job, slurm)
    assert subprocess.run(gather, capture_output=True, text=True).returncode == 0
    os.remove(script)
    status, said, _ = main(argv + ['--sbatch', script], capsys)
    assert status == 0 and said.splitlines()[-1].startswith('nothing left to run')
    assert not os.path.exists(script)
    ours = json.load(open(tmp_path / 'res' / 'table2.json'))
    theirs = json.load(open(tmp_path / 'local-res' / 'table2.json'))
    for key in ('rows', 'labels', 'signals'):
        assert ours[key] == theirs[key], key
    assert _blas_threads(ours) == _blas_threads(theirs) == [1]
    assert sorted(os.listdir(tmp_path / 'res')) == sorted(os.listdir(tmp_path / 'local-res'))
