"""One Keras optimizer per module of a model: compile, the names the resume backup uses, and the
compile config a saved model carries.

A Keras 3 optimizer is built on one set of variables, so a model whose modules learn from
separate losses (PermaKey's VAE, LSPNs and PointNet) needs one optimizer per module.
:class:`ModuleOptimizers` is the mixin that owns them. Contract for the class that mixes it in
(before ``keras.Model`` in its bases):

  * ``optimized_modules``: the module names, e.g. ``("vae", "lsp", "pointnet")``; module ``m``'s
    optimizer is the attribute ``m_optimizer`` (None until compile);
  * ``module_variables()`` -> ``{module: [trainable variables]}``;
  * ``default_optimizer(name)`` -> a new optimizer for a module that compile got none for.

``compile`` wraps each optimizer in a ``LossScaleOptimizer`` under ``mixed_float16``, refuses
Keras' single ``optimizer``/``loss``/``metrics`` arguments and one optimizer instance for two
modules, and builds every optimizer on its module's variables; ``get_compile_config`` /
``compile_from_config`` round-trip the optimizers with a saved model.

:func:`zero_slots_of` resets what an optimizer keeps for some of its variables (a module that
restarts inside a model trained by one optimizer).
"""

from __future__ import annotations

import keras

# keras.Model.compile options a saved model keeps besides the optimizers.
KEPT_COMPILE_OPTIONS = ("jit_compile", "steps_per_execution", "run_eagerly")
REFUSED_COMPILE_ARGUMENTS = ("optimizer", "loss", "metrics", "loss_weights", "weighted_metrics")


class ModuleOptimizers:
    """Mixin: one optimizer per name in ``optimized_modules`` (module docstring)."""

    optimized_modules: tuple[str, ...] = ()

    def _module_optimizer(self, module: str):
        return getattr(self, f"{module}_optimizer")

    def named_optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """The module optimizers (after compile), by the names the resume backup uses."""
        named = {f"{module}_optimizer": self._module_optimizer(module) for module in self.optimized_modules}
        return {name: optimizer for name, optimizer in sorted(named.items()) if optimizer is not None}

    def compile(self, **kwargs):
        """Sets one optimizer per module (``<module>_optimizer=...``; None or absent =
        ``default_optimizer``) and Keras options.

        The other ``kwargs`` go to ``keras.Model.compile`` (jit_compile, steps_per_execution,
        run_eagerly); ``optimizer``/``loss``/``metrics`` are not accepted: the model owns its
        losses.
        """
        model = type(self).__name__
        names = [f"{module}_optimizer" for module in self.optimized_modules]
        for key in REFUSED_COMPILE_ARGUMENTS:
            if key in kwargs:
                raise ValueError(
                    f"{model}.compile does not take {key!r}: pass {', '.join(names)} "
                    "(the model computes its own losses and metrics)"
                )
        mixed_float16 = keras.mixed_precision.dtype_policy().name == "mixed_float16" or (
            self.dtype_policy.name == "mixed_float16"
        )
        optimizers = {}
        for module, name in zip(self.optimized_modules, names):
            optimizer = kwargs.pop(name, None)
            optimizer = keras.optimizers.get(optimizer) if optimizer is not None else None
            optimizer = optimizer or self.default_optimizer(name)
            if mixed_float16 and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=f"{name}_loss_scale")
            optimizers[module] = optimizer
        if len({id(o) for o in optimizers.values()}) != len(optimizers):
            raise ValueError(
                f"{model} needs {len(optimizers)} distinct optimizers (a Keras 3 optimizer cannot "
                "serve disjoint variable sets); create one instance per module"
            )
        for module, optimizer in optimizers.items():
            setattr(self, f"{module}_optimizer", optimizer)
        # A real optimizer for callbacks that read model.optimizer (the first module's).
        super().compile(optimizer=optimizers[self.optimized_modules[0]], **kwargs)
        self._module_compile_kwargs = dict(kwargs)
        variables = self.module_variables()
        for module, optimizer in optimizers.items():
            optimizer.build(variables[module])

    def get_compile_config(self):
        if not self.compiled or self._module_optimizer(self.optimized_modules[0]) is None:
            return {}
        config = {
            f"{module}_optimizer": keras.saving.serialize_keras_object(self._module_optimizer(module))
            for module in self.optimized_modules
        }
        for key in KEPT_COMPILE_OPTIONS:
            if key in self._module_compile_kwargs:
                config[key] = self._module_compile_kwargs[key]
        return config

    def compile_from_config(self, config):
        config = dict(config)
        for module in self.optimized_modules:
            key = f"{module}_optimizer"
            config[key] = keras.saving.deserialize_keras_object(config[key])
        self.compile(**config)  # builds each optimizer on its module's variables


def zero_slots_of(optimizer: keras.optimizers.Optimizer, variables) -> int:
    """Sets to zero every slot (Adam's moments, ...) that ``optimizer`` keeps for ``variables``;
    its step count and the slots of other variables are untouched. Keras 3 names a slot
    ``<variable path with '/' -> '_'>_<slot>``. Returns how many slots were zeroed."""
    prefixes = tuple(variable.path.replace("/", "_") + "_" for variable in variables)
    zeroed = 0
    for slot in optimizer.variables:
        if slot.name.startswith(prefixes):
            slot.assign(keras.ops.zeros_like(slot))
            zeroed += 1
    return zeroed
