"""The virtual lab: a physics-based oracle for porous Si–C anode particles.

Implements ``shared/design/virtual-lab.md``: realisation of a design by its synthesis route
(section 2.2), closed-form physics E0-E40 (section 4) on numpy arrays or torch tensors,
scenarios (section 5), batch and measurement noise (section 6) and randomised instances
(section 7).

Entry points:

* :class:`VirtualLab` / :func:`measure`: DataFrames in and out (contract columns);
* :func:`simulate`: the array / tensor path (numpy or torch, differentiable);
* :func:`simulate_measurement`: the noisy array path (numpy);
* :func:`lab_params`, :func:`randomised_instance`, :data:`SCENARIOS`: parameters as data.

Importing this package does not import torch.
"""

from poreml.virtual_lab.lab import VirtualLab, measure
from poreml.virtual_lab.noise import BatchNoise, MeasurementNoise, simulate_measurement
from poreml.virtual_lab.params import (
    SCENARIOS,
    GlobalParams,
    LabParams,
    MaterialConstants,
    RouteTable,
    RouteWindows,
    Scenario,
    get_scenario,
    lab_params,
    randomised_instance,
)
from poreml.virtual_lab.physics import (
    CONTRACT_OUTPUTS,
    EXTRA_OUTPUTS,
    blend_at_swelling_cap,
    feasibility,
    simulate,
)
from poreml.virtual_lab.reference import reference_designs

__all__ = [
    "CONTRACT_OUTPUTS",
    "EXTRA_OUTPUTS",
    "SCENARIOS",
    "BatchNoise",
    "GlobalParams",
    "LabParams",
    "MaterialConstants",
    "MeasurementNoise",
    "RouteTable",
    "RouteWindows",
    "Scenario",
    "VirtualLab",
    "blend_at_swelling_cap",
    "feasibility",
    "get_scenario",
    "lab_params",
    "measure",
    "randomised_instance",
    "reference_designs",
    "simulate",
    "simulate_measurement",
]
