"""The training flags: what ``python -m smplr_tf.train`` reads and what a run's ``flags.txt`` records.

Flags are grouped in sections: run, data, optimisation, losses, stage inputs, model sizes, logging. Each section
is a function ``define_<name>_flags(fv)`` registered with :func:`section`. Nothing is defined at import:
``smplr_tf.train`` calls :func:`define_flags` under ``if __name__ == "__main__":``, and
:func:`new_flag_values` gives a fresh :class:`absl.flags.FlagValues` holding every section (used by
:mod:`smplr_tf.runs` to read a run's ``flags.txt`` without touching the process's own flags). The other
commands (evaluate, infer, export, reproduce, the record tools and benchmarks) define their own flags in their
own module. Every experiment is a flagfile (``flags/table1/shn.cfg`` ...), never a code edit.
"""

from __future__ import annotations

from absl import flags

FLAGS = flags.FLAGS

STAGES = ("shn", "shn2d", "alexnet", "dae", "smplr_shape", "smplr_pose", "e2e", "hmr")

_SECTIONS: list = []


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
    "aug_scale": 0.0,
}


def section(fn):
    """Register a flag section ``fn(fv)`` (defines its flags on the FlagValues ``fv`` when called)."""
    _SECTIONS.append(fn)
    return fn


def define_flags(fv: flags.FlagValues = FLAGS) -> None:
    """Define every section's flags on ``fv`` (the process's FLAGS by default); a second call does nothing."""
    if "stage" in fv:
        return
    for fn in _SECTIONS:
        fn(fv)


def new_flag_values() -> flags.FlagValues:
    """A fresh FlagValues holding every section's flags with their defaults (not parsed)."""
    fv = flags.FlagValues()
    define_flags(fv)
    return fv


def section_flag_names() -> list[str]:
    """Names of the flags defined by this module's sections (what a run's flags.txt records), sorted."""
    return sorted(new_flag_values())


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
    flags.DEFINE_string("smpl_dir", "", "Official SMPL model files; empty: the package's free body model.", **d)
    flags.DEFINE_list("genders", ["female", "male"], "Body models of the SMPL layer (index = schema gender).", **d)
    flags.DEFINE_string("background_dir", "", "Images for background swap augmentation (e.g. VOC without people).", **d)
    flags.DEFINE_string("occluder_dir", "", "Images for occlusion augmentation.", **d)
    flags.DEFINE_boolean("augment", False, "Hourglass data augmentation (SHN^final).", **d)
    flags.DEFINE_float("aug_scale", 0.0, "With --augment: random scale augmentation, the image zoomed about the crop "
                       "centre by a factor in [1/(1+a), 1+a], 3D targets unchanged (paper Sec. 4.6: SHN^final "
                       "fine-tuned for estimated crops). 0: off.", lower_bound=0.0, **d)
    flags.DEFINE_integer("num_train_samples", 100000, "Point stages without data_dir: sampled examples per "
                         "training epoch pass.", **d)
    flags.DEFINE_enum("point_data", "records", ["records", "sampled"], "Point stages (dae, smplr_*): SMPL parameters "
                      "from the records of --data_dir, or sampled by the synthetic generator's pose sampler "
                      "(--num_train_samples / --num_val_samples; also what an empty --data_dir means).", **d)
    flags.DEFINE_boolean("cache_points", True, "Point stages: compute the clean points once and keep them in memory "
                         "(noise is still drawn per batch). Off for data sets larger than memory.", **d)
    flags.DEFINE_boolean("cache_images", False, "Image stages without --augment: keep the decoded training images "
                         "and their points in memory after the first epoch (49 kB each at 64 px, 197 kB at 128 px, "
                         "786 kB at 256 px; heatmaps are still made per epoch). Saves the decoding that otherwise "
                         "contends with training for the CPU.", **d)
    flags.DEFINE_integer("num_val_samples", 2000, "Point stages without data_dir: sampled validation examples.", **d)
    flags.DEFINE_string("mix_data_dir", "", "Image stages (shn, e2e): a second records directory mixed into the "
                        "training input (its --train_split), e.g. the SURREAL subset beside UP-3D (Table 4). "
                        "Validation reads --data_dir only.", **d)
    flags.DEFINE_float("mix_fraction", 0.0, "With --mix_data_dir: the share of training examples drawn from it, in "
                       "[0, 1); 0: in proportion to the two splits' sizes.", lower_bound=0.0, upper_bound=0.999, **d)
    flags.DEFINE_boolean("fits_as_3d", False, "Image stages: records with SMPL fits but no measured 3D (UP-3D: "
                         "has_3d = 0, has_smpl = 1) train on their fitted joints and landmarks as 3D truth.", **d)


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
    flags.DEFINE_integer("epoch_growth", 0, "The authors' growing hourglass epochs (their code: 500): epoch e of the "
                         "schedule lasts min(epoch_growth * (e + 1), steps per epoch) steps, and training runs the "
                         "steps of --epochs such epochs, validated and checkpointed every steps-per-epoch steps. "
                         "0: every epoch is --steps_per_epoch steps (or one pass).", lower_bound=0, **d)
    flags.DEFINE_float("clipnorm", 0.0, "Gradient norm clipping (0: none).", **d)
    flags.DEFINE_float("bn_momentum", 0.0, "If > 0: momentum of every BatchNormalization moving average (Keras "
                       "default 0.99 needs many hundred steps before validation is meaningful; short runs use 0.9).",
                       **d)
    flags.DEFINE_float("max_train_seconds", 0.0, "If > 0: end training cleanly after the training step that passes "
                       "this many seconds of wall time since this command started training (the epoch is closed as "
                       "usual: validation, checkpoint, log.csv), then save the final weights and report; run.json "
                       "records the stop (time_limit). 0: train every epoch. Not with multi_worker.",
                       lower_bound=0.0, **d)
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
    flags.DEFINE_enum("smpl_gender", "psi", ["psi", "neutral"], "e2e (and evaluate's pipelines): the SMPL model "
                      "of the output: Psi's gender code, or the neutral model for everyone (UP-3D, Table 4).", **d)
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


# ============================================================================================ HMR baseline
@section
def define_hmr_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_enum("backbone", "resnet50", ["resnet50", "tiny"], "hmr: image backbone: keras.applications "
                      "ResNet-50 (HMR's), or a small 4-block strided CNN (tests, quick runs).", **d)
    flags.DEFINE_string("backbone_weights", "none", "hmr: ResNet-50 starting weights: none (random), imagenet "
                        "(Keras downloads them; needs a network), or a path to a weights file of that backbone.", **d)
    flags.DEFINE_integer("backbone_width", 16, "hmr: channels of the tiny backbone's first block (then x2, x4, x8).",
                         lower_bound=1, **d)
    flags.DEFINE_integer("hmr_iterations", 3, "hmr: iterative error feedback steps (HMR: 3).", lower_bound=1, **d)
    flags.DEFINE_integer("hmr_units", 1024, "hmr: width of the regressor's two hidden layers (HMR: 1024).", **d)
    flags.DEFINE_float("hmr_dropout", 0.5, "hmr: dropout after each hidden layer of the regressor (HMR: 0.5).",
                       lower_bound=0.0, upper_bound=0.99, **d)
    flags.DEFINE_float("hmr_camera_scale", 1.0, "hmr: s of the starting weak-perspective camera (1/metres of the "
                       "[-1, 1] crop).", **d)
    flags.DEFINE_enum("hmr_gender", "neutral", ["neutral", "female", "male"], "hmr: the one body model it "
                      "regresses (HMR: neutral).", **d)
    flags.DEFINE_float("hmr_3d_weight", 1.0, "hmr: weight of the squared error on the 41 root-relative 3D points "
                       "(records with 3D; landmarks where known).", **d)
    flags.DEFINE_float("hmr_2d_weight", 60.0, "hmr: weight of the L1 reprojection of the 41 points into the crop "
                       "(coordinates in [-1, 1]; HMR's keypoint weight: 60).", **d)
    flags.DEFINE_float("hmr_param_weight", 1.0, "hmr: weight of the squared error on the SMPL parameters (body "
                       "rotation matrices and betas) of records that have them (not with --augment).", **d)
    flags.DEFINE_float("hmr_adv_weight", 1.0, "hmr: weight of the adversarial prior in the regressor's loss "
                       "(0: no discriminator).", **d)
    flags.DEFINE_enum("hmr_real_params", "sampled", ["sampled", "records"], "hmr: real SMPL parameters shown to "
                      "the discriminator: our pose sampler's, or the training records' (unpaired, reshuffled).", **d)
    flags.DEFINE_float("disc_lr", 1e-4, "hmr: Adam learning rate of the discriminator.", **d)
    flags.DEFINE_integer("disc_joint_units", 32, "hmr: the discriminator's per-joint feature width (HMR: 32).", **d)
    flags.DEFINE_integer("disc_pose_units", 1024, "hmr: the discriminator's whole-pose layer width (HMR: 1024).", **d)


# ============================================================================================ logging
@section
def define_logging_flags(fv):
    d = dict(flag_values=fv)
    flags.DEFINE_integer("tb_images", 4, "Validation crops drawn to TensorBoard per epoch (image stages).", **d)
    flags.DEFINE_boolean("tb_hparams", True, "Write the run to TensorBoard's hparams table.", **d)
    flags.DEFINE_integer("baseline_batches", 20, "Training batches averaged for the mean-pose baseline.", **d)
    flags.DEFINE_integer("checkpoint_every", 1, "Epochs between checkpoints/ saves.", **d)
