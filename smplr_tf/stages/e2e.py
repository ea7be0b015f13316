"""e2e: the paper's incremental end-to-end training (Sec. 4.5).

DAE, Psi and Omega are trained first (their runs: --dae_run, --psi_run, --omega_run; the paper trains them
on ground truth "until they overfit"), frozen, and appended with SMPL to the trained hourglass
(--shn_run). The whole pipeline is then fine-tuned -- only the hourglass learns -- with the loss

    L = e2e_shn_weight * L_heatmaps + L1(JL_DAE, JL) + L1(JL_SMPL, JL)

(e2e_shn_weight ~ 1e-5: the hourglass loss is orders of magnitude larger than the others and would swamp
them) at a low learning rate (1e-4). JL_SMPL are the 41 root-relative points of SMPL fed with Omega's
rotations, Psi's betas and Psi's gender. The records need no SMPL parameters: every term compares points.

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

    def make_dataset(self, split, train, num_shards=1, shard_index=0, batch_size=None):
        sizes = ("input_size", "heatmap_size", "depth_bins", "num_points", "limbs")
        saved = {k: self.cfg[k].value for k in sizes}
        try:
            for k in sizes:
                self.cfg[k].value = self.shn_flags[k].value
            return super().make_dataset(split, train, num_shards, shard_index, batch_size)
        finally:
            for k, v in saved.items():
                self.cfg[k].value = v

    def build_network(self):
        from smplr_tf import runs

        c = self.cfg
        return runs.pipeline_from_runs(c.shn_run, c.dae_run, c.psi_run, c.omega_run, load_weights=True)

    def loss_names(self):
        return ("loss", "heatmap_loss", "l1_dae", "l1_smpl")

    def metric_names(self):
        return ("mpjpe_mm", "dae_mpjpe_mm", "smpl_mpjpe_mm")

    def loss_fn(self, x, y, pred, training):
        hl = losses.hourglass_loss(y["heatmaps"], pred["heatmaps"], kind=self.shn_flags.heatmap_loss,
                                   weights=self._channel_weights(y))
        m = y.get("mask_valid_points")
        l_dae = losses.l1_loss(y["points"], pred["dae_points"], m)
        l_smpl = losses.smpl_points_loss(y["points"], pred["smpl_points"], m)
        total = float(self.cfg.e2e_shn_weight) * hl + l_dae + l_smpl
        return {"loss": total, "heatmap_loss": hl, "l1_dae": l_dae, "l1_smpl": l_smpl}

    def metric_fn(self, x, y, pred):
        m = y.get("mask_valid_points")
        return {"mpjpe_mm": mpjpe_mm(pred["points"], y["points"], m),
                "dae_mpjpe_mm": mpjpe_mm(pred["dae_points"], y["points"], m),
                "smpl_mpjpe_mm": mpjpe_mm(pred["smpl_points"], y["points"], m)}

    def report_extras(self, x, y, pred):
        m = self.metric_fn(x, y, pred)
        return {"val_dae_mpjpe_mm": m["dae_mpjpe_mm"], "val_smpl_mpjpe_mm": m["smpl_mpjpe_mm"]}
