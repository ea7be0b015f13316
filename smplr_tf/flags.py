"""The one absl flag definition module shared by every entry point (train, evaluate, infer, reproduce).

Flags are grouped in sections. Each section is a function ``define_<name>_flags(fv)`` registered with
:func:`section`; registration defines the section's flags on the global ``absl.flags.FLAGS`` and on every
other :class:`absl.flags.FlagValues` made by :func:`new_flag_values` (used by :mod:`smplr_tf.runs` to read a
run's ``flags.txt`` without touching the process's own flags). Every experiment is a flagfile
(``flags/table1/shn.cfg`` ...), never a code edit.

Sections: run, data, optimisation, losses, stage inputs, model sizes, logging -- then the "evaluation"
section at the end of this file (owned by helper F).
"""

from __future__ import annotations

import os
import sys

from absl import flags

FLAGS = flags.FLAGS

STAGES = ("shn", "shn2d", "alexnet", "dae", "smplr_shape", "smplr_pose", "e2e")

_SECTIONS: list = []
_FLAG_VALUES: list = [FLAGS]  # FlagValues objects that hold every registered section


# Values that flags added after the first runs had before they existed: a run's flags.txt that lacks one of
# these names was trained with this value (applied by smplr_tf.runs.parse_flags_text), so that an old run
# rebuilds and resumes as it was trained even where the flag's default has since changed.
LEGACY_FLAG_VALUES: dict = {
    "noise_table": "tree_depth",
    "val_noise": True,
    "hg_stem": "newell",
    "hg_bn_scale": True,
    "hg_init": "glorot_uniform",
    "hg_conv_bias": True,
    "heatmap_targets": "gaussian",
    "mlp_bias_init": "zeros",
}


def section(fn):
    """Register a flag section ``fn(fv)`` and define it on every known FlagValues (order-independent)."""
    _SECTIONS.append(fn)
    for fv in _FLAG_VALUES:
        fn(fv)
    return fn


def new_flag_values() -> flags.FlagValues:
    """A fresh FlagValues holding every section's flags with their defaults (not parsed)."""
    fv = flags.FlagValues()
    for fn in _SECTIONS:
        fn(fv)
    _FLAG_VALUES.append(fv)
    return fv


def section_flag_names() -> list[str]:
    """Names of the flags defined by this module's sections (what a run's flags.txt records)."""
    fv = flags.FlagValues()
    for fn in _SECTIONS:
        fn(fv)
    return sorted(fv)


# ============================================================================================ run
@section
def define_run_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_enum("stage", None, STAGES, "What to train (see smplr_tf/train.py).", **d)
    flags.DEFINE_string("run_dir", "", "Run directory. Empty: <runs_root>/<run_name>, run_name defaulting to "
                        "the stage.", **d)
    flags.DEFINE_string("runs_root", "runs", "Root of the run directories (tensorboard --logdir <runs_root>).", **d)
    flags.DEFINE_string("run_name", "", "Run name below runs_root, e.g. table1/shn (flagfiles set it).", **d)
    flags.DEFINE_boolean("overwrite", False, "Start again in a run_dir that holds a finished run (deletes it).", **d)
    flags.DEFINE_integer("seed", 0, "Random seed (weights, data order, noise). -1: no seeding.", **d)
    flags.DEFINE_boolean("deterministic", True, "With a seed: enable TF op determinism (repeatable CPU runs).", **d)
    flags.DEFINE_enum("distribution", "none", ["none", "mirrored", "multi_worker"],
                      "tf.distribute strategy. multi_worker reads the cluster from TF_CONFIG.", **d)
    flags.DEFINE_boolean("sync_batch_norm", True, "With a distribution strategy: batch-norm statistics over the global "
                         "batch (all replicas and workers), so every worker holds the same moving averages.", **d)
    flags.DEFINE_boolean("mixed_precision", False, "Keras mixed_float16 policy (GPU).", **d)
    flags.DEFINE_boolean("xla", False, "jit_compile the train/test steps with XLA.", **d)
    flags.DEFINE_integer("verbose", 2, "model.fit verbosity (0 silent, 1 progress bar, 2 one line per epoch).", **d)
    flags.DEFINE_string("log_example_ids", "", "Debug: a file to which every train step appends a fingerprint "
                        "of each example it consumed (used by the scale-out test).", **d)


# ============================================================================================ data
@section
def define_data_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_string("data_dir", "", "TFRecords directory (tfrecords_tools/make_synthetic.py or convert_*). "
                        "Point stages (dae, smplr_*) sample SMPL parameters when empty.", **d)
    flags.DEFINE_string("train_split", "train", "Split trained on.", **d)
    flags.DEFINE_string("val_split", "val", "Split validated on.", **d)
    flags.DEFINE_string("smpl_dir", "", "Official SMPL model files; empty: the package's free body model "
                        "(convert_*: empty = no body model, so no landmarks; convert_up3d needs it).", **d)
    flags.DEFINE_list("genders", ["female", "male"], "Body models of the SMPL layer (index = schema gender).", **d)
    flags.DEFINE_string("background_dir", "", "Images for background swap augmentation (e.g. VOC without people).", **d)
    flags.DEFINE_string("occluder_dir", "", "Images for occlusion augmentation.", **d)
    flags.DEFINE_boolean("augment", False, "Hourglass data augmentation (SHN^final).", **d)
    flags.DEFINE_integer("num_train_samples", 100000, "Point stages without data_dir: sampled examples per "
                         "training epoch pass.", **d)
    flags.DEFINE_enum("point_data", "records", ["records", "sampled"], "Point stages (dae, smplr_*): SMPL parameters "
                      "from the records of --data_dir, or sampled by the synthetic generator's pose sampler "
                      "(--num_train_samples / --num_val_samples; also what an empty --data_dir means).", **d)
    flags.DEFINE_boolean("cache_points", True, "Point stages: compute the clean points once and keep them in memory "
                         "(noise is still drawn per batch). Off for data sets larger than memory.", **d)
    flags.DEFINE_boolean("cache_images", False, "Image stages without --augment: keep the decoded training examples "
                         "and their targets in memory after the first epoch (~0.7 MB each at 64 px / 16^3 x 41, "
                         "11.5 MB at full size: small sets only). Saves the decoding that otherwise contends with "
                         "training for the CPU.", **d)
    flags.DEFINE_integer("num_val_samples", 2000, "Point stages without data_dir: sampled validation examples.", **d)


# ============================================================================================ optimisation
@section
def define_optim_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_integer("epochs", 100, "Epochs.", **d)
    flags.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch (0: one pass over the training split).", **d)
    flags.DEFINE_integer("validation_steps", 0, "Validation steps per epoch (0: the whole split).", **d)
    flags.DEFINE_integer("batch_size", 256, "Global batch size (split over replicas).", **d)
    flags.DEFINE_integer("val_batch_size", 0, "Validation batch size (0: batch_size).", **d)
    flags.DEFINE_float("lr", 1e-3, "Adam learning rate (constant schedule) or lr0 of the sigmoid decay. The paper: "
                       "0.01 for the hourglass, 0.001 for DAE / Psi / Omega; the authors' code: 0.01 for all.", **d)
    flags.DEFINE_enum("lr_schedule", "constant", ["constant", "sigmoid", "cosine"],
                      "constant: lr. sigmoid (authors' code, a decay): lr * sigmoid(lr_offset - epoch / lr_epochs) "
                      "+ lr_floor, epoch fractional (per step). cosine (not in the paper; short runs such as "
                      "flags/quick): cosine decay from lr to lr_floor over epochs * steps_per_epoch.", **d)
    flags.DEFINE_float("lr_floor", 1e-4, "Additive floor of the sigmoid schedule; end value of the cosine one.", **d)
    flags.DEFINE_float("lr_epochs", 12.5, "Time constant (epochs) of the sigmoid schedule.", **d)
    flags.DEFINE_float("lr_offset", 4.0, "c of the sigmoid schedule: 4 for DAE / Psi / Omega, 10 for the hourglass "
                       "(the authors' code).", **d)
    flags.DEFINE_float("clipnorm", 0.0, "Gradient norm clipping (0: none).", **d)
    flags.DEFINE_float("bn_momentum", 0.0, "If > 0: momentum of every BatchNormalization moving average (Keras "
                       "default 0.99 needs many hundred steps before validation is meaningful; short runs use 0.9).",
                       **d)
    flags.DEFINE_string("init_from", "", "Initialise the stage's network from this run's final (or latest) "
                        "weights before training.", **d)


# ============================================================================================ losses
@section
def define_loss_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_enum("heatmap_loss", "softmax", ["softmax", "sigmoid", "mse"],
                      "Volumetric heatmap loss: softmax CE over the volume (paper), sigmoid CE (authors' code), "
                      "MSE. shn2d always uses MSE.", **d)
    flags.DEFINE_enum("heatmap_targets", "auto", ["auto", "gaussian", "code"],
                      "Volumetric heatmap targets: gaussian (peak-1 Gaussians; Gaussian of the distance to the limb "
                      "for limbs), code (the authors': the normal density, peak ~0.0635; per bone "
                      "softmax_volume(1 / (1 + d^2)), max over the limb's bones). auto: code with "
                      "--heatmap_loss=sigmoid, gaussian otherwise.", **d)
    flags.DEFINE_float("points_loss_weight", 0.0, "shn: weight of an extra L1 (metres) on the soft-argmax points "
                       "(integral regression); 0 = the paper's heatmap loss only.", **d)
    flags.DEFINE_boolean("smpl_loss", False, "SMPLR stages: add L_SMPL (L1 on SMPL joints and landmarks).", **d)
    flags.DEFINE_float("smpl_loss_weight", 1.0, "Weight of L_SMPL.", **d)
    flags.DEFINE_float("beta_reg", 0.01, "Weight of the |beta| regulariser of L_beta.", **d)
    flags.DEFINE_enum("beta_reg_outputs", "betas", ["betas", "all"], "What the L_beta regulariser penalises: the "
                      "10 predicted betas, or all 11 Psi outputs, the gender code included (the authors' code).", **d)
    flags.DEFINE_float("gender_loss_weight", 1.0, "Weight of the L1 on the gender code (+-1) in L_beta.", **d)
    flags.DEFINE_float("dae_bone_loss", 0.0, "DAE: weight of an extra L1 on bone lengths (paper: no effect).", **d)
    flags.DEFINE_float("e2e_shn_weight", 1e-5, "e2e: the balance w (~1e-5 in the paper) between the hourglass heatmap "
                       "loss and the DAE / SMPL point losses; see --e2e_balance.", **d)
    flags.DEFINE_enum("e2e_balance", "shn", ["shn", "smplr"], "e2e: where the balance w goes: shn: w * L_heatmaps "
                      "+ L_points (with the softmax CE, the larger term scaled down); smplr: L_heatmaps + w * "
                      "L_points (the paper's reasoning: the hourglass loss is the small one, as with the sigmoid "
                      "CE).", **d)


# ============================================================================================ stage inputs
@section
def define_input_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_enum("dae_input", "noise", ["noise", "gt", "depth0", "run"],
                      "Input of dae / smplr stages: ground truth + uniform noise, ground truth, ground truth with "
                      "depth 0 (2D lifting), or the predictions of --input_run.", **d)
    flags.DEFINE_float("noise_scale", 1.0, "Multiplier of the per-point noise bounds (5-91 mm).", **d)
    flags.DEFINE_enum("noise_table", "authors", ["authors", "tree_depth"],
                      "Bounds of the uniform input noise (--dae_input=noise / depth0): the authors' per-point, "
                      "per-coordinate table (depth about twice x and y), or our earlier isotropic guess growing "
                      "with the point's depth in the tree.", **d)
    flags.DEFINE_boolean("val_noise", True, "Point stages: draw the input noise at validation too (the authors' "
                         "code does; the validation loss is then noisy). --noval_noise validates on clean "
                         "points.", **d)
    flags.DEFINE_string("input_run", "", "Run (shn or alexnet) whose predictions feed dae / smplr stages.", **d)
    flags.DEFINE_boolean("input_depth0", False, "With --input_run: set the predictions' depth to 0 (DAE^2d).", **d)
    flags.DEFINE_string("shn_run", "", "e2e: the trained hourglass run.", **d)
    flags.DEFINE_string("dae_run", "", "e2e: the trained DAE run.", **d)
    flags.DEFINE_string("psi_run", "", "e2e: the trained Psi (smplr_shape) run.", **d)
    flags.DEFINE_string("omega_run", "", "e2e: the trained Omega (smplr_pose) run.", **d)


# ============================================================================================ model sizes
@section
def define_model_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_integer("input_size", 256, "Image crop size fed to the CNNs.", **d)
    flags.DEFINE_integer("heatmap_size", 64, "Heatmap side (input_size / 4 for the hourglass).", **d)
    flags.DEFINE_integer("depth_bins", 16, "Depth bins of the volumetric heatmaps.", **d)
    flags.DEFINE_enum("num_points", "41", ["41", "23"], "41 = joints + landmarks (SHN), 23 = joints only "
                      "(SHN_nL, AlexNet).", **d)
    flags.DEFINE_boolean("limbs", False, "Add the 4 limb heatmaps (SHN^final).", **d)
    flags.DEFINE_integer("hg_stacks", 5, "Hourglass stacks.", **d)
    flags.DEFINE_integer("hg_features", 256, "Hourglass features.", **d)
    flags.DEFINE_integer("hg_downsamplings", 4, "Max-pool levels per hourglass (4: 64 -> 4, the authors' code and "
                         "Newell's).", **d)
    flags.DEFINE_enum("hg_stem", "code", ["code", "newell"], "Hourglass stem: the authors' code (pad 2, 6x6 "
                      "stride-2 conv without norm) or Newell's (7x7 stride-2 conv + BN + ReLU); then residual, "
                      "pool, residual, residual in both.", **d)
    flags.DEFINE_boolean("hg_bn_scale", False, "Hourglass batch norms with a learned scale (gamma); the authors' "
                         "code has none.", **d)
    flags.DEFINE_enum("hg_init", "glorot_normal", ["glorot_normal", "glorot_uniform"], "Hourglass convolution "
                      "kernels' initialiser (Xavier; normal in the authors' code).", **d)
    flags.DEFINE_boolean("hg_conv_bias", False, "Hourglass convolutions not followed by a batch norm get a bias "
                         "(the authors' code: no biases).", **d)
    flags.DEFINE_float("hg_dropout", 0.1, "Hourglass dropout rate.", **d)
    flags.DEFINE_float("alexnet_width", 1.0, "AlexNet width multiplier (1 = the original channel counts).", **d)
    flags.DEFINE_integer("alexnet_fc", 4096, "AlexNet fully connected width.", **d)
    flags.DEFINE_float("alexnet_dropout", 0.5, "AlexNet dropout rate after each fully connected layer (0.5 = "
                       "Krizhevsky et al.).",
                       lower_bound=0.0, upper_bound=0.99, **d)
    flags.DEFINE_integer("dae_hidden", 1024, "DAE hidden width.", **d)
    flags.DEFINE_integer("dae_bottleneck", 512, "DAE bottleneck width.", **d)
    flags.DEFINE_float("dae_keep_prob", 0.8, "DAE dropout keep probability.", **d)
    flags.DEFINE_boolean("dae_zero_init", True, "Initialise the DAE's last (correction) layer to zero: the "
                         "untrained DAE is the identity (the paper: Xavier everywhere).", **d)
    flags.DEFINE_enum("mlp_bias_init", "glorot_uniform", ["glorot_uniform", "zeros"], "DAE / Psi / Omega: initial "
                      "biases of the linear output layers (the authors' code: Glorot-uniform, like the kernels).",
                      **d)
    flags.DEFINE_list("smplr_trunk", ["1024", "1024", "512", "512", "512"], "Psi / Omega trunk widths.", **d)
    flags.DEFINE_integer("smplr_head", 256, "Psi / Omega head width.", **d)


# ============================================================================================ logging
@section
def define_logging_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_integer("tb_images", 4, "Validation crops drawn to TensorBoard per epoch (image stages).", **d)
    flags.DEFINE_boolean("tb_hparams", True, "Write the run to TensorBoard's hparams table.", **d)
    flags.DEFINE_integer("baseline_batches", 20, "Training batches averaged for the mean-pose baseline.", **d)
    flags.DEFINE_integer("checkpoint_every", 1, "Epochs between checkpoints/ saves.", **d)


# ============================================================================================
# ======================= evaluation section (owned by helper F) ============================
# Add the evaluation flags below as a registered section, e.g.
#
#   @section
#   def define_evaluation_flags(fv):
#       flags.DEFINE_string("data", "", "...", flag_values=fv)
#
# Registration order does not matter (see `section`). Keep everything above this banner as it is.
# ============================================================================================


def define_evaluation_flags(fv):
    """Flags of evaluate / reproduce / infer / export (helper F).

    Defined on the process's FLAGS only, deliberately NOT as a registered ``section``: they describe how a
    run is evaluated or used, not how it was trained, so they stay out of the runs' flags.txt (and out of the
    resume comparison). --run_dir, --shn_run, --dae_run, --psi_run, --omega_run and --smpl_dir are the
    training sections' flags, reused with the same meaning.
    """
    d = dict(flag_values=fv)
    flags.DEFINE_string("data", "", "evaluate: TFRecords directory to evaluate on (default: the run's --data_dir).",
                        **d)
    flags.DEFINE_string("eval_split", "val", "evaluate: split of --data evaluated.", **d)
    flags.DEFINE_integer("eval_batch_size", 16, "evaluate: batch size.", **d)
    flags.DEFINE_integer("max_examples", 0, "evaluate: evaluate at most this many examples (0: all). convert_*: stop "
                         "after this many examples.", **d)
    flags.DEFINE_enum("eval_input", "auto", ["auto", "gt", "noise", "depth0", "run"],
                      "evaluate dae / smplr_* runs: their input points. auto: what the run trained on "
                      "(--dae_input / --input_run of its flags.txt); gt; gt + uniform noise; gt with depth 0; "
                      "the predictions of --eval_input_run.", **d)
    flags.DEFINE_string("eval_input_run", "", "evaluate: the shn / alexnet / dae run whose predictions feed "
                        "the evaluated run (--eval_input=run; auto uses the run's --input_run).", **d)
    flags.DEFINE_string("output_dir", "", "evaluate: where metrics.json goes for a pipeline (--shn_run ... "
                        "--omega_run) evaluation; infer: where the outputs go.", **d)
    flags.DEFINE_string("eval_tag", "", "evaluate: also write metrics-<tag>.json (e.g. one per data set).", **d)
    flags.DEFINE_boolean("eval_iou", True, "evaluate: silhouette IoU of meshes where records have masks.", **d)
    flags.DEFINE_string("tables", "1,2,3,4", "reproduce: which tables.", **d)
    flags.DEFINE_string("runs_dir", "runs", "reproduce: root of the evaluated run directories.", **d)
    flags.DEFINE_enum("format", "markdown", ["markdown", "json"], "reproduce: output format.", **d)
    flags.DEFINE_string("output", "", "reproduce: also write the tables to this file.", **d)
    flags.DEFINE_boolean("quick", False, "reproduce: make synthetic data, train the quick stages, evaluate, print "
                         "(runs in --runs_dir, default runs/quick).", **d)
    flags.DEFINE_boolean("evaluate", False, "reproduce: first evaluate every trained run of the tables (runs named "
                         "as flags/table*/) that has no up-to-date metrics.json.", **d)
    flags.DEFINE_integer("quick_examples", 0, "reproduce --quick: training examples made (0: the default).", **d)
    flags.DEFINE_string("image", "", "infer: an image file (a 256x256 crop, or any image with --bbox).", **d)
    flags.DEFINE_string("bbox", "", "infer: x,y,w,h of the person's square crop box in --image (pixels).", **d)
    flags.DEFINE_string("export_dir", "", "export: SavedModel directory to write.", **d)
    flags.DEFINE_boolean("export_tflite", False, "export: also write <export_dir>/smplr.tflite, the same pipeline "
                         "for TFLite (CPU, XNNPACK, float32) at a fixed batch of --tflite_batch.", **d)
    flags.DEFINE_integer("tflite_batch", 1, "export --export_tflite: the TFLite model's fixed batch size.", **d)


if "eval_split" not in FLAGS:
    define_evaluation_flags(FLAGS)


# ============================================================================================
# ============== command-line tools: tfrecords_tools/* and benchmarks/* (helper G) ===========
# Like the evaluation flags these are defined on the process's FLAGS only (not a registered `section`), so
# they stay out of runs' flags.txt. A tool reads FLAGS.<name>; flags that mean the same as a flag above are
# reused (data_dir, smpl_dir, seed, genders, background_dir, batch_size, xla, max_examples), and a tool whose
# default differs sets it with FLAGS.set_default before parsing (see TOOL_DEFAULTS). TOOL_FLAGS lists the
# flags each tool reads; the tool declares them as its key flags so that its --help lists them.
# ============================================================================================

TOOL_FLAGS: dict[str, tuple[str, ...]] = {
    "make_synthetic": ("out_dir", "split", "num_examples", "seed", "num_workers", "examples_per_shard",
                       "background_dir", "smpl_dir", "genders", "smpl_batch_size", "depth_range",
                       "background_clutter"),
    "inspect_records": ("data_dir", "split", "png", "num", "max_errors", "strict"),
    "convert_surreal": ("root", "out_dir", "split", "smpl_dir", "examples_per_shard", "max_examples",
                        "min_motion_cm"),
    "convert_h36m": ("root", "out_dir", "split", "smpl_dir", "examples_per_shard", "max_examples", "fits_dir",
                     "cameras", "every", "subjects"),
    "convert_up3d": ("root", "out_dir", "split", "smpl_dir", "examples_per_shard", "max_examples"),
    "subsample": ("in_dir", "out_dir", "split", "threshold_mm", "relative", "examples_per_shard", "benchmark",
                  "json"),
    "input_pipeline": ("data_dir", "split", "batch_size", "num_batches", "warmup", "num_examples", "variants",
                       "json"),
    "render_speed": ("num", "smpl_dir", "json", "painter"),
    "smpl_speed": ("json", "smpl_dir", "gender", "batch_sizes", "repeats", "smplx_python", "random_model"),
    "timing": ("small", "json", "modules", "phases", "xla", "no_bf16", "no_tflite", "repeats", "warmup", "budget_s",
               "child"),
}

# The flags each of the package's own commands (python -m smplr_tf.<name>) reads, for its --helpshort; train
# lists every section flag (see prepare_tool).
ENTRY_FLAGS: dict[str, tuple] = {
    "evaluate": ("run_dir", "shn_run", "dae_run", "psi_run", "omega_run", "data", "eval_split", "eval_input",
                 "eval_input_run", "eval_batch_size", "eval_iou", "eval_tag", "max_examples", "output_dir"),
    "infer": ("run_dir", "shn_run", "dae_run", "psi_run", "omega_run", "image", "bbox", "output_dir"),
    "export": ("run_dir", "shn_run", "dae_run", "psi_run", "omega_run", "export_dir", "export_tflite",
               "tflite_batch"),
    "reproduce": ("tables", "format", "output", "quick", "quick_examples", "evaluate", "runs_dir", "smpl_dir"),
}

# Tool defaults that differ from the flag's default (applied by use_tool_flags before parsing).
TOOL_DEFAULTS: dict[str, dict] = {
    "make_synthetic": {"examples_per_shard": 1000},
    "inspect_records": {"split": ""},
    "input_pipeline": {"batch_size": 6, "num_examples": 120},
    "render_speed": {"num": 40},
    "timing": {"warmup": 2, "repeats": 0},
}


def use_tool_flags(tool: str, fv: flags.FlagValues = FLAGS) -> None:
    """Give the flags of ``tool`` (a key of TOOL_FLAGS) the tool's own defaults (TOOL_DEFAULTS).

    Call at the start of the tool's main (and before app.run, so that --help shows them). A value given on the
    command line (or assigned) is kept: FlagValues.set_default only replaces a value still at its default.
    """
    for name, value in TOOL_DEFAULTS.get(tool, {}).items():
        fv.set_default(name, value)


def prepare_tool(tool: str, fv: flags.FlagValues = FLAGS) -> None:
    """In a tool's ``if __name__ == "__main__":`` before ``app.run(main)``: make the flags the tool reads key flags
    of the main module (so ``--help`` / ``--helpshort`` list them, as when the tool defined them itself) and apply
    the tool's defaults (TOOL_DEFAULTS, so ``--help`` shows them). ``tool`` is a key of TOOL_FLAGS or of ENTRY_FLAGS,
    or "train" (every section flag)."""
    names = section_flag_names() if tool == "train" else TOOL_FLAGS.get(tool) or ENTRY_FLAGS[tool]
    for name in names:
        fv.register_key_flag_for_module(sys.argv[0], fv[name])
    use_tool_flags(tool, fv)


def define_records_tools_flags(fv):
    """Flags of tfrecords_tools/: make_synthetic, inspect_records, convert_*, subsample."""
    d = dict(flag_values=fv)
    flags.DEFINE_string("out_dir", None, "make_synthetic / convert_* / subsample: output records directory "
                        "(shards + manifest.json).", **d)
    flags.DEFINE_string("split", "train", "make_synthetic / convert_* / subsample / input_pipeline: the split "
                        "written or read. inspect_records: comma-separated splits to check (default: every split "
                        "in the manifest).", **d)
    flags.DEFINE_integer("examples_per_shard", 2000, "make_synthetic / convert_* / subsample: examples per output "
                         "shard (make_synthetic: default 1000).", **d)
    # make_synthetic
    flags.DEFINE_integer("num_examples", 1000, "make_synthetic: examples to write. input_pipeline: examples "
                         "written when no --data_dir is given (default 120 there).", **d)
    flags.DEFINE_integer("num_workers", max(1, (os.cpu_count() or 2) - 1),
                         "make_synthetic: rendering processes (0 = render in the main process).", **d)
    flags.DEFINE_integer("smpl_batch_size", 32, "make_synthetic: bodies per SMPL batch in the main process "
                         "(was --batch_size).", **d)
    flags.DEFINE_list("depth_range", ["3", "7"], "make_synthetic: min,max distance of the pelvis from the camera, "
                      "metres (uniform). SURREAL's renderer uses N(8, 1) m: 6,10 gives data closer to SURREAL.", **d)
    flags.DEFINE_float("background_clutter", 1.0, "make_synthetic: shapes (boxes, poles, ellipses, lines) drawn "
                       "on the procedural backgrounds, relative to the default 4-19 (0: a bare wall and floor, what "
                       "reproduce --quick uses). No effect with --background_dir.", lower_bound=0.0, upper_bound=4.0,
                       **d)
    # inspect_records
    flags.DEFINE_string("png", None, "inspect_records: write a grid of examples to this PNG.", **d)
    flags.DEFINE_integer("num", 16, "inspect_records: examples in the PNG. render_speed: images per measurement "
                         "(default 40 there).", **d)
    flags.DEFINE_integer("max_errors", 20, "inspect_records: errors (and warnings) printed per split (all are "
                         "counted).", **d)
    flags.DEFINE_bool("strict", False, "inspect_records: treat warnings (2D points that are not the pinhole "
                      "projection of the 3D points, e.g. lens distortion kept in a converter's 2D) as errors.", **d)
    # converters
    flags.DEFINE_string("root", None, "convert_*: the dataset's folder (SURREAL: holding cmu/; Human3.6M: holding "
                        "S1, S5, ... and metadata.xml; UP-3D: %05d_image.png, ..., train.txt).", **d)
    flags.DEFINE_float("min_motion_cm", 5.0, "convert_surreal: the paper's sampling: skip a frame whose mean joint "
                       "distance to the last kept frame is below this (0 = keep every frame).", **d)
    flags.DEFINE_string("fits_dir", None, "convert_h36m: SMPL fits: <fits_dir>/<subject>/<action>.npz (pose, "
                        "trans, betas, gender; see the module docstring).", **d)
    flags.DEFINE_string("cameras", None, "convert_h36m: metadata.xml or cameras.h5 (default: found in --root).",
                        **d)
    flags.DEFINE_integer("every", 5, "convert_h36m: keep every n-th frame (paper: 5).", **d)
    flags.DEFINE_string("subjects", None, "convert_h36m: comma-separated subjects overriding the split's "
                        "(e.g. S9).", **d)
    # subsample
    flags.DEFINE_string("in_dir", None, "subsample: input records directory.", **d)
    flags.DEFINE_float("threshold_mm", 150.0, "subsample: minimum max-joint displacement to every kept frame "
                       "(paper: 150).", **d)
    flags.DEFINE_boolean("relative", True, "subsample: compare root-relative joints (default) instead of "
                         "camera-frame ones.", **d)
    flags.DEFINE_integer("benchmark", 0, "subsample: instead, time the selection on this many synthetic frames.",
                         **d)


def define_benchmark_flags(fv):
    """Flags of benchmarks/: input_pipeline, render_speed, smpl_speed, timing (and subsample --benchmark)."""
    d = dict(flag_values=fv)
    flags.DEFINE_boolean("json", False, "benchmarks, subsample --benchmark: print one JSON object instead of "
                         "text.", **d)
    flags.DEFINE_integer("warmup", 5, "input_pipeline: batches read before timing. timing: warm-up steps per row "
                         "(default 2 there).", **d)
    flags.DEFINE_integer("repeats", 20, "smpl_speed: timed calls per figure (batch >= 256 uses a quarter, at least "
                         "5). timing: timed steps per row (0 there = 20, with --small 5).", **d)
    # input_pipeline
    flags.DEFINE_integer("num_batches", 40, "input_pipeline: batches timed per variant (after warm-up).", **d)
    flags.DEFINE_list("variants", ["full_f32", "full_f16", "full_bf16", "on_device", "no_augment"],
                      "input_pipeline: variants to time.", **d)
    # render_speed
    flags.DEFINE_bool("painter", True, "render_speed: also time the painter's-algorithm reference.", **d)
    # smpl_speed
    flags.DEFINE_string("gender", "female", "smpl_speed: gender of the model file to time.", **d)
    flags.DEFINE_list("batch_sizes", ["1", "64", "256"], "smpl_speed: batch sizes.", **d)
    flags.DEFINE_string("smplx_python", os.environ.get("SMPLX_PYTHON"),
                        "smpl_speed: Python interpreter with torch + smplx for the smplx reference (default: this "
                        "one, if it has them; env SMPLX_PYTHON).", **d)
    flags.DEFINE_boolean("random_model", False, "smpl_speed: time a random model with SMPL's exact sizes instead "
                         "of a file.", **d)
    # timing (Table 5)
    flags.DEFINE_boolean("small", False, "timing: tiny models and batches, a quick look.", **d)
    flags.DEFINE_string("modules", "shn2d,shn,dae,smplr", "timing: subset of shn2d,shn,dae,smplr.", **d)
    flags.DEFINE_string("phases", "train,test", "timing: phases to time.", **d)
    flags.DEFINE_boolean("no_bf16", False, "timing: skip the bfloat16 test rows.", **d)
    flags.DEFINE_boolean("no_tflite", False, "timing: skip the TFLite (XNNPACK, float32) test variant; it is only "
                         "tried on a machine without a GPU.", **d)
    flags.DEFINE_float("budget_s", 30.0, "timing: stop repeating a row after this many seconds.", **d)
    flags.DEFINE_string("child", None, "timing (internal): time this one module and print its result.", **d)


if "num_workers" not in FLAGS:
    define_records_tools_flags(FLAGS)
if "num_batches" not in FLAGS:
    define_benchmark_flags(FLAGS)
