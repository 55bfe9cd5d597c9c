"""``AutoencoderTransformer``: a trained encoder as a scikit-learn transformer.

``fit`` trains an aelab model on an array, ``transform`` returns latent codes
and ``inverse_transform`` decodes codes back to the input layout, so an
autoencoder drops into a ``Pipeline`` (e.g. before k-means or a classifier).
It follows scikit-learn's conventions and passes its estimator checks
(tests/test_sklearn_checks.py): ``__init__`` only stores hyperparameters,
learned state ends in ``_``, inputs are validated against what ``fit`` saw.
"""
from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from . import api
from .data import Dataset
from .spec import Config, load_config

try:  # scikit-learn >= 1.6
    from sklearn.utils.validation import validate_data
except ImportError:  # older releases: the same check is an estimator method
    def validate_data(estimator, X, **kwargs):
        return estimator._validate_data(X, **kwargs)

FLOATS = (np.float64, np.float32)  # kept as given; anything else becomes float64


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Fit an (V)AE on ``X`` and use its encoder as a transformer.

    ``config`` (a path, dict or :class:`Config`) gives the whole experiment;
    without it the named hyperparameters below build a dense model.  Rows of
    a 2-D ``X`` are reshaped to ``image_shape`` (C, H, W) when given, which
    conv layers need; otherwise to (1, 1, D).  A 4-D array (N, C, H, W) is
    taken as images as it is; it has C*H*W features.

    The model computes in float32; ``transform`` and ``inverse_transform``
    return float64 or float32 as their input was (integers give float64).

    Fitted attributes: ``model_`` (eval mode), ``history_``, ``status_``,
    ``device_``, ``n_features_in_`` (``feature_names_in_`` for a DataFrame),
    ``image_shape_`` (C, H, W of one row), ``input_ndim_`` (2 or 4: the
    layout ``inverse_transform`` returns) and ``latent_dim_``.
    """

    def __init__(self, config=None, *, kind: str = "ae", encoder=(64,), latent_dim: int = 2,
                 activation: str = "relu", output_activation: str = "linear", loss: str = "mse",
                 optimizer: str = "adam", lr: float = 1e-3, epochs: int = 20, batch_size: int = 128,
                 seed: int = 0, image_shape=None, device: str = "auto"):
        self.config, self.kind, self.encoder, self.latent_dim = config, kind, encoder, latent_dim
        self.activation, self.output_activation, self.loss = activation, output_activation, loss
        self.optimizer, self.lr, self.epochs, self.batch_size = optimizer, lr, epochs, batch_size
        self.seed, self.image_shape, self.device = seed, image_shape, device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"preserves_dtype": [np.float64, np.float32]}

    @property
    def _n_features_out(self) -> int:  # names: autoencodertransformer0, ...
        return self.latent_dim_

    def _config(self) -> Config:
        if self.config is not None:
            return load_config(self.config)
        return load_config({
            "model": {"kind": self.kind, "encoder": list(self.encoder), "latent_dim": self.latent_dim,
                      "activation": self.activation, "output_activation": self.output_activation},
            "train": {"optimizer": self.optimizer, "lr": self.lr, "epochs": self.epochs,
                      "batch_size": self.batch_size, "seed": self.seed, "loss": self.loss,
                      "device": self.device}})

    def _validate(self, X, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        """``X`` checked (and, with ``reset``, remembered) the scikit-learn
        way, plus a float32 copy of its rows as (N, C, H, W) images."""
        name = type(self).__name__
        if getattr(X, "ndim", None) == 4:  # images: validate_data's feature count would be C
            X = validate_data(self, X, reset=reset, dtype=FLOATS, allow_nd=True, ensure_2d=False)
            shape = X.shape[1:]
            if reset and self.image_shape and tuple(self.image_shape) != shape:
                raise ValueError(f"X holds images of shape {shape}, but image_shape={self.image_shape}")
            if not reset and shape != self.image_shape_:
                raise ValueError(f"X holds images of shape {shape}, but {name} is expecting "
                                 f"{self.image_shape_} ({self.n_features_in_} features)")
            if reset:
                self.n_features_in_, self.image_shape_, self.input_ndim_ = int(np.prod(shape)), shape, 4
        else:
            X = validate_data(self, X, reset=reset, dtype=FLOATS)
            if reset:
                shape = tuple(int(s) for s in self.image_shape) if self.image_shape else (1, 1, X.shape[1])
                if int(np.prod(shape)) != X.shape[1]:
                    raise ValueError(f"image_shape={self.image_shape} holds {int(np.prod(shape))} values, "
                                     f"but X has {X.shape[1]} features")
                self.image_shape_, self.input_ndim_ = shape, 2
        images = np.array(X, dtype=np.float32, order="C")  # a writable copy: torch shares its memory
        return X, images.reshape(len(images), *self.image_shape_)

    def fit(self, X, y=None):
        """Train on ``X`` (``y`` is ignored); returns ``self``."""
        cfg = self._config()
        _, x = self._validate(X, reset=True)
        data = Dataset("array", x, None, x[:0], None, None, (float(x.min()), float(x.max())))
        self.device_ = api.resolve_device(cfg.train.device)
        model = api.build(cfg, data, self.device_, warn=True)
        trainer = api.fit(model, cfg, data)
        self.model_, self.history_ = trainer.model.eval(), trainer.state.history
        self.status_ = trainer.state.status
        self.latent_dim_ = int(self._encode(x[:1]).shape[1])
        return self

    @torch.no_grad()
    def _encode(self, x: np.ndarray) -> np.ndarray:
        return self.model_.embed(torch.as_tensor(x, device=self.device_)).cpu().numpy()

    @torch.no_grad()
    def _decode(self, z: np.ndarray) -> np.ndarray:  # (N, C, H, W)
        z = torch.as_tensor(np.asarray(z, dtype=np.float32), device=self.device_)
        return self.model_.decode(z).cpu().numpy()

    def transform(self, X) -> np.ndarray:
        """Latent codes of ``X``, (N, latent_dim_) (the mean ``mu`` for a VAE)."""
        check_is_fitted(self, "model_")
        X, x = self._validate(X, reset=False)
        return self._encode(x).astype(X.dtype, copy=False)

    def inverse_transform(self, Z) -> np.ndarray:
        """Decode codes back to the layout ``X`` had when fitted: (N, n_features_in_),
        or (N, C, H, W) after a 4-D fit."""
        check_is_fitted(self, "model_")
        Z = check_array(Z, dtype=FLOATS, estimator=self, input_name="Z")
        if Z.shape[1] != self.latent_dim_:
            raise ValueError(f"Z has {Z.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.latent_dim_} latent features as input")
        out = self._decode(Z)
        out = out.reshape(len(out), -1) if self.input_ndim_ == 2 else out
        return out.astype(Z.dtype, copy=False)

    def score(self, X, y=None) -> float:
        """Negative reconstruction MSE (higher is better, as scikit-learn expects)."""
        check_is_fitted(self, "model_")
        _, x = self._validate(X, reset=False)
        recon = self._decode(self._encode(x))
        return -float(np.mean((recon.astype(np.float64) - x) ** 2))
