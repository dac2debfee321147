"""A convolutional VAE (Kingma & Welling 2013), unconditional or class-conditional, whose decoder is a
DCGAN generator: it samples, interpolates and is served exactly like a GAN's generator."""

from __future__ import annotations

import io

import torch
import torch.nn.functional as F
from torch import nn

from models.dcgan import DCGANConfig, Discriminator, Generator, weights_init
from models.gan_training import EpochTrainer, GanTrainConfig, step_generator


class Encoder(nn.Module):
    """image [and class index] -> (mu, logvar), each (N, nz).

    The convolutions are a DCGAN discriminator's; a conditional encoder gets the class as a
    one-hot vector beside the pooled features, so z is free to hold the style, not the class.
    """

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        conv = Discriminator(cfg.image_size, cfg.channels, cfg.ndf).main
        self.conv = nn.Sequential(*list(conv)[:-1])  # up to the 4x4 feature maps
        width = conv[-1].in_channels * 4 * 4
        self.num_classes = cfg.num_classes
        self.head = nn.Linear(width + cfg.num_classes, 2 * cfg.nz)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x).flatten(1)
        if self.num_classes:
            h = torch.cat([h, F.one_hot(labels, self.num_classes).to(h.dtype)], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-10, 10)  # keeps exp(logvar) finite early in training


def build_vae(cfg: DCGANConfig) -> tuple[Encoder, Generator]:
    enc = Encoder(cfg)
    dec = Generator(cfg.image_size, cfg.channels, cfg.nz, cfg.ngf, cfg.num_classes)
    enc.apply(weights_init)
    dec.apply(weights_init)
    return enc, dec


def vae_losses(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstruction, KL), each summed over an image and averaged over the batch.

    Reconstruction is a Bernoulli likelihood on pixels mapped to [0, 1]: sharper digits than a
    squared error, and it needs no noise scale to be chosen. KL is to N(0, I).
    """
    target, pred = (x + 1) / 2, ((recon + 1) / 2).clamp(1e-6, 1 - 1e-6)
    rec = F.binary_cross_entropy(pred, target, reduction="none").flatten(1).sum(1).mean()
    kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(1).mean()
    return rec, kl


class VaeTrainer(EpochTrainer):
    """The same shape as GanTrainer (steps, epochs, checkpoints, a sampler), so the training task
    runs either. Of GanTrainConfig it uses net, epochs, batch_size, lr, beta1 and seed; the GAN
    stabilisers do not apply."""

    METRICS = ("loss_rec", "loss_kl")

    def __init__(self, cfg: GanTrainConfig, images: torch.Tensor, device: str | torch.device = "cpu",
                 labels: torch.Tensor | None = None):
        super().__init__(cfg, images, device, labels)
        torch.manual_seed(cfg.seed)
        self.encoder, self.decoder = (m.to(self.device) for m in build_vae(cfg.net))
        params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        self.opt = torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, 0.999))

    def modules(self) -> list[torch.nn.Module]:
        return [self.encoder, self.decoder]

    @property
    def sampler(self) -> Generator:
        return self.decoder

    def step(self, real: torch.Tensor, step: int, labels: torch.Tensor | None = None) -> dict[str, float]:
        gen = step_generator(self.cfg.seed, step)
        with self.forward_precision():
            mu, logvar = self.encoder(real, labels)
            # The reparameterisation's noise comes from the step's generator: a resumed run repeats it.
            eps = torch.randn(mu.shape, generator=gen).to(self.device)
            z = mu + eps * (0.5 * logvar).exp()
            recon = self.decoder(z.view(*z.shape, 1, 1), labels)
        # The losses in fp32 (autocast refuses binary cross-entropy on probabilities).
        rec, kl = vae_losses(real, recon.float(), mu.float(), logvar.float())
        loss = rec + kl
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss_rec": rec.item(), "loss_kl": kl.item()}

    def weights(self) -> dict[str, dict[str, torch.Tensor]]:
        return {"generator": self.decoder.state_dict(), "encoder": self.encoder.state_dict()}

    def load_weights(self, weights: dict[str, dict[str, torch.Tensor]]) -> None:
        self.decoder.load_state_dict(weights["generator"])
        self.encoder.load_state_dict(weights["encoder"])

    def state_bytes(self, epoch: int) -> bytes:
        buf = io.BytesIO()
        torch.save({"epoch": epoch, "opt": self.opt.state_dict()}, buf)
        return buf.getvalue()

    def load_state_bytes(self, data: bytes) -> int:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location=self.device)
        self.opt.load_state_dict(state["opt"])
        return int(state["epoch"])
