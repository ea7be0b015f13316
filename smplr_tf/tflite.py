"""TFLite: convert a traced function to a float32 TFLite model and run it (CPU inference with XNNPACK).

TensorFlow's own CPU inference runtime. On the 2-core development CPU it runs the point stages 2-8x faster
than ``tf.function`` (with or without XLA) at batch 1, where TF's matrix-vector product is slow (BUILD_NOTES,
"Inference on a CPU"), and takes 25-35 % less time for the DAE at batch 256. Conversion uses built-in ops only and no
quantisation or other optimisation, so the model computes the same float32 maths (differences are summation
order, ~1e-6 m on the SMPLR mesh).

    blob = convert(fn, [tf.TensorSpec((1, 41, 3), tf.float32, name="points")])
    run = Runner(blob)              # or Runner("model.tflite")
    out = run(points=array)         # dict name -> np.ndarray

Shapes are fixed at conversion (batch included): a call with other shapes raises :class:`TFLiteError`.
The interpreter comes from ``ai_edge_litert`` when installed, else from ``tf.lite`` (deprecated there but
present in the pinned TensorFlow).
"""

from __future__ import annotations

import os
import tempfile
import warnings

import numpy as np


class TFLiteError(RuntimeError):
    pass


def interpreter_class():
    """The TFLite ``Interpreter`` class: ``ai_edge_litert``'s if installed, else ``tf.lite.Interpreter``."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-not-found]

        return Interpreter
    except ImportError:
        pass
    import tensorflow as tf

    interp = getattr(getattr(tf, "lite", None), "Interpreter", None)
    if interp is None:
        raise TFLiteError("no TFLite interpreter: this TensorFlow has no tf.lite.Interpreter; "
                          "pip install ai-edge-litert")
    return interp


def convert(fn, input_specs, signature_key: str = "serving_default") -> bytes:
    """Trace ``fn(*inputs)`` at the given fixed-shape specs and convert it (float32, built-in ops only).

    fn: a Python callable returning a dict of tensors (its keys are the output names) or one tensor (named
    ``output_0``); input_specs: list of ``tf.TensorSpec`` with names (the runner's keyword names), fixed
    shapes. Returns the flatbuffer bytes.
    """
    import tensorflow as tf

    for s in input_specs:
        if not s.name:
            raise ValueError("convert: every input TensorSpec needs a name")
        if not s.shape.is_fully_defined():
            raise ValueError(f"convert: input {s.name!r} needs a fixed shape, got {s.shape}")
    traced = tf.function(fn, input_signature=list(input_specs), autograph=False)
    concrete = traced.get_concrete_function()
    module = tf.Module()
    module.f = traced
    module.captured = list(concrete.variables)  # every variable the function reads must be tracked to be saved
    # Through a temporary SavedModel: the converter keeps its signature (named inputs and outputs), which
    # from_concrete_functions does not.
    with tempfile.TemporaryDirectory(prefix="smplr_tflite_") as tmp:
        tf.saved_model.save(module, tmp, signatures={signature_key: concrete})
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[signature_key])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        try:
            return converter.convert()
        except Exception as e:  # the converter raises its own ConverterError naming the failing op
            raise TFLiteError(f"TFLite conversion failed: {type(e).__name__}: {str(e)[:1000]}") from e


class Runner:
    """Run a TFLite model: ``Runner(blob_or_path, num_threads=None)(**inputs) -> {name: np.ndarray}``.

    num_threads: default all CPUs this process may use. Inputs the converted model does not read (pruned by the
    converter) are ignored. The outputs are copies (safe to keep across calls).
    """

    def __init__(self, model, num_threads: int | None = None, signature_key: str = "serving_default"):
        if num_threads is None:
            num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        kwargs = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {
            "model_path": os.fspath(model)}
        if "model_path" in kwargs and not os.path.isfile(kwargs["model_path"]):
            raise TFLiteError(f"no TFLite model at {kwargs['model_path']}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self.interpreter = interpreter_class()(num_threads=int(num_threads), **kwargs)
        sigs = self.interpreter.get_signature_list()
        if signature_key not in sigs:
            raise TFLiteError(f"TFLite model has no signature {signature_key!r} (has {sorted(sigs)})")
        self._runner = self.interpreter.get_signature_runner(signature_key)
        details = self._runner.get_input_details()
        self.input_specs = {k: (tuple(int(n) for n in d["shape"]), np.dtype(d["dtype"])) for k, d in details.items()}
        self.output_names = sorted(self._runner.get_output_details())
        self.num_threads = int(num_threads)

    def __call__(self, **inputs) -> dict:
        missing = sorted(set(self.input_specs) - set(inputs))
        if missing:
            raise TFLiteError(f"TFLite model needs inputs {missing}")
        feed = {}
        for name, (shape, dtype) in self.input_specs.items():
            a = np.asarray(inputs[name])
            if a.shape != shape:
                raise TFLiteError(f"TFLite input {name!r}: shape {a.shape}, the model was converted for {shape}")
            feed[name] = a.astype(dtype, copy=False)
        out = self._runner(**feed)
        return {k: np.array(v) for k, v in out.items()}
