"""``AutoencoderTransformer``: a trained encoder as a scikit-learn transformer.

``fit`` trains an aelab model on an array, ``transform`` returns latent codes
and ``inverse_transform`` decodes codes back to the input layout, so an
autoencoder drops into a ``Pipeline`` (e.g. before k-means or a classifier).
Following scikit-learn's conventions, ``__init__`` only stores
hyperparameters and learned state ends in ``_``.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from . import api
from .data import Dataset
from .spec import Config, load_config


class AutoencoderTransformer(TransformerMixin, BaseEstimator):
    """Fit an (V)AE on ``X`` and use its encoder as a transformer.

    ``config`` (a path, dict or :class:`Config`) gives the whole experiment;
    without it the named hyperparameters below build a dense model.  Rows of
    a 2-D ``X`` are reshaped to ``image_shape`` (C, H, W) when given, which
    conv layers need; otherwise to (1, 1, D).
    """

    def __init__(self, config=None, *, kind: str = "ae", encoder=(64,), latent_dim: int = 2,
                 activation: str = "relu", output_activation: str = "linear", loss: str = "mse",
                 optimizer: str = "adam", lr: float = 1e-3, epochs: int = 20, batch_size: int = 128,
                 seed: int = 0, image_shape=None, device: str = "auto"):
        self.config, self.kind, self.encoder, self.latent_dim = config, kind, encoder, latent_dim
        self.activation, self.output_activation, self.loss = activation, output_activation, loss
        self.optimizer, self.lr, self.epochs, self.batch_size = optimizer, lr, epochs, batch_size
        self.seed, self.image_shape, self.device = seed, image_shape, device

    def _config(self) -> Config:
        if self.config is not None:
            return load_config(self.config)
        return load_config({
            "model": {"kind": self.kind, "encoder": list(self.encoder), "latent_dim": self.latent_dim,
                      "activation": self.activation, "output_activation": self.output_activation},
            "train": {"optimizer": self.optimizer, "lr": self.lr, "epochs": self.epochs,
                      "batch_size": self.batch_size, "seed": self.seed, "loss": self.loss,
                      "device": self.device}})

    def _images(self, X) -> np.ndarray:
        X = check_array(X, dtype=np.float32, allow_nd=True)
        if X.ndim == 4:
            return X
        shape = tuple(self.image_shape) if self.image_shape else (1, 1, X.shape[1])
        return X.reshape(len(X), *shape)

    def fit(self, X, y=None):
        """Train on ``X`` (labels are ignored); returns ``self``."""
        cfg = self._config()
        x = self._images(X)
        data = Dataset("array", x, None, x[:0], None, None, (float(x.min()), float(x.max())))
        self.device_ = api.resolve_device(cfg.train.device)
        model = api.build(cfg, data, self.device_, warn=True)
        trainer = api.fit(model, cfg, data)
        self.model_, self.history_ = trainer.model.eval(), trainer.state.history
        self.status_, self.n_features_in_ = trainer.state.status, int(np.prod(x.shape[1:]))
        self.input_ndim_, self.input_shape_ = np.ndim(X), x.shape[1:]
        return self

    @torch.no_grad()
    def transform(self, X) -> np.ndarray:
        """Latent codes of ``X`` (the mean ``mu`` for a VAE)."""
        check_is_fitted(self, "model_")
        x = torch.as_tensor(self._images(X), device=self.device_)
        return self.model_.embed(x).cpu().numpy()

    @torch.no_grad()
    def inverse_transform(self, Z) -> np.ndarray:
        """Decode codes back to the layout ``X`` had when fitted."""
        check_is_fitted(self, "model_")
        z = torch.as_tensor(check_array(Z, dtype=np.float32), device=self.device_)
        out = self.model_.decode(z).cpu().numpy()
        return out.reshape(len(out), -1) if self.input_ndim_ == 2 else out

    def score(self, X, y=None) -> float:
        """Negative reconstruction MSE (higher is better, as scikit-learn expects)."""
        x = self._images(X)
        recon = self.inverse_transform(self.transform(X)).reshape(x.shape)
        return -float(np.mean((recon - x) ** 2))
