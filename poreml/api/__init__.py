"""The HTTP prediction and screening API (CONTRACT.md §4), served by ``poreml serve``.

* :func:`create_app` (:mod:`.app`): the FastAPI application factory;
* :mod:`.schemas`: request and response models generated from the data contract;
* :mod:`.service`: model loading, prediction and screening without HTTP;
* :mod:`.ranking`: Pareto ranks and feasibility probabilities;
* :mod:`.errors`, :mod:`.security`: JSON error answers and the optional bearer token.

FastAPI is imported only inside this package; nothing outside it imports the package.
"""

from poreml.api.app import create_app

__all__ = ["create_app"]
