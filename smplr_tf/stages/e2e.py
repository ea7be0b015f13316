"""e2e: the paper's incremental end-to-end training (Sec. 4.5).

DAE, Psi and Omega are trained first (their runs: --dae_run, --psi_run, --omega_run; the paper trains them
on ground truth "until they overfit"), frozen, and appended with SMPL to the trained hourglass
(--shn_run). The whole pipeline is then fine-tuned -- only the hourglass learns -- at a low learning rate
(1e-4) with the sum of the intermediate losses and a balance w ~ 1e-5 (--e2e_shn_weight), placed by
--e2e_balance:

    shn (default):  L = w * L_heatmaps + L1(JL_DAE, JL) + L1(JL_SMPL, JL)
    smplr:          L = L_heatmaps + w * (L1(JL_DAE, JL) + L1(JL_SMPL, JL))

JL_SMPL are the 41 root-relative points of SMPL fed with Omega's rotations, Psi's betas and Psi's gender. The
records need no SMPL parameters: every term compares points.

Where the balance goes: end-to-end training is not in the authors' released code, and the paper only says
that the hourglass loss is "several times lower" than the others, that without a balance "the weights of the
SHN vanish after few training steps", and that the balance is "around 1e-5". By that reasoning the factor
scales the SMPLR-side terms down to protect the small hourglass loss (``smplr``). That premise holds for the
authors' sigmoid cross-entropy (a mean over ~2.9 M mostly near-zero elements per stack: 8e-5 per point
channel even for perfect logits, the targets' entropy, against L1 errors of a few cm). With the paper's
softmax cross-entropy, which we use by default, the hourglass loss is instead a few nats per channel, ~100x
the L1 terms in metres: there ``shn`` (the factor on the heatmap term) keeps the hourglass from being
trained by its heatmap loss alone -- that would be more SHN training, which the paper reports gives nothing --
while the heatmap term still anchors the heatmaps. Both are flags; the default is ``shn``.

The network is :class:`smplr_tf.models.pipeline.SMPLRPipeline` (what runs.load_model_from_run returns for an
e2e run): image -> dict with the hourglass outputs "heatmaps", "points" (SHN_e2e), "dae_points", and from
SMPLR "rotmats", "betas", "gender", "vertices", "joints", "landmarks", "smpl_points". Training starts from the
four component runs (smplr_tf.runs.pipeline_from_runs); the run's network.json then describes the pipeline.
"""

from __future__ import annotations

from smplr_tf import losses
from smplr_tf.stages.base import mpjpe_mm
from smplr_tf.stages.image import ShnStage


class E2eStage(ShnStage):
    name = "e2e"

    def __init__(self, cfg):
        super().__init__(cfg)
        from smplr_tf import runs

        if not cfg.shn_run:
            raise ValueError("--stage=e2e needs --shn_run, --dae_run, --psi_run and --omega_run")
        self.shn_flags = runs.read_flags(cfg.shn_run)

    # the data and the heatmap loss follow the hourglass run's sizes
    @property
    def num_points(self) -> int:
        return int(self.shn_flags.num_points)

    @property
    def depth_bins(self) -> int:
        return int(self.shn_flags.depth_bins)

    def _heatmap_flags(self):
        return self.shn_flags

    def _kind(self):
        return self.shn_flags.heatmap_loss

    def build_network(self):
        from smplr_tf import runs

        c = self.cfg
        return runs.pipeline_from_runs(c.shn_run, c.dae_run, c.psi_run, c.omega_run, load_weights=True,
                                       smpl_gender=str(getattr(c, "smpl_gender", "psi")))

    def load_init_weights(self, net, run_dir: str) -> str:
        """--init_from an e2e run (SHN_e2e, e.g. the SURREAL one that the UP-3D recipe fine-tunes) or an shn
        run: only the hourglass is taken from it; the frozen DAE, Psi and Omega stay those of --dae_run,
        --psi_run, --omega_run."""
        from smplr_tf import runs

        stage = runs.read_flags(run_dir).stage
        if stage not in ("e2e", "shn"):
            raise ValueError(f"--init_from={run_dir} is a '{stage}' run; e2e starts from an e2e or shn run")
        _, src, _ = runs.load_model_from_run(run_dir)
        src_hg = src.hourglass if stage == "e2e" else src
        if len(net.hourglass.weights) != len(src_hg.weights):
            raise ValueError(f"--init_from={run_dir}: its hourglass differs from --shn_run's")
        for a, b in zip(net.hourglass.weights, src_hg.weights):
            if tuple(a.shape) != tuple(b.shape):
                raise ValueError(f"--init_from={run_dir}: its hourglass differs from --shn_run's ({a.name} "
                                 f"{tuple(b.shape)} vs {tuple(a.shape)})")
        net.hourglass.set_weights(src_hg.get_weights())
        return runs.weights_path(run_dir, "auto")

    def loss_names(self):
        return ("loss", "heatmap_loss", "l1_dae", "l1_smpl")

    def metric_names(self):
        return ("mpjpe_mm", "dae_mpjpe_mm", "smpl_mpjpe_mm")

    def loss_fn(self, x, y, pred, training):
        hl = losses.hourglass_loss(y["heatmaps"], pred["heatmaps"], kind=self._kind(),
                                   weights=self._channel_weights(y))
        m = y.get("mask_valid_points")
        l_dae = losses.l1_loss(y["points"], pred["dae_points"], m)
        l_smpl = losses.smpl_points_loss(y["points"], pred["smpl_points"], m)
        w = float(self.cfg.e2e_shn_weight)
        if self.cfg.e2e_balance == "smplr":
            total = hl + w * (l_dae + l_smpl)
        else:
            total = w * hl + l_dae + l_smpl
        return {"loss": total, "heatmap_loss": hl, "l1_dae": l_dae, "l1_smpl": l_smpl}

    def metric_fn(self, x, y, pred):
        m = y.get("mask_valid_points")
        return {"mpjpe_mm": mpjpe_mm(pred["points"], y["points"], m),
                "dae_mpjpe_mm": mpjpe_mm(pred["dae_points"], y["points"], m),
                "smpl_mpjpe_mm": mpjpe_mm(pred["smpl_points"], y["points"], m)}

    def report_extras(self, x, y, pred):
        m = self.metric_fn(x, y, pred)
        return {"val_dae_mpjpe_mm": m["dae_mpjpe_mm"], "val_smpl_mpjpe_mm": m["smpl_mpjpe_mm"]}
