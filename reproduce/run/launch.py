"""One run: claim its folder, load its data, train its parts (:mod:`reproduce.run.methods`)."""
import dataclasses

from reproduce.run import (config as config_lib, data as data_sets, device,
                           methods as methods_lib, rundir)

METHODS = methods_lib.NAMES


def run(config, out_dir, methods=METHODS, extra_extensions=()):
    """Runs the configured ``methods`` in ``out_dir``; returns {part: result dict}. Claims the
    directory (one made with other settings is refused, nothing touched); each part trains under
    its lock (:func:`rundir.locked`)."""
    methods_lib.check_methods(methods)
    launch = config.launch()
    identity, defaults = config.identity(), config_lib.defaults_identity()
    rundir.check_identity(out_dir, identity, defaults)
    config.spec.check_inputs(config)              # every check before the first file
    data = config.spec.load(config)
    rundir.claim(out_dir, identity, defaults, launch)  # again: another process may have since
    return run_with_data(config, data, data_sets.noisy_labels(config, data), out_dir,
                         methods, extra_extensions)


def run_with_data(config, data, noisy, out_dir, methods=METHODS, extra_extensions=()):
    """:func:`run` on given data and noisy labels (host arrays), without claiming ``out_dir``
    (the GPU check's parity runs train on a small data set of their own)."""
    config = dataclasses.replace(config, device=device.resolve(config.device))
    context = methods_lib.Context(config, data, noisy, out_dir, tuple(extra_extensions))
    return methods_lib.run_parts(context, list(methods))
