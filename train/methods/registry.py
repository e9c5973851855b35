"""Method names -> implementing classes ("module:Class"), imported lazily.

Names are a shared contract: ``synthetic_contrast`` (She & Xu, 2021), ``dsc`` (Dense
Semantic Contrast), ``simclr``, ``mocov2``, ``densecl``.
"""

from __future__ import annotations

import importlib

from synthssl.train.methods.base import Method

METHODS: dict[str, str] = {
    "synthetic_contrast": "synthssl.train.methods.synthetic_contrast:SyntheticContrast",
    "dsc": "synthssl.train.methods.dsc:DSC",
    "simclr": "synthssl.train.methods.simclr:SimCLR",
    "mocov2": "synthssl.train.methods.mocov2:MoCoV2",
    "densecl": "synthssl.train.methods.densecl:DenseCL",
}


def method_class(name: str) -> type[Method]:
    """The Method subclass registered under `name` (ValueError naming the choices)."""
    if name not in METHODS:
        raise ValueError(f"method.name: unknown method {name!r}; choose one of {sorted(METHODS)}")
    module_name, class_name = METHODS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"method.name: method {name!r} is registered as {METHODS[name]} but its module cannot be imported ({exc})"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None or not (isinstance(cls, type) and issubclass(cls, Method)):
        raise ValueError(f"method.name: {METHODS[name]} is not a Method subclass")
    return cls
