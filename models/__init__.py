"""models."""
import chainer_compat  # noqa: F401  (must precede the first chainer import)

from models.preact_resnet import PreActResNet, preact_resnet32  # noqa: F401,E402
from models.resnet50 import ResNet50  # noqa: F401,E402
