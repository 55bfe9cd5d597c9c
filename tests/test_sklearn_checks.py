"""AutoencoderTransformer against scikit-learn's own estimator checks (all of
them, none expected to fail) plus its behaviour in ordinary use."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.utils import estimator_checks as ec
from sklearn.utils.estimator_checks import parametrize_with_checks

from aelab.sklearn import AutoencoderTransformer

TINY = dict(encoder=(8,), latent_dim=2, epochs=2, batch_size=64, device="cpu")
ESTIMATORS = [AutoencoderTransformer(kind="ae", **TINY), AutoencoderTransformer(kind="vae", **TINY)]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input(array_namespace="numpy") skips itself unless
    # SCIPY_ARRAY_API is set; it feeds plain NumPy arrays, so run it.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


# checks scikit-learn runs on its own transformers but parametrize_with_checks
# does not yield: feature names in and out, set_output.  The set_output
# checks mix DataFrame and array inputs on purpose, so the feature-name
# warnings they trigger are expected (PCA gives the same ones).
EXTRA_CHECKS = ["check_transformer_get_feature_names_out", "check_transformer_get_feature_names_out_pandas",
                "check_dataframe_column_names_consistency", "check_set_output_transform",
                "check_set_output_transform_pandas", "check_global_output_transform_pandas"]


@pytest.mark.filterwarnings("ignore:X (has|does not have valid) feature names:UserWarning")
@pytest.mark.parametrize("check", EXTRA_CHECKS)
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=["ae", "vae"])
def test_sklearn_feature_name_checks(estimator, check):
    getattr(ec, check)(type(estimator).__name__, estimator)


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x[:400] / 16.0), y[:400]


def test_transform_shape_and_dtype(digits):
    x, _ = digits
    est = AutoencoderTransformer(**TINY).fit(x)
    assert est.n_features_in_ == 64 and est.latent_dim_ == 2
    codes = est.transform(x)
    assert codes.shape == (400, 2) and codes.dtype == np.float64
    assert est.transform(x.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(est.transform(x.tolist()), codes)  # lists work too
    assert list(est.get_feature_names_out()) == ["autoencodertransformer0", "autoencodertransformer1"]


def test_inverse_transform_layout(digits):
    x, _ = digits
    flat = AutoencoderTransformer(**TINY).fit(x)
    assert flat.inverse_transform(flat.transform(x)).shape == (400, 64)
    shaped = AutoencoderTransformer(**TINY, image_shape=(1, 8, 8)).fit(x)
    assert shaped.image_shape_ == (1, 8, 8)
    assert shaped.inverse_transform(shaped.transform(x)).shape == (400, 64)
    images = x.reshape(-1, 1, 8, 8)
    nd = AutoencoderTransformer(**TINY).fit(images)
    assert nd.n_features_in_ == 64 and nd.input_ndim_ == 4
    np.testing.assert_allclose(nd.transform(x), nd.transform(images))  # flat rows are accepted too
    assert nd.inverse_transform(nd.transform(images)).shape == (400, 1, 8, 8)


def test_pipeline_with_logistic_regression(digits):
    x, y = digits
    pipe = make_pipeline(AutoencoderTransformer(encoder=(32,), latent_dim=8, epochs=30, batch_size=64,
                                                lr=0.01, device="cpu"),
                         LogisticRegression(max_iter=500))
    pipe.fit(x, y)
    assert pipe.predict(x).shape == (400,)
    assert pipe.score(x, y) > 0.5  # 10 classes: chance is 0.1


def test_feature_count_mismatch_names_expected_count(digits):
    x, _ = digits
    est = AutoencoderTransformer(**TINY).fit(x)
    for method in (est.transform, est.score):
        with pytest.raises(ValueError, match="X has 63 features, but AutoencoderTransformer is expecting 64"):
            method(x[:, :-1])
    with pytest.raises(ValueError, match="expecting 2 latent features"):
        est.inverse_transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"expecting \(1, 1, 64\)"):
        est.transform(x.reshape(-1, 1, 8, 8))
    with pytest.raises(ValueError, match="image_shape=.*holds 49 values, but X has 64 features"):
        AutoencoderTransformer(**TINY, image_shape=(1, 7, 7)).fit(x)


def test_deterministic_clone_and_pickle(digits):
    x, _ = digits
    est = AutoencoderTransformer(kind="vae", **TINY).fit(x)
    codes = est.transform(x)
    np.testing.assert_array_equal(clone(est).fit(x).transform(x), codes)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(est)).transform(x), codes)
    assert est.score(x) < 0
