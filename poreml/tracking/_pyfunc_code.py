"""MLflow models-from-code entry: builds the poreml surrogate pyfunc when MLflow loads it.

MLflow copies this file into a logged model and executes it at load time; poreml never imports
it. See :mod:`poreml.tracking.pyfunc`.
"""

from mlflow.models import set_model

from poreml.tracking.pyfunc import SurrogatePyfunc

set_model(SurrogatePyfunc())
