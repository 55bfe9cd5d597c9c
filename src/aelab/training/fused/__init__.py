"""Fused gradient training: K models of one architecture trained as ONE
batched computation, each exactly as :class:`~aelab.training.gradient.GradientTrainer`
would train it alone (issue 17).

    trainer = aelab.fused_runs.fused_group(cfgs, data)   # or FusedGradientTrainer(models, train_specs, model_specs)
    trainer.fit(*pipeline.tensors(data, trainer.device))
    for member in trainer.members():                          # K ordinary GradientTrainers
        member.model, member.state.history, member.optimizer.state_dict()

The K models' parameters are stacked along a new leading *model axis*
(``(K, *shape)``) and every minibatch step runs once for all of them (or for
cache-sized chunks of them, :data:`.passes.CHUNK_ELEMENTS`):

* dense layers as batched matrix products (``baddbmm``/``bmm``) in a small
  :class:`torch.autograd.Function` whose backward runs the same three
  products as the solo ``addmm`` backward (``g @ W``, ``g^T @ h``, ``g.sum``);
* activations, dropout, reshapes and the losses on ``(K, N, ...)`` tensors,
  reduced per member;
* one optimizer *rule* per torch optimizer (all eight the project has), on
  the stacked parameters with per-member hyperparameters, written op for op
  like torch's single-tensor (for-loop) implementation -- what
  ``torch.optim`` runs on the CPU.

(Measured here against ``torch.func``'s ``vmap(grad(functional_call))`` on
the same stacks, ``benchmarks/fused_speed.py --vmap``: 9.2 vs 12.0 ms per
forward+backward step for 24 digits-ae models, 82 vs 85 ms for 64
mnist-hidden3 ones in one pass -- and vmap could not keep the solo rounding
of small products, tails or per-member noise.)

What each member keeps of its own: its data order (epoch ``e``'s
permutation from ``epoch_seed(seed, e)``); its sampling noise (VAE ``eps``,
dropout masks), drawn from its own generator seeded the same way, in the
same order, with the same calls as the solo forward; its optimizer state and
hyperparameters (lr, momentum, betas, eps, weight decay, Keras defaults,
``optimizer_args``), read from a real torch optimizer built by
:func:`~aelab.training.optim.make_optimizer`, whose scheduler (any of the
project's) is stepped each epoch as the solo run steps it; its KL beta and
warm-up, gradient clipping, early stopping and divergence.  A member that
stops early, diverges or reaches its epochs leaves the stack (its weights
written back into its model); the others go on with a smaller K.

The per-epoch bookkeeping (early stopping, best weights, divergence, the
scheduler) is *the solo trainer's own code*: each member is a real
:class:`GradientTrainer` whose ``_after_epoch``/``_finish`` run on the fused
epoch's row.  History rows have the solo keys; ``seconds`` is the fused
epoch's wall time divided by the members that trained in it.

Exactness.  On the CPU (one torch thread) every member equals its solo run
bit for bit: history, weights, optimizer state (tests/test_fused.py).  What
that took:

* A batched kernel is not always the solo one: MKL's small products (below
  ~400 multiply-adds, e.g. a 16->2 layer on a last batch of 3) and some
  shapes with 1- or 2-wide dimensions round differently batched.  Each
  (product, shape) is *calibrated* once per process on random data: the
  batched kernel where it reproduces the per-member product bit for bit,
  else the product runs per member (:class:`.calibration._Calibration`).
* Sigmoid and ELU round their vectorised body and their scalar tail (the
  last ``numel % 32`` elements) differently, so on a stack a member's tail
  lands in the wrong path.  Activations are calibrated the same way among:
  the plain batched kernel, the kernel on one padded row per member (each
  row then gets its own body and tail, as the solo tensor does), or the solo
  computation per member -- on inputs made of values where the kernel's two
  paths disagree (:func:`.calibration._witnesses`), so a wrong split cannot pass.
* Per-member optimizer coefficients are computed in Python floats exactly
  as torch computes its scalars, then stored as float32; when a group's
  members share a value torch's own scalar call runs, otherwise the tensor
  op that rounds the same way (``add(alpha=a)`` -> ``addcmul(.., a)``: both
  one fma; ``addcdiv(value=v)`` -> ``addcdiv(t1 * v, t2)``; ``lerp`` with a
  tensor weight).
* BCE and MSE are autograd Functions whose backward performs the solo
  autograd chain's roundings in fewer passes (:class:`.losses._BCE`, :class:`.losses._MSE`);
  the classifier's reported cross-entropy is summed per member by
  ``nll_loss`` itself (its own cascade; the gradient is batched).

Where it is not bitwise: on CUDA the batched kernels (cuBLAS batched gemm)
are not the solo ones and ``exact="auto"`` skips the calibration, so members
agree to float rounding (unmeasured here; on this CPU the uncalibrated
engine drifts ~4e-7 relative over TINY's 4 epochs and happens to stay
bitwise on digits-ae).  With several CPU threads, elementwise ops above
torch's grain size split at thread boundaries that differ between a slice of
the stack and a solo tensor, so the last bits may differ too.

Convolutions (and transposed convolutions) run, on the exact path, as each
member's own call of the solo kernel (oneDNN's grouped kernels do not round
as the solo ones do), so what fuses around them is everything else: the
dense layers, activations, losses and optimizer steps; off it (CUDA) they
run as one grouped convolution with the members as its groups (HFTA's
rule), equal to the per-member kernels to float rounding.  Batch norm is
the same: each member's own call of the solo kernel on the exact path, on
its own stacked buffers (running mean and variance, batch count), which
evaluation, checkpoints and the saved models then carry; off it one batch
norm over the members' channels side by side.

The conditional VAE stacks too: its module declares its parts
(``CVAE.fused_layout``) and the fused losses join each member's one-hot
label to the body's features and to the code, as ``CVAE`` joins them.  So
does the dbvae (``DBVAE.fused_layout``; Burgess et al. 2018, eq. 8): each
member its own gamma and capacity C at its own epoch
(:meth:`.losses._Objective.scalars`), and the sparse autoencoder
(``SparseAutoencoder.fused_layout``: Ng's J_sparse, each member its own
weight and target) and the denoising autoencoder (each member's batch
corrupted on its own stream: :meth:`.noise._MemberRNG.drawing` runs the
solo corruption with the member's generator state swapped into the
global one).  The WAE-MMD and the InfoVAE run the solo ``mmd`` on each
member's codes against prior draws from the member's stream, which
evaluation continues as the solo run's global generator goes on; the
beta-TCVAE runs the solo ``minibatch_terms`` on each member's codes, and
the RAE-L2 the solo ``decoder_l2`` sum on each member's own decoder
parameters, and the IWAE decodes every member's k codes per image at once
and runs the solo ``weights_of``/``bound`` per member.

Not covered: adversarial training (the GANs, cgan included, and the
adversarial autoencoders), torch's ``foreach``/``fused`` optimizer
implementations, and callbacks that need the model mid-epoch.  A family
fuses only when its own class declares which fused objective is its
(``Family.fuses_as``).  Resuming works: members restored from their
checkpoints carry their optimizer state into the stack
(:meth:`.optimizer._Group.load`).  Exactness on CUDA is untested.

The modules, lowest first (each imports only modules listed before it):

* :mod:`.allocator` -- glibc keeps the stacked batches' freed memory for reuse;
* :mod:`.scalars` -- per-member scalars rounded as torch rounds its own;
* :mod:`.calibration` -- which batched kernel equals the per-member one, and
  the witnesses of an elementwise kernel's two paths;
* :mod:`.noise` -- each member's generator (VAE ``eps``, dropout masks);
* :mod:`.stack` -- :func:`check_stackable`, the models' parts, the compiled
  plan of steps;
* :mod:`.layers` -- the dense and activation autograd Functions, dropout;
* :mod:`.forward` -- a part's plan run for all members at once;
* :mod:`.losses` -- BCE, MSE, the core objectives, the stacked KL;
* :mod:`.family_losses` -- the zoo's objectives, each with its per-member values and checks;
* :mod:`.rules` -- the eight update rules, op for op like torch's;
* :mod:`.optimizer` -- the optimizer groups: state, hyperparameters, export;
* :mod:`.passes` -- one training epoch and one evaluation, in chunks of
  members, with per-member gradient clipping;
* :mod:`.trainer` -- :class:`FusedGradientTrainer`: the members, their
  per-epoch bookkeeping, retiring them from the stack.
"""
# _Forward: re-exported for benchmarks/fused_speed.py --vmap (the plan without calibration)
from .forward import _Forward as _Forward
from .losses import kld_stacked
from .passes import CHUNK_ELEMENTS
from .stack import check_stackable
from .trainer import FusedGradientTrainer

__all__ = ["CHUNK_ELEMENTS", "FusedGradientTrainer", "check_stackable", "kld_stacked"]
