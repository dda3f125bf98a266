"""Step 1 trained alone in a run folder, for the tests whose assertions read step 1 only (no
method trains step 1 without a second step after it, which such a test would pay for and never
read)."""
import dataclasses

from reproduce.run import (config as config_lib, data as data_sets, device, methods,
                           rundir)


def train_step1(config, run_dir):
    """Step 1 of ``config`` in ``run_dir``, claimed as :func:`reproduce.run.launch.run` claims
    it: ``{'step1': its result}``, as ``launch.run`` returns it."""
    launch = config.launch()
    config = dataclasses.replace(config, device=device.resolve(config.device))
    rundir.claim(run_dir, config.identity(), config_lib.defaults_identity(), launch)
    data = config.spec.load(config)
    context = methods.Context(config, data, data_sets.noisy_labels(config, data), run_dir)
    return {'step1': methods.PREREQUISITES['step1'](context)}
