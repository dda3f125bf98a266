"""``--sbatch FILE``: a table's unfinished runs as one self-contained SLURM array script (it
replaces a list of commands that each task had to find and read by its line number).

Each task's command is in the script (a ``case`` on ``SLURM_ARRAY_TASK_ID``; sbatch keeps a copy
at submission), so neither the folder it is submitted from nor a later script changes what a
task runs; an index it does not hold exits 2. Output goes to ``<--out>/slurm/``.
"""
import datetime
import os
import shlex

import atomic_files as atomic
from reproduce.batch import runner
from reproduce.run import device as device_lib, provenance


def script(units, device, options, path, gather, kernel_cache=None):
    """The text of the array script running ``units`` (all unfinished) on ``device``, a GPU
    each where it is one (``--gres=gpu:1``, seen as ``@cupy:0`` by the task)."""
    gpu = device_lib.is_gpu(device)
    device = '@cupy:0' if gpu else device
    out = os.path.join(os.path.abspath(units[0].root), 'slurm')
    env = runner.run_environment(device)
    threads = max(int(env[name]) if env[name].isdigit() else 1 for name in runner.THREADS)
    header = ['#!/bin/bash',
              '# {} unfinished runs, written {} at commit {}; submit: sbatch {}'.format(
                  len(units), datetime.date.today(), provenance.git_commit(), shlex.quote(path)),
              '# then gather: ' + gather,
              '#SBATCH --job-name=' + os.path.basename(path).split('.')[0],
              '#SBATCH --array=1-{}'.format(len(units)),
              '#SBATCH --output={}/%x-%A_%a.out'.format(out),
              '#SBATCH --gres=gpu:1' if gpu else '#SBATCH --cpus-per-task={}'.format(threads)]
    header += ['#SBATCH ' + o for o in options]
    cases = ['{}) # {}\n  exec {} ;;'.format(k, unit.label, shlex.join(
        unit.command(device, True, kernel_cache))) for k, unit in enumerate(units, 1)]
    return '\n'.join(header + ['case "${SLURM_ARRAY_TASK_ID:-}" in'] + cases + [
        '*) echo "task ${SLURM_ARRAY_TASK_ID:-(none)} is not one of this script\'s 1-%d" >&2'
        % len(units), '  exit 2 ;;', 'esac']) + '\n'


def write(units, path, device, options, gather, kernel_cache, stream):
    """Writes the script of the unfinished ``units`` to ``path`` (atomically; their config.json
    first) and says how to submit it; with none left, one line and no file. Returns how many."""
    todo = [u for u in units if not u.finished()]
    if not todo:
        stream.write('nothing left to run: all {} runs are finished; gather: {}\n'.format(
            len(units), gather))
        return 0
    runner.write_configs(todo)
    os.makedirs(os.path.join(todo[0].root, 'slurm'), exist_ok=True)
    atomic.write_text(path, script(todo, device, options, path, gather, kernel_cache))
    stream.write('{}: {} of {} runs, one array task each ({} finished already); submit: '
                 'sbatch {}\nafterwards, gather: {}\n'.format(
                     path, len(todo), len(units), len(units) - len(todo), shlex.quote(path),
                     gather))
    return len(todo)
