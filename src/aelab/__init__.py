"""aelab: a toolkit for autoencoder research."""
__version__ = "0.1.0"
