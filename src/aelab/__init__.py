"""aelab: a toolkit for autoencoder research.

Declare an experiment as data, get a run directory with metrics, figures,
weights and a report::

    import aelab
    run = aelab.train("configs/mnist-vae.yaml", overrides=["train.epochs=5"], out="runs/try")
    run.metrics["silhouette"]
"""
__version__ = "0.1.0"

from .api import datasets, evaluate, resolve_device, show, train  # noqa: E402
from .data import Dataset, load_dataset  # noqa: E402
from .errors import AelabError, ConfigError, DataError, ModelSpecError, RunDirError  # noqa: E402
from .models import VAE, Autoencoder, Classifier, build_model, count_parameters  # noqa: E402
from .runs import Run, load_model, load_run  # noqa: E402
from .sklearn import AutoencoderTransformer  # noqa: E402
from .spec import Config, load_config  # noqa: E402
from . import lso  # noqa: E402  (latent-space optimization: aelab.lso)

__all__ = [
    "train", "evaluate", "show", "datasets", "resolve_device",
    "Dataset", "load_dataset", "Config", "load_config",
    "Autoencoder", "VAE", "Classifier", "build_model", "count_parameters",
    "Run", "load_run", "load_model", "AutoencoderTransformer",
    "AelabError", "ConfigError", "DataError", "ModelSpecError", "RunDirError",
]
