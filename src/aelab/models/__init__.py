"""Models declared as data: layer vocabulary, mirrored decoders, AE / VAE / classifier."""
from .autoencoder import VAE, Autoencoder, Classifier, kld
from .build import build_model, count_parameters, output_range_warning

__all__ = ["Autoencoder", "VAE", "Classifier", "kld", "build_model", "count_parameters",
           "output_range_warning"]
