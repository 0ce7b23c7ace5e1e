"""The float baseline every fleet accuracy is reported next to (`rocknet simulate`,
`rocknet bench accuracy`, `rocknet sweep`): aeon's MiniRocket (``n_features`` float features,
10,000 by default) + StandardScaler(with_mean=False) + RidgeClassifierCV(alphas=logspace(-3, 3,
10)), ``random_state`` = seed."""

from __future__ import annotations

import numpy as np

from ..data import Dataset


def reference_accuracy(ds: Dataset, seed: int = 0, n_features: int = 10_000) -> float:
    """Test accuracy of the aeon MiniRocket + RidgeClassifierCV baseline on ``ds``."""
    from aeon.transformations.collection.convolution_based import MiniRocket
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    mr = MiniRocket(n_kernels=n_features, random_state=seed, n_jobs=1)
    Ftr = mr.fit_transform(ds.X_train[:, None, :])
    Fte = mr.transform(ds.X_test[:, None, :])
    clf = make_pipeline(StandardScaler(with_mean=False),
                        RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
    clf.fit(Ftr, ds.y_train)
    return float(clf.score(Fte, ds.y_test))
