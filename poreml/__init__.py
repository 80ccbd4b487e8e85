"""poreml: design porous Si–C anode particles with data, surrogates and Bayesian optimisation.

Importing the package is cheap and has no side effects: heavy dependencies (torch, BoTorch,
MLflow, FastAPI) are imported only by the stages that need them.
"""

__version__ = "0.1.0"
