"""poreml.surrogates stage: property models with honest uncertainty.

Every model follows the scikit-learn estimator API on contract DataFrames and shares one base
class (:mod:`poreml.surrogates.base`: validation, fit/predict, persistence) built on the feature
encoding (:mod:`.features`), target scaling (:mod:`.scaling`) and domain of applicability
(:mod:`.domain`). Models are built by name from the registry::

    from poreml.surrogates import available, make

    available()  # ['ensemble', 'gp', 'mean', 'ridge', 'trees']
    model = make("gp").fit(X, y)
    mean, std = model.predict(X_new, return_std=True)

and reach BoTorch through one adapter,
:class:`poreml.surrogates.botorch_adapter.SurrogateModel`.
"""

from poreml.surrogates.base import TARGETS, Surrogate
from poreml.surrogates.features import DESCRIPTOR_COLUMNS, FEATURE_SETS
from poreml.surrogates.registry import available, get, load, make, register

__all__ = [
    "DESCRIPTOR_COLUMNS",
    "FEATURE_SETS",
    "TARGETS",
    "Surrogate",
    "available",
    "get",
    "load",
    "make",
    "register",
]
